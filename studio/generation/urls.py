from django.urls import path

from studio.generation import views

urlpatterns = [
    path("generate/", views.generate, name="generate"),
    path("jobs/recent", views.recent_jobs, name="recent-jobs"),
    path("prompt/count", views.count_prompt, name="count-prompt"),
    path("edit/", views.edit, name="edit"),
    path("edit/inputs", views.stage_input, name="stage-input"),
    path("edit/inputs/<uuid:staged_id>", views.staged_image, name="staged-image"),
    path("explore/", views.explore, name="explore"),
    path("explore/<int:exploration_id>/", views.exploration_detail, name="exploration"),
    path(
        "explore/<int:exploration_id>/images/<int:image_id>/vote",
        views.exploration_vote,
        name="exploration-vote",
    ),
    path("kits/", views.kit_list, name="kits"),
    path("kits/new", views.kit_new, name="kit-new"),
    path("kits/<int:kit_id>/", views.kit_edit, name="kit-edit"),
    path("kits/<int:kit_id>/delete", views.kit_delete, name="kit-delete"),
    path("kits/<int:kit_id>/references/<int:reference_id>", views.kit_image, name="kit-image"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/cancel", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry", views.job_retry, name="job-retry"),
    path("jobs/<uuid:job_id>/variations", views.job_variations, name="job-variations"),
    path("jobs/<uuid:job_id>/inputs/<int:position>", views.job_input, name="job-input"),
    path("jobs/<uuid:job_id>/images/<int:index>/edit", views.use_as_input, name="use-as-input"),
    path("jobs/<uuid:job_id>/images/<int:index>/<str:variant>", views.job_image, name="job-image"),
]
