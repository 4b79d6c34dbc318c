"""Personal access tokens: what a script uses the API with, acting as its person with her
role in the team the token names."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Team

PREFIX = "stu_"  # says what it is in a leaked log or a secret scanner's report


def digest_of(raw: str) -> str:
    """What is stored of a token: its SHA-256 (a token is long and random: no salt needed,
    and a lookup stays one indexed query)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class AccessTokenQuerySet(models.QuerySet["AccessToken"]):
    def usable(self, now: datetime | None = None) -> AccessTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AccessToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        GENERATE = "generate", "Read and generate"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ)
    # Its first characters, to tell tokens apart in lists; the rest is never kept.
    shown = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_address = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AccessTokenQuerySet.as_manager()

    # How often its last use is written: a busy script does not write a row a request.
    USE_RECORDED_EVERY = 60

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.shown}…) of {self.user}"

    @classmethod
    def issue(
        cls,
        user: object,
        team: Team,
        *,
        name: str,
        scope: str,
        expires_at: datetime | None = None,
    ) -> tuple[AccessToken, str]:
        """A new token and its secret, which is shown once and never stored."""
        raw = PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            team=team,
            name=name,
            scope=scope,
            shown=raw[: len(PREFIX) + 6],
            digest=digest_of(raw),
            expires_at=expires_at,
        )
        return token, raw

    @classmethod
    def find(cls, raw: str, now: datetime | None = None) -> AccessToken | None:
        """The usable token of that secret, or None."""
        if not raw.startswith(PREFIX):
            return None
        return (
            cls.objects.usable(now)
            .select_related("user", "team")
            .filter(digest=digest_of(raw))
            .first()
        )

    @property
    def may_generate(self) -> bool:
        return self.scope == self.Scope.GENERATE

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def record_use(self, address: str | None, now: datetime | None = None) -> None:
        """Its last use: when, and from where; written at most once a minute."""
        now = now or timezone.now()
        recent = self.last_used_at and (now - self.last_used_at).total_seconds() < (
            self.USE_RECORDED_EVERY
        )
        if recent and address == self.last_used_address:
            return
        AccessToken.objects.filter(pk=self.pk).update(last_used_at=now, last_used_address=address)
        self.last_used_at, self.last_used_address = now, address

    def revoke(self, now: datetime | None = None) -> bool:
        """Revoke it; False if it was revoked already."""
        changed = AccessToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=now or timezone.now()
        )
        return bool(changed)
