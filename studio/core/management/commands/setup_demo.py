from __future__ import annotations

import os
import secrets
import string
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from studio.accounts.models import Membership, Team


def demo_url() -> str:
    """Where `make run` serves the studio: its port, as scripts/run.sh chooses it."""
    return f"http://127.0.0.1:{os.environ.get('STUDIO_RUN_PORT') or 8000}/"


DEMO_ACCOUNTS = [
    # username, role, is_superuser
    ("admin", Membership.Role.OWNER, True),
    ("designer", Membership.Role.DESIGNER, False),
]


def generate_password() -> str:
    # Letters and digits only, so the password is easy to copy from a terminal.
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16))


class Command(BaseCommand):
    help = "Create the demo team with an admin (owner) and a designer. Safe to run repeatedly."

    def handle(self, *args: Any, **options: Any) -> None:
        env_password = os.environ.get("STUDIO_DEMO_PASSWORD", "")
        with transaction.atomic():
            team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo Studio"})
            credentials = [
                (username, role, self.ensure_account(team, username, role, superuser, env_password))
                for username, role, superuser in DEMO_ACCOUNTS
            ]

        self.stdout.write(f"Studio is at {demo_url()}  (team: {team.name})")
        for username, role, password in credentials:
            shown = f"password: {password}" if password else "password unchanged"
            self.stdout.write(f"  {username:<10} {shown}  [{role.label}]")

    def ensure_account(
        self,
        team: Team,
        username: str,
        role: Membership.Role,
        superuser: bool,
        env_password: str,
    ) -> str:
        """Create or update one demo account; return the password it was given, or ""."""
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": superuser, "is_superuser": superuser}
        )
        # An existing account keeps its password unless one is given explicitly: someone may
        # have changed it, and a re-run must not lock them out.
        password = env_password or (generate_password() if created else "")
        if password:
            user.set_password(password)
            user.save()
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
        return password
