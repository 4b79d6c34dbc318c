"""Failed logins counted per address, beside django-axes' count per username: one address
trying a few passwords under each of many usernames stays under every username's limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from axes.models import AccessFailureLog
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from studio.http import client_address


def _recent_failures(request: HttpRequest) -> QuerySet[AccessFailureLog]:
    """Failed logins from the request's address, for any username, within the lockout's
    length, newest first."""
    address = client_address(request)
    if not address:
        return AccessFailureLog.objects.none()
    since = timezone.now() - timedelta(minutes=settings.STUDIO_LOGIN_LOCKOUT_MINUTES)
    return AccessFailureLog.objects.filter(ip_address=address, attempt_time__gte=since).order_by(
        "-attempt_time"
    )


def address_locked(request: HttpRequest) -> bool:
    """True when so many logins failed from this address that it is refused for a while."""
    return _recent_failures(request).count() >= settings.STUDIO_LOGIN_ADDRESS_FAILURES


def address_locked_until(request: HttpRequest) -> datetime:
    """When the address may try again: once the oldest failure that still counts towards
    the limit is older than the lockout's length."""
    limit = settings.STUDIO_LOGIN_ADDRESS_FAILURES
    oldest_counted = _recent_failures(request)[limit - 1 : limit].first()
    moment = oldest_counted.attempt_time if oldest_counted else timezone.now()
    return moment + timedelta(minutes=settings.STUDIO_LOGIN_LOCKOUT_MINUTES)
