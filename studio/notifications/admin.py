from django.contrib import admin
from django.http import HttpRequest

from studio.notifications.models import EmailDigest, Notification, Preference


class ReadOnly(admin.ModelAdmin):
    """Staff see what people were told and chose; the studio alone writes it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnly):
    list_display = ["created_at", "recipient", "kind", "text", "read_at", "by_email", "emailed_at"]
    list_filter = ["kind", "by_email", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["recipient__username", "text"]
    list_select_related = ["recipient"]
    date_hierarchy = "created_at"


@admin.register(Preference)
class PreferenceAdmin(ReadOnly):
    list_display = ["user", "kind", "by_email"]
    list_filter = ["kind", "by_email"]
    search_fields = ["user__username"]
    list_select_related = ["user"]


@admin.register(EmailDigest)
class EmailDigestAdmin(ReadOnly):
    list_display = ["user", "last_sent_at", "due_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
