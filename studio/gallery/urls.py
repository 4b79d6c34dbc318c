from django.urls import path

from studio.gallery import views

urlpatterns = [
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/activity/", views.activity, name="gallery-activity"),
    path("gallery/images/<int:image_id>/", views.image_detail, name="gallery-image"),
    path("gallery/images/<int:image_id>/review", views.image_review, name="gallery-review"),
    path("gallery/images/<int:image_id>/star", views.image_star, name="gallery-star"),
]
