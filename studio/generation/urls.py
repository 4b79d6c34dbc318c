from django.urls import path

from studio.generation import views

urlpatterns = [
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
]
