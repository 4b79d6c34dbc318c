"""The teams' brand kits in the admin: seen and searched; kept by owners on the kits page,
where every change is audited."""

from __future__ import annotations

from django.contrib import admin

from studio.generation.models import BrandKit, KitImage


class KitImageInline(admin.TabularInline):
    model = KitImage
    fields = ("position", "name", "width", "height", "bytes", "adjustments")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(BrandKit)
class BrandKitAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "model", "size", "watermark", "updated_at"]
    list_filter = ["team"]
    search_fields = ["name", "team__name", "prompt_template"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [KitImageInline]

    def has_add_permission(self, request: object) -> bool:
        return False  # made on the kits page, where its images are normalised and audited
