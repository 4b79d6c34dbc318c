from __future__ import annotations

from django.http import HttpRequest

from studio.accounts.access import current_membership
from studio.accounts.models import Team


def current_team(request: HttpRequest) -> dict[str, Team | None]:
    user = getattr(request, "user", None)
    membership = current_membership(user) if user is not None else None
    return {"current_team": membership.team if membership else None}
