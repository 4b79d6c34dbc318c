from django.urls import path

from studio.api import gallery, views  # noqa: F401  (gallery adds its operations to the api)
from studio.api.endpoints import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
]
