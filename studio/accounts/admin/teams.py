"""Teams and members in the admin: roles, quotas, model permissions, and this period's use.

Quotas and model permissions need their own permissions (change_team_limits,
change_member_limits), so a support person can read usage without changing limits. Every
change to them, and to who is in a team, is written to the audit log.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Exists, F, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone

from studio.accounts.models import Membership, ModelPrice, QuotaCounter, Team
from studio.audit.models import Entry, record
from studio.dashscope.catalog import MODELS

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

TEAM_LIMITS = (
    "monthly_budget",
    "images_per_day",
    "images_per_month",
    "member_images_per_day",
    "member_images_per_month",
    "member_jobs_in_flight",
)
MEMBER_LIMITS = ("images_per_day", "images_per_month", "jobs_in_flight")


def _changes(before: Model | None, after: Model, names: tuple[str, ...]) -> dict[str, list]:
    if before is None:
        return {}
    return {
        name: [getattr(before, name), getattr(after, name)]
        for name in names
        if getattr(before, name) != getattr(after, name)
    }


class TeamForm(forms.ModelForm):
    allowed_models = forms.MultipleChoiceField(
        choices=[(spec.name, f"{spec.label} ({spec.name})") for spec in MODELS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick the models this team may use; none ticked allows every model.",
    )

    class Meta:
        model = Team
        fields = ["name", "slug", *TEAM_LIMITS, "allowed_models"]


def _member_limits_readonly(request: HttpRequest) -> list[str]:
    """A member's limits are shown to everyone with access, changed only with the permission."""
    return [] if request.user.has_perm("accounts.change_member_limits") else list(MEMBER_LIMITS)


