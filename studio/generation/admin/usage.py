"""The usage report: images and money by day, person, model or team, for staff."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from typing import Any, NotRequired, TypedDict, cast

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from studio.accounts.models import Team
from studio.generation.reports import GROUPS, UsageReport, chart_bars, usage


class UsageForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(choices=list(GROUPS.items()), initial="day", label="Group by")
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(), required=False, empty_label="All teams"
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean() returns
        if data.get("start") and data.get("end"):
            if data["end"] < data["start"]:
                raise forms.ValidationError("The range ends before it starts.")
            if (data["end"] - data["start"]).days > 366:
                raise forms.ValidationError("Choose a range of a year or less.")
        return data


class UsageParams(TypedDict):
    """What the report is asked for: the form's cleaned data, or the defaults."""

    start: date
    end: date
    by: str
    team: NotRequired[Team | None]


def usage_report(request: HttpRequest) -> HttpResponse:
    """Images and money by day, person, model or team, as a table, a chart and a CSV."""
    if not request.user.has_perm("generation.view_job"):
        raise PermissionDenied("Reading usage needs the permission to view jobs.")
    today = timezone.localdate()
    defaults: UsageParams = {"start": today - timedelta(days=29), "end": today, "by": "day"}
    # What the address leaves out (or empty) takes its default, so `?by=model` alone is
    # the last thirty days by model, and the form shows the range the report covers.
    given = {key: value for key, value in request.GET.items() if value}
    form = UsageForm({**{key: str(value) for key, value in defaults.items()}, **given})
    params = cast(UsageParams, form.cleaned_data) if form.is_valid() else defaults
    team = params.get("team")
    report = usage(params["start"], params["end"], params["by"], team.pk if team else None)
    if request.GET.get("format") == "csv":
        return _usage_csv(report)
    context = {
        **admin.site.each_context(request),
        "title": "Usage",
        "form": form,
        "report": report,
        "bars": chart_bars(report),
        "csv_query": (request.GET.urlencode() + "&" if request.GET else "") + "format=csv",
    }
    return TemplateResponse(request, "admin/usage.html", context)


def _usage_csv(report: UsageReport) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"usage-{report.by}-{report.start}-{report.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        [GROUPS[report.by], "Jobs", "Images", f"Cost ({report.currency})", "Failed", "Errors"]
    )
    for row in [*report.rows, report.total]:
        writer.writerow(
            [row.key, row.jobs, row.images, f"{row.cost:.2f}", row.failed, row.error_summary]
        )
    return response
