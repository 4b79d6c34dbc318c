"""The request as the studio's views see it, and where it came from."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_htmx.middleware import HtmxDetails


class AppRequest(HttpRequest):
    """The request as our views see it, for annotations only.

    Views behind @login_required always have a real user, and HtmxMiddleware adds `htmx`.
    """

    user: User
    htmx: HtmxDetails


# The headers on which a view that answers htmx with a part of its page chooses that part:
# named in Vary, so a browser going back never shows a cached part as the whole page.
PARTIAL_HEADERS = ("HX-Request", "HX-Target")


def client_address(request: HttpRequest) -> str | None:
    """The address of the client, as the studio's own proxies saw it.

    Behind a reverse proxy every request arrives from the proxy; the client's address is in
    X-Forwarded-For, where each proxy appends the address it was reached from. Entries left
    of those our own proxies appended are whatever the client chose to send, so only the
    STUDIO_TRUSTED_PROXIES right-most entries are believed, and the left-most of them is the
    client's.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    trusted = settings.STUDIO_TRUSTED_PROXIES
    if not trusted:
        return peer
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if len(forwarded) < trusted:
        return peer  # not through all our proxies: the peer is the nearest we know
    try:
        return str(ipaddress.ip_address(forwarded[-trusted]))
    except ValueError:
        return peer
