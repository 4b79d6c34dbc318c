"""What several of the gallery's views ask of a request."""

from __future__ import annotations

from django.utils.http import url_has_allowed_host_and_scheme

from studio.http import AppRequest


def safe_next(request: AppRequest) -> str:
    """The page a form asked to go back to, if it is one of ours; else ""."""
    back = request.POST.get("next", "")
    return back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else ""
