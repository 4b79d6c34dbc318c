from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    # Django's LogoutView accepts POST only; the top bar posts a small form to it.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
