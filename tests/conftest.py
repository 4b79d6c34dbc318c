from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from studio.accounts.models import Membership, Team
from tests.support.factories import create_membership, create_team, create_user

# Emulator fixtures (`emulated`, `served_emulator`) for the provider-layer tests.
pytest_plugins = [
    "tests.support.emulation",
    "tests.support.pipeline",
    "tests.support.browser",
    "tests.support.servers",
    "tests.support.clusters",
    "tests.support.s3",
    "tests.support.notifications",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    # The production hasher is slow on purpose; tests log users in many times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Personas: an owner, a designer and a viewer of `team`, and an outsider who belongs to
# another team only. Each is a User; read the role with get_membership(user, team).


@pytest.fixture
def team(db) -> Team:
    return create_team(name="Acme Design", slug="acme")


@pytest.fixture
def owner(team: Team) -> User:
    user = create_user(username="olivia")
    create_membership(team=team, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def designer(team: Team) -> User:
    user = create_user(username="dan")
    create_membership(team=team, user=user, role=Membership.Role.DESIGNER)
    return user


@pytest.fixture
def viewer(team: Team) -> User:
    user = create_user(username="vera")
    create_membership(team=team, user=user, role=Membership.Role.VIEWER)
    return user


@pytest.fixture
def outsider(db) -> User:
    user = create_user(username="oscar")
    other_team = create_team(name="Other Agency", slug="other")
    create_membership(team=other_team, user=user, role=Membership.Role.OWNER)
    return user
