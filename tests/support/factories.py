"""Keyword-only factory functions: each test states only the fields it depends on."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.text import slugify

from studio.accounts.models import Membership, Team
from studio.generation.models import GeneratedImage, Job

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


def create_job_row(member: Membership, **fields) -> Job:
    """A job row as the worker leaves it, without running anything: queued, unless
    `fields` say otherwise."""
    defaults = {
        "kind": Job.Kind.TEXT_TO_IMAGE,
        "model": "wan2.6-t2i",
        "prompt": "p",
        "parameters": {"size": "1280*1280", "n": 1},
        "images_requested": 1,
    }
    return Job.objects.create(team=member.team, author=member.user, **(defaults | fields))


def create_generated_image(
    member: Membership,
    *,
    prompt: str = "A red chair",
    model: str = "wan2.6-t2i",
    kind: str = Job.Kind.TEXT_TO_IMAGE,
    at=None,
    index: int = 0,
    job: Job | None = None,
) -> GeneratedImage:
    """A finished job's image row (no files on disk), as the gallery lists it."""
    at = at or timezone.now()
    job = job or create_job_row(
        member, kind=kind, model=model, prompt=prompt, status=Job.Status.SUCCEEDED, created_at=at
    )
    return GeneratedImage.objects.create(
        job=job,
        team=member.team,
        index=index,
        image=f"results/{job.pk}/{index}.png",
        thumbnail=f"thumbs/{job.pk}/{index}.webp",
        width=1280,
        height=1280,
        bytes=1000,
        sha256="0" * 64,
        created_at=at,
    )


def named_patterns(*, include_namespaced: bool = False) -> dict[str, URLPattern]:
    """Every named URL pattern of the project, the first of each name; the admin's own
    (namespaced) ones only when asked for."""
    found: dict[str, URLPattern] = {}

    def walk(patterns) -> None:
        for item in patterns:
            if isinstance(item, URLResolver):
                if include_namespaced or not item.namespace:
                    walk(item.url_patterns)
            elif isinstance(item, URLPattern) and item.name:
                found.setdefault(item.name, item)

    walk(get_resolver().url_patterns)
    return found
