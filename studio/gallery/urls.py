from django.urls import path

from studio.gallery.views import (
    boards,
    compare,
    explorations,
    grid,
    image,
    review_requests,
    selection,
    trash,
)

urlpatterns = [
    path("gallery/", grid.gallery, name="gallery"),
    path("gallery/activity/", grid.activity, name="gallery-activity"),
    path("gallery/compare/", compare.compare, name="gallery-compare"),
    path("gallery/selection", selection.bulk, name="gallery-bulk"),
    path("gallery/boards", boards.board_create, name="gallery-board-create"),
    path("gallery/boards/<int:board_id>/images", boards.board_add, name="gallery-board-add"),
    path("gallery/trash/", trash.trash, name="gallery-trash"),
    path("gallery/images/<int:image_id>/", image.image_detail, name="gallery-image"),
    path(
        "gallery/images/<int:image_id>/compare-inputs/",
        compare.compare_inputs,
        name="gallery-compare-inputs",
    ),
    path("gallery/images/<int:image_id>/review", image.image_review, name="gallery-review"),
    path(
        "gallery/images/<int:image_id>/review-request",
        review_requests.image_review_request,
        name="gallery-review-request",
    ),
    path("gallery/images/<int:image_id>/star", image.image_star, name="gallery-star"),
    path("gallery/images/<int:image_id>/comments", image.image_comment, name="gallery-comment"),
    path("gallery/images/<int:image_id>/boards", image.image_board, name="gallery-board"),
    path("gallery/images/<int:image_id>/delete", trash.image_delete, name="gallery-delete"),
    path("gallery/images/<int:image_id>/restore", trash.image_restore, name="gallery-restore"),
    path(
        "explore/<int:exploration_id>/images/<int:image_id>/winner",
        explorations.exploration_winner,
        name="exploration-winner",
    ),
]
