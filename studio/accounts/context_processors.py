from __future__ import annotations

from django.http import HttpRequest

from studio.accounts.models import Team


def current_team(request: HttpRequest) -> dict[str, Team | None]:
    # There is no team switcher yet, so the top bar shows the user's first team by name.
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_team": None}
    return {"current_team": Team.objects.for_user(user).order_by("name").first()}
