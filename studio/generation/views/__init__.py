"""The generation pages, one module each: compose (text to image), edits (the edit form),
inputs (its reference images), explore (one prompt to several models), kits (the team's
brand kits) and jobs (a job's page and actions). The views are named here for the app's
urls."""

from studio.generation.views.compose import count_prompt, generate, recent_jobs
from studio.generation.views.edits import edit
from studio.generation.views.explore import exploration_detail, exploration_vote, explore
from studio.generation.views.inputs import stage_input, staged_image, use_as_input
from studio.generation.views.jobs import (
    job_cancel,
    job_detail,
    job_image,
    job_input,
    job_retry,
    job_variations,
)
from studio.generation.views.kits import kit_delete, kit_edit, kit_image, kit_list, kit_new

__all__ = [
    "count_prompt",
    "edit",
    "exploration_detail",
    "exploration_vote",
    "explore",
    "generate",
    "job_cancel",
    "job_detail",
    "job_image",
    "job_input",
    "job_retry",
    "job_variations",
    "kit_delete",
    "kit_edit",
    "kit_image",
    "kit_list",
    "kit_new",
    "recent_jobs",
    "stage_input",
    "staged_image",
    "use_as_input",
]
