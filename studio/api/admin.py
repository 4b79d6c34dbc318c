"""Everyone's access tokens for the staff: seen (never their secrets) and revoked."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from studio.api.models import AccessToken
from studio.audit.models import Entry, record


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "team",
        "scope",
        "shown",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_address",
        "revoked_at",
    ]
    list_filter = ["scope", "team", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "shown"]
    readonly_fields = [f.name for f in AccessToken._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by their person, who alone sees the secret once

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AccessToken]) -> None:
        revoked = 0
        for token in queryset:
            if token.revoke():
                revoked += 1
                record(
                    request,
                    Entry.Action.TOKEN,
                    f"Access token {token.name} ({token.shown}…)",
                    team=token.team,
                    changes={"revoked": [False, True]},
                )
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return super().get_actions(request)
