"""The audit log: who did what, to what, when and from where. Written once, never edited."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from studio.http import client_address


class Entry(models.Model):
    class Action(models.TextChoices):
        GENERATE = "generate", "Generate"
        DOWNLOAD = "download", "Download"
        REVIEW = "review", "Review state"
        DELETE = "delete", "Delete"
        RESTORE = "restore", "Restore"
        QUOTA = "quota", "Quota change"
        GRANT = "grant", "Extra images granted"
        PERMISSION = "permission", "Model permission change"
        MEMBER = "member", "Member change"
        RETRY_DOWNLOAD = "retry_download", "Download retried"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)  # kept if the user goes
    action = models.CharField(max_length=16, choices=Action.choices, db_index=True)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=200)  # what it was done to, in words
    changes = models.JSONField(default=dict, blank=True)  # field: [before, after]
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.get_action_display()}"


def record(request: HttpRequest | None, action: str, target: object, **fields: Any) -> Entry:
    """Write one entry; the actor and address come from the request when there is one.
    `fields` are entry()'s: team, changes, actor."""
    item = entry(request, action, target, **fields)
    item.save()
    return item


def entry(
    request: HttpRequest | None,
    action: str,
    target: object,
    *,
    team: Any = None,
    changes: dict[str, Any] | None = None,
    actor: Any = None,
) -> Entry:
    """An entry not yet written: many of them go in one statement with bulk_create()."""
    user = actor or (getattr(request, "user", None) if request is not None else None)
    if user is not None and not user.is_authenticated:
        user = None
    return Entry(
        actor=user,
        actor_name=user.get_username() if user else "",
        action=action,
        team=team,
        target=str(target)[:200],
        changes=changes or {},
        address=client_address(request) if request is not None else None,
    )
