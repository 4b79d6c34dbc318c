"""The login lockout's place among the authentication backends."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out username before its password is checked (django-axes).

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
        return super().authenticate(request, username, password, **kwargs)
