"""Where a request came from, and how many failed logins came from there.

Behind a reverse proxy every request arrives from the proxy's address; the client's is in
X-Forwarded-For, where each proxy appends the address it was reached from. Entries left of
those appended by our own proxies are whatever the client chose to send, so only the
STUDIO_TRUSTED_PROXIES right-most entries are believed, and the left-most of them is the
client's.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from axes.models import AccessFailureLog
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone


def client_address(request: HttpRequest) -> str | None:
    """The address of the client, as the studio's own proxies saw it."""
    peer = request.META.get("REMOTE_ADDR") or None
    trusted = settings.STUDIO_TRUSTED_PROXIES
    if not trusted:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < trusted:
        return peer  # not through all our proxies: the peer is the nearest we know
    candidate = forwarded[-trusted]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def address_failures(address: str | None) -> int:
    """Failed logins from `address`, for any username, within the lockout's length."""
    if not address:
        return 0
    since = timezone.now() - timedelta(minutes=settings.STUDIO_LOGIN_LOCKOUT_MINUTES)
    return AccessFailureLog.objects.filter(ip_address=address, attempt_time__gte=since).count()


def address_locked(request: HttpRequest) -> bool:
    """True when so many logins failed from this address that it is refused for a while:
    one address trying many usernames (a few passwords each, under every username's own
    limit) is stopped here."""
    return address_failures(client_address(request)) >= settings.STUDIO_LOGIN_ADDRESS_FAILURES


def purge_failures(days: int = 30) -> None:
    """Drop failed-login records older than a month; the lockouts look back minutes."""
    AccessFailureLog.objects.filter(attempt_time__lt=timezone.now() - timedelta(days=days)).delete()
