"""Who is in which team, for every app's views.

The convention, for every app's `access.py`: `get_<thing>_for_user(user, <thing>_id, ...)`
returns the thing together with the caller's membership of its team (the caller's rights),
or raises Http404, so that nothing of a team is confirmed to exist to someone outside it.
What a member's role allows is asked by the view after the fetch (a 403).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

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


def get_membership_for_user(user: User | AnonymousUser) -> Membership:
    """The membership of the team the studio acts in; 404 for someone with no team."""
    membership = current_membership(user)
    if membership is None:
        raise Http404("No team.")
    return membership


def current_membership(user: User | AnonymousUser) -> Membership | None:
    """The membership the studio acts in: the user's first team by name, as the top bar
    shows, until there is a team switcher.

    Read once per request: the view and the page's top bar both ask, and request.user is
    loaded afresh for every request.
    """
    if not user.is_authenticated:
        return None
    cached: Membership | object | None = getattr(user, "_studio_membership", _UNREAD)
    if cached is not _UNREAD:
        return cast("Membership | None", cached)
    membership = (
        Membership.objects.select_related("team", "user")
        .filter(user=user)
        .order_by("team__name")
        .first()
    )
    user._studio_membership = membership  # type: ignore[attr-defined]
    return membership


_UNREAD = object()