class MembershipInlineForm(forms.ModelForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "user" in self.fields:
            # A row is one person's membership (their counters and history are); another
            # person is added as a row of their own.
            self.fields["user"].disabled = True
        # A tabular row's labels are its column heads, which name no control: each control
        # says what it is, and whose, to a screen reader.
        whose = f" of {self.instance.user.get_username()}" if self.instance.pk else ""
        for field in self.fields.values():
            field.widget.attrs.setdefault("aria-label", f"{field.label}{whose}")


class MembershipInlineFormSet(forms.BaseInlineFormSet):
    def add_fields(self, form: forms.ModelForm[Membership], index: int | None) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            whose = f" {form.instance.user.get_username()}" if form.instance.pk else " this row"
            form.fields["DELETE"].widget.attrs["aria-label"] = f"Remove{whose}"


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipInlineForm
    formset = MembershipInlineFormSet
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", *MEMBER_LIMITS]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return _member_limits_readonly(request)


class _TeamMoney(TypedDict):
    """The columns TeamAdmin.get_queryset() adds for the team's money."""

    cost_used_month: Decimal
    cost_reserved_month: Decimal
    priced: bool


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamForm
    list_display = [
        "name",
        "slug",
        "models_allowed",
        "images_per_day",
        "images_per_month",
        "team_today",
        "team_this_month",
        "monthly_budget",
        "spent_this_month",
    ]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        # The team's own counters of this period, as sortable columns, and whether any
        # model has a price at all (read once, not per row).
        teams = _with_period_use(super().get_queryset(request), team=OuterRef("pk"), user=None)
        return teams.annotate(priced=Exists(ModelPrice.objects.all()))

    @admin.display(description="Today: used / reserved / left", ordering="spent_day")
    def team_today(self, team: Team) -> str:
        return _use(team, "day", team.images_per_day)

    @admin.display(description="This month: used / reserved / left", ordering="spent_month")
    def team_this_month(self, team: Team) -> str:
        return _use(team, "month", team.images_per_month)

    @admin.display(description="Spent this month (held)")
    def spent_this_month(self, team: WithAnnotations[Team, _TeamMoney]) -> str:
        if not (team.cost_used_month or team.cost_reserved_month or team.priced):
            return "no model prices set"  # 0.00 would read as free; nothing is counted
        return f"{team.cost_used_month:.2f} ({team.cost_reserved_month:.2f})"

    @admin.display(description="Models")
    def models_allowed(self, team: Team) -> str:
        return ", ".join(team.allowed_models) if team.allowed_models else "all"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if request.user.has_perm("accounts.change_team_limits"):
            return []
        return [*TEAM_LIMITS, "allowed_models"]

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        before = Team.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        limits = _changes(before, obj, TEAM_LIMITS)
        if limits:
            record(request, Entry.Action.QUOTA, obj, team=obj, changes=limits)
        models = _changes(before, obj, ("allowed_models",))
        if models:
            record(request, Entry.Action.PERMISSION, obj, team=obj, changes=models)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        before = {m.pk: m for m in Membership.objects.filter(team=form.instance)}
        super().save_formset(request, form, formset, change)
        _audit_memberships(request, form.instance, before)


def _audit_memberships(request: HttpRequest, team: Team, before: dict[int, Membership]) -> None:
    after = {m.pk: m for m in Membership.objects.filter(team=team).select_related("user")}
    for pk, member in after.items():
        old = before.get(pk)
        if old is None:
            record(
                request,
                Entry.Action.MEMBER,
                member,
                team=team,
                changes={"role": [None, member.role]},
            )
            continue
        roles = _changes(old, member, ("role",))
        if roles:
            record(request, Entry.Action.MEMBER, member, team=team, changes=roles)
        limits = _changes(old, member, MEMBER_LIMITS)
        if limits:
            record(request, Entry.Action.QUOTA, member, team=team, changes=limits)
    for pk, member in before.items():
        if pk not in after:
            record(
                request,
                Entry.Action.MEMBER,
                member,
                team=team,
                changes={"role": [member.role, None]},
            )


GRANT_AMOUNT = forms.IntegerField(min_value=1, max_value=100_000)


class GrantForm(ActionForm):
    """The action bar's extra fields: how many images, for which period."""

    # Text here, checked by the action: a value this form refused would make the list say
    # only "No action selected".
    amount = forms.CharField(required=False, label="Images")
    period = forms.ChoiceField(
        choices=QuotaCounter.PeriodName.choices, required=False, initial="month"
    )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "team",
        "role",
        "daily_limit_shown",
        "today",
        "monthly_limit_shown",
        "this_month",
    ]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "user__email", "team__name"]
    autocomplete_fields = ["user", "team"]
    list_select_related = ["user", "team"]
    action_form = GrantForm
    actions = ["grant_images", "reset_period"]

    @admin.action(description="Grant extra images for this period", permissions=["limits"])
    def grant_images(self, request: HttpRequest, members: QuerySet[Membership]) -> None:
        try:
            amount = GRANT_AMOUNT.clean(request.POST.get("amount", ""))
        except forms.ValidationError:
            amount = None
        period = request.POST.get("period") or "month"
        if amount is None or period not in QuotaCounter.PeriodName.values:
            self.message_user(
                request, "Say how many images to grant, from 1 to 100,000.", messages.ERROR
            )
            return
        now = timezone.now()
        for member in members.select_related("team", "user"):
            QuotaCounter.grant(member, period, int(amount), now)
            record(
                request,
                Entry.Action.GRANT,
                member,
                team=member.team,
                changes={f"granted this {period}": [None, amount]},
            )
        self.message_user(request, f"Granted {amount} extra images this {period}.")

    @admin.action(
        description="Reset the person's images used today and this month (not the team's)",
        permissions=["limits"],
    )
    def reset_period(self, request: HttpRequest, members: QuerySet[Membership]) -> None:
        now = timezone.now()
        for member in members.select_related("team", "user"):
            for period in ("day", "month"):
                cleared = QuotaCounter.clear_use(member, period, now)
                if cleared:
                    record(
                        request,
                        Entry.Action.QUOTA,
                        member,
                        team=member.team,
                        changes={f"used this {period}": [cleared, 0]},
                    )
        self.message_user(
            request,
            "Reset the images used this day and month; the team's totals still count them.",
        )

    def has_limits_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_member_limits")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A membership is of one person in one team: its quota counters and its history
        # are. Moving it would carry neither; remove it and add another instead.
        fixed = ["user", "team"] if obj is not None else []
        return fixed + _member_limits_readonly(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        # This period's counts as columns of the query, so the list sorts by them.
        return _with_period_use(
            super().get_queryset(request), team=OuterRef("team_id"), user=OuterRef("user_id")
        )

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        before = Membership.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        limits = _changes(before, obj, MEMBER_LIMITS)
        if limits:
            record(request, Entry.Action.QUOTA, obj, team=obj.team, changes=limits)
        roles = _changes(before, obj, ("role",))
        if roles or before is None:
            changes = roles or {"role": [None, obj.role]}
            record(request, Entry.Action.MEMBER, obj, team=obj.team, changes=changes)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        record(request, Entry.Action.MEMBER, obj, team=obj.team, changes={"role": [obj.role, None]})
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        """The list's "delete selected": each removal audited, as one alone would be."""
        for member in queryset.select_related("team", "user"):
            record(
                request,
                Entry.Action.MEMBER,
                member,
                team=member.team,
                changes={"role": [member.role, None]},
            )
        super().delete_queryset(request, queryset)

    @admin.display(description="Per day")
    def daily_limit_shown(self, member: Membership) -> str:
        return _limit(member.daily_limit, member.images_per_day)

    @admin.display(description="Per month")
    def monthly_limit_shown(self, member: Membership) -> str:
        return _limit(member.monthly_limit, member.images_per_month)

    @admin.display(description="Today: used / reserved / left", ordering="spent_day")
    def today(self, member: Membership) -> str:
        return _use(member, "day", member.daily_limit)

    @admin.display(description="This month: used / reserved / left", ordering="spent_month")
    def this_month(self, member: Membership) -> str:
        return _use(member, "month", member.monthly_limit)


def _limit(effective: int | None, own: int | None) -> str:
    if effective is None:
        return "no limit"
    return f"{effective}" if own is not None else f"{effective} (team default)"


def _use(row: Membership | Team, period: str, limit: int | None) -> str:
    """used / reserved / left of this period, from the columns _with_period_use() added."""
    used = getattr(row, f"used_{period}", 0)
    reserved = getattr(row, f"reserved_{period}", 0)
    granted = getattr(row, f"granted_{period}", 0)
    left = "∞" if limit is None else max(0, limit + granted - used - reserved)
    return f"{used} / {reserved} / {left}"


def _with_period_use(rows: QuerySet, *, team: Any, user: Any) -> QuerySet:
    """Annotate used_, reserved_, granted_ and spent_ (used + reserved) for the current
    day and month from the matching quota counters; 0 where there is none yet."""
    now = timezone.now()
    for period in ("day", "month"):
        counters = QuotaCounter.objects.of(team, user).current(period, now)
        rows = rows.annotate(
            **{
                f"{name}_{period}": Coalesce(Subquery(counters.values(name)[:1]), 0)
                for name in ("used", "reserved", "granted")
            }
        )
        if period == "month" and user is None:
            # The team's month counter also holds its money (see QuotaCounter.reserve).
            rows = rows.annotate(
                **{
                    f"{name}_month": Coalesce(Subquery(counters.values(name)[:1]), Decimal(0))
                    for name in ("cost_used", "cost_reserved")
                }
            )
        rows = rows.annotate(**{f"spent_{period}": F(f"used_{period}") + F(f"reserved_{period}")})
    return rows
