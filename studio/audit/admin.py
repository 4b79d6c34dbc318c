from django.contrib import admin
from django.http import HttpRequest

from studio.audit.models import Entry


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    """Readable and filterable by staff; nobody adds, changes or deletes an entry."""

    list_display = ["at", "actor_name", "action", "team", "target", "address"]
    list_filter = ["action", "team", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "target"]
    list_select_related = ["team"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in Entry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
