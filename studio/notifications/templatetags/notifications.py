"""The header's bell, drawn on every signed-in page and by its own poll."""

from __future__ import annotations

from typing import Any

from django import template

from studio.notifications.models import Notification

register = template.Library()


def bell_context(user: Any) -> dict[str, int]:
    return {"unread": Notification.objects.seen_by(user).unread().count()}


@register.inclusion_tag("notifications/bell.html", takes_context=True)
def notification_bell(context: template.Context) -> dict[str, int]:
    return bell_context(context["user"])
