"""Teams and their members: roles, and the limits each sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class TeamQuerySet(models.QuerySet["Team"]):
    def for_user(self, user: User) -> TeamQuerySet:
        """The teams `user` is a member of, in any role."""
        return self.filter(memberships__user=user)


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Limits for the team as a whole; empty means no limit.
    images_per_day = models.PositiveIntegerField(null=True, blank=True)
    images_per_month = models.PositiveIntegerField(null=True, blank=True)
    # Defaults for each member, unless the membership sets its own.
    member_images_per_day = models.PositiveIntegerField(null=True, blank=True)
    member_images_per_month = models.PositiveIntegerField(null=True, blank=True)
    member_jobs_in_flight = models.PositiveIntegerField(
        default=10, help_text="Jobs one person may have queued or running at once."
    )
    monthly_budget = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Money the team may spend a month, at the prices in the price table; "
        "empty for no budget.",
    )
    # The catalog models this team may use; empty means all of them.
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Models the team may use; leave empty to allow every model.",
    )

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("change_team_limits", "Can change team quotas and model permissions")]

    def __str__(self) -> str:
        return self.name

    def allows(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        REVIEWER = "reviewer", "Reviewer"
        DESIGNER = "designer", "Designer"
        VIEWER = "viewer", "Viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    # Personal limits; empty falls back to the team's member defaults.
    images_per_day = models.PositiveIntegerField(null=True, blank=True)
    images_per_month = models.PositiveIntegerField(null=True, blank=True)
    jobs_in_flight = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_membership_per_team"),
        ]
        permissions = [("change_member_limits", "Can change a member's quota")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.get_role_display()})"

    @property
    def can_generate(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.REVIEWER, self.Role.DESIGNER)

    @property
    def can_review(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.REVIEWER)

    @property
    def can_manage(self) -> bool:
        return self.role == self.Role.OWNER

    @property
    def daily_limit(self) -> int | None:
        return _first_set(self.images_per_day, self.team.member_images_per_day)

    @property
    def monthly_limit(self) -> int | None:
        return _first_set(self.images_per_month, self.team.member_images_per_month)

    @property
    def jobs_in_flight_limit(self) -> int:
        return _first_set(self.jobs_in_flight, self.team.member_jobs_in_flight) or 0


def _first_set(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)
