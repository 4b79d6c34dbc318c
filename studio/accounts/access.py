from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import Http404

from studio.accounts.models import Membership, Team

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def get_membership(user: User | AnonymousUser, team: Team) -> Membership:
    """The user's membership of `team`.

    Raises Http404 rather than PermissionDenied for non-members, so that a team's existence
    is never revealed to someone outside it.
    """
    if not user.is_authenticated:
        raise Http404("No such team.")
    membership = Membership.objects.select_related("team").filter(team=team, user=user).first()
    if membership is None:
        raise Http404("No such team.")
    return membership


def current_membership(user: User | AnonymousUser) -> Membership | None:
    """The membership the studio acts in: the user's first team by name, as the top bar
    shows, until there is a team switcher."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.select_related("team", "user")
        .filter(user=user)
        .order_by("team__name")
        .first()
    )
