from django.urls import path

from studio.gallery import views

urlpatterns = [
    path("gallery/", views.gallery, name="gallery"),
    path("gallery/activity/", views.activity, name="gallery-activity"),
    path("gallery/compare/", views.compare, name="gallery-compare"),
    path("gallery/selection", views.bulk, name="gallery-bulk"),
    path("gallery/boards", views.board_create, name="gallery-board-create"),
    path("gallery/boards/<int:board_id>/images", views.board_add, name="gallery-board-add"),
    path("gallery/trash/", views.trash, name="gallery-trash"),
    path("gallery/images/<int:image_id>/", views.image_detail, name="gallery-image"),
    path(
        "gallery/images/<int:image_id>/compare-inputs/",
        views.compare_inputs,
        name="gallery-compare-inputs",
    ),
    path("gallery/images/<int:image_id>/review", views.image_review, name="gallery-review"),
    path("gallery/images/<int:image_id>/star", views.image_star, name="gallery-star"),
    path("gallery/images/<int:image_id>/comments", views.image_comment, name="gallery-comment"),
    path("gallery/images/<int:image_id>/boards", views.image_board, name="gallery-board"),
    path("gallery/images/<int:image_id>/delete", views.image_delete, name="gallery-delete"),
    path("gallery/images/<int:image_id>/restore", views.image_restore, name="gallery-restore"),
]
