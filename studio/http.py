from __future__ import annotations

from typing import TYPE_CHECKING

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
