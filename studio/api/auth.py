"""How the API knows who calls: a personal access token, as `Authorization: Bearer …`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from studio.accounts.models import Membership
from studio.api.models import AccessToken
from studio.http import client_address


@dataclass(frozen=True)
class Caller:
    """The token's person, with her role in the team it names."""

    token: AccessToken
    membership: Membership


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Caller | None:
        found = AccessToken.find(token)
        if found is None:
            return None
        # Her role now: removed from the team, or the team gone, the token opens nothing.
        membership = (
            Membership.objects.select_related("team", "user")
            .filter(user_id=found.user_id, team_id=found.team_id)
            .first()
        )
        if membership is None or not membership.user.is_active:
            return None
        found.record_use(client_address(request))
        request.user = membership.user
        return Caller(found, membership)


def caller(request: Any) -> Caller:
    """The caller of an authenticated operation (ninja keeps it as `request.auth`)."""
    found: Caller = request.auth
    return found
