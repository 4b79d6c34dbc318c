from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("studio.accounts.urls")),
    path("", include("studio.core.urls")),
    path("", include("studio.generation.urls")),
    path("", include("studio.gallery.urls")),
]
