"""The login lockout's place among the authentication backends."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.http import HttpRequest

from studio.accounts.addresses import address_locked


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out username, or an address too many logins failed from, before
    the password is checked (django-axes counts the failures).

    A call without a request comes from no web client, so there is no one to lock out:
    Django's test client `login()` and the shell authenticate that way, and go on to the
    password check as before. Every login form passes its request.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        if address_locked(request):
            # The lockout page (views.locked_out) says which of the two it is.
            request.axes_locked_out = True  # type: ignore[attr-defined]
            request.studio_address_locked = True  # type: ignore[attr-defined]
            raise AxesBackendPermissionDenied("Too many failed logins from this address")
        return super().authenticate(request, username, password, **kwargs)
