from django.urls import path

from studio.generation import views

urlpatterns = [
    path("generate/", views.generate, name="generate"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/cancel", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry", views.job_retry, name="job-retry"),
    path("jobs/<uuid:job_id>/images/<int:index>/<str:variant>", views.job_image, name="job-image"),
]
