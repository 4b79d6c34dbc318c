import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError
from django.http import Http404

from studio.accounts.access import get_membership
from studio.accounts.models import Membership, Team
from tests.support.factories import create_membership, create_team, create_user

Role = Membership.Role


@pytest.mark.parametrize(
    ("role", "can_generate", "can_review", "can_manage"),
    [
        (Role.OWNER, True, True, True),
        (Role.REVIEWER, True, True, False),
        (Role.DESIGNER, True, False, False),
        (Role.VIEWER, False, False, False),
    ],
)
def test_each_role_grants_its_permissions(db, role, can_generate, can_review, can_manage):
    membership = create_membership(team=create_team(), user=create_user(), role=role)

    assert membership.can_generate is can_generate
    assert membership.can_review is can_review
    assert membership.can_manage is can_manage


def test_for_user_lists_only_the_users_teams(team, designer, outsider):
    create_team(name="Nobody's Team")

    assert list(Team.objects.for_user(designer)) == [team]
    assert [t.slug for t in Team.objects.for_user(outsider)] == ["other"]


def test_a_user_can_be_in_a_team_only_once(team, designer):
    with pytest.raises(IntegrityError):
        create_membership(team=team, user=designer, role=Role.VIEWER)


def test_get_membership_returns_the_members_role(team, owner, viewer):
    assert get_membership(owner, team).role == Role.OWNER
    assert get_membership(viewer, team).role == Role.VIEWER


def test_get_membership_raises_404_for_an_outsider(team, outsider):
    with pytest.raises(Http404):
        get_membership(outsider, team)


def test_get_membership_raises_404_for_an_anonymous_user(team):
    with pytest.raises(Http404):
        get_membership(AnonymousUser(), team)
