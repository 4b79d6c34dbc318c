"""A person's notifications: the bell's count, the list, opening one, and her settings."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio.http import AppRequest
from studio.notifications.models import Kind, Notification, Preference
from studio.notifications.templatetags.notifications import bell_context

SHOWN = 100  # the newest; older ones wait in the database, read or not


@require_GET
@never_cache
def bell(request: AppRequest) -> HttpResponse:
    """The header's bell, polled: its count of unread notifications."""
    if not request.user.is_authenticated:
        return HttpResponse(status=204)  # signed out meanwhile: the bell stays as it was
    return render(request, "notifications/bell.html", bell_context(request.user))


@require_GET
@login_required
def notification_list(request: AppRequest) -> HttpResponse:
    notifications = list(Notification.objects.seen_by(request.user).select_related("actor")[:SHOWN])
    unread = sum(1 for notification in notifications if notification.is_unread)
    return render(
        request,
        "notifications/list.html",
        {"notifications": notifications, "unread": unread},
    )


@require_GET
@login_required
def notification_open(request: AppRequest, notification_id: int) -> HttpResponse:
    """Go to the page a notification is about, marking it read."""
    notification = get_object_or_404(Notification.objects.seen_by(request.user), pk=notification_id)
    Notification.objects.filter(pk=notification.pk).mark_read()
    return redirect(notification.link)


@require_POST
@login_required
def notifications_read(request: AppRequest) -> HttpResponse:
    Notification.objects.filter(recipient=request.user).mark_read()
    return redirect("notifications")


@require_http_methods(["GET", "POST"])
@login_required
def notification_settings(request: AppRequest) -> HttpResponse:
    """Per kind: in the studio only, or in the studio and by email."""
    if request.method == "POST":
        chosen = {kind: request.POST.get(kind) == "email" for kind in Kind.values}
        Preference.choose(request.user.pk, chosen)
        messages.success(request, "Your notification settings are saved.")
        return redirect("notification-settings")
    by_email = Preference.email_choices(request.user.pk)
    rows = [(kind, label, by_email[kind]) for kind, label in Kind.choices]
    return render(
        request,
        "notifications/settings.html",
        {"rows": rows, "has_email": bool(request.user.email)},
    )
