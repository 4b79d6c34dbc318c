from django.contrib import admin

from studio.generation.models import GeneratedImage, Job, JobEvent, JobInput


class ReadOnlyInline(admin.TabularInline):
    """A job's parts as they happened: shown, never edited."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return list(self.fields or [])

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class JobEventInline(ReadOnlyInline):
    model = JobEvent
    fields = ["at", "status", "message", "code", "request_id"]


class JobInputInline(ReadOnlyInline):
    model = JobInput
    fields = ["position", "image", "width", "height", "boxes", "adjustments"]


class GeneratedImageInline(ReadOnlyInline):
    model = GeneratedImage
    fields = ["index", "image", "width", "height", "bytes", "sha256"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "team",
        "author",
        "model",
        "status",
        "images_requested",
        "images_charged",
        "created_at",
    ]
    list_filter = ["status", "model", "kind", "team"]
    search_fields = ["prompt", "provider_task_id", "provider_request_id", "author__username"]
    date_hierarchy = "created_at"
    # The signed result URLs (`result_urls`) are secrets and are never shown.
    fields = [
        "team",
        "author",
        "kind",
        "model",
        "prompt",
        "negative_prompt",
        "parameters",
        "status",
        "error_code",
        "error_message",
        "images_requested",
        "images_charged",
        "usage",
        "provider_task_id",
        "provider_request_id",
        "provider_submitted_at",
        "provider_started_at",
        "provider_finished_at",
        "submit_started_at",
        "timed_out_at",
        "attempts",
        "polls",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields
    inlines = [JobInputInline, GeneratedImageInline, JobEventInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
