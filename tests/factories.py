"""Keyword-only factory functions: each test states only the fields it depends on."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import User
from django.utils.text import slugify

from studio.accounts.models import Membership, Team

DEFAULT_PASSWORD = "correct-horse-battery"

_sequence = itertools.count(1)


def create_user(
    *, username: str | None = None, password: str = DEFAULT_PASSWORD, is_staff: bool = False
) -> User:
    return User.objects.create_user(
        username=username or f"user{next(_sequence)}", password=password, is_staff=is_staff
    )


def create_team(*, name: str | None = None, slug: str | None = None) -> Team:
    name = name or f"Team {next(_sequence)}"
    return Team.objects.create(name=name, slug=slug or slugify(name))


def create_membership(
    *, team: Team, user: User, role: Membership.Role = Membership.Role.DESIGNER
) -> Membership:
    return Membership.objects.create(team=team, user=user, role=role)
