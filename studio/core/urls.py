from django.urls import path

from studio.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/worker", views.healthz_worker, name="healthz-worker"),
    path("favicon.ico", views.favicon),
]
