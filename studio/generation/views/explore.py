"""Explore: the form (with what each model will receive, drawn again as it changes), and
an exploration's grid, filling in as its jobs end, with the team's votes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from studio.accounts.access import current_membership
from studio.accounts.models import Membership
from studio.audit.models import Entry, record
from studio.dashscope.catalog import UnknownModel, get_model
from studio.generation.explore import MOST_MODELS, Plan, plan_exploration, start_exploration
from studio.generation.explore_form import ExploreForm
from studio.generation.models import Exploration, ExplorationCell, GeneratedImage, Vote
from studio.generation.services import JobRefused
from studio.generation.staging import staged_form
from studio.generation.views.shared import generating_membership
from studio.generation.votes import toggle_vote
from studio.http import PARTIAL_HEADERS, AppRequest
from studio.notifications.watching import mark_watching

RECENT_EXPLORATIONS = 10
GRID_WATCH_SECONDS = 7


def _plan(form: ExploreForm, membership: Membership, posted: QueryDict) -> Plan | None:
    """The plan of the form as it stands: as much as can be read of it."""
    data = form.cleaned_data if form.is_valid() else {}
    names = data.get("model_names") or posted.getlist("model_names")[:MOST_MODELS]
    if not names:
        return None
    seeds: list[int | None] = form.seeds() if data else [None] * _rows(form)
    return plan_exploration(
        membership,
        references=form.references if "with_references" in posted else (),
        prompt=str(form.data.get("prompt", "")).replace("\r\n", "\n"),
        negative_prompt=str(form.data.get("negative_prompt", "")).replace("\r\n", "\n"),
        model_names=names,
        seeds=seeds,
        shape=data.get("shape") or str(form.data.get("shape") or "1:1"),
    )


def _rows(form: ExploreForm) -> int:
    value = str(form.data.get("rows", "2"))
    return int(value) if value in ("1", "2", "3", "4") else 2


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def explore(request: AppRequest) -> HttpResponse:
    membership = generating_membership(request)
    references = staged_form(membership)  # the images on her Edit form, with their regions
    if request.method == "GET":
        initial = {"prompt": request.GET.get("prompt", ""), "with_references": bool(references)}
        form = ExploreForm(team=membership.team, references=references, initial=initial)
        return _render(request, membership, form, None)
    form = ExploreForm(request.POST, team=membership.team, references=references)
    plan = _plan(form, membership, request.POST)
    if "preview" in request.POST:
        form.errors.clear()  # the preview says what the models would receive, not errors
        context = {"plan": plan, "ticked": len(request.POST.getlist("model_names"))}
        return render(request, "generation/explore.html#plan", context)
    status = 200
    if form.is_valid() and plan is not None and plan.sendable:
        try:
            exploration = start_exploration(membership, plan)
        except JobRefused as refused:
            form.add_error(None, " ".join(problem.message for problem in refused.problems))
            status = 409
        else:
            record(
                request,
                Entry.Action.GENERATE,
                exploration,
                team=membership.team,
                changes={"models": [None, exploration.model_names], "images": [None, plan.images]},
            )
            return redirect("exploration", exploration_id=exploration.pk)
    elif form.is_valid():
        form.add_error(None, "Some models cannot take this as it is; each says why below.")
    return _render(
        request, membership, form, plan, status, len(request.POST.getlist("model_names"))
    )


def _render(
    request: AppRequest,
    membership: Membership,
    form: ExploreForm,
    plan: Plan | None,
    status: int = 200,
    ticked: int = 0,
) -> HttpResponse:
    recent = Exploration.objects.filter(team_id=membership.team_id).select_related("author")
    context = {
        "form": form,
        "plan": plan,
        "recent": recent[:RECENT_EXPLORATIONS],
        "ticked": ticked,
    }
    return render(request, "generation/explore.html", context, status=status)


# -- An exploration's grid --------------------------------------------------------------------


def member(request: AppRequest) -> Membership:
    membership = current_membership(request.user)
    if membership is None:
        raise Http404("No team.")
    return membership


def get_exploration(membership: Membership, exploration_id: int) -> Exploration:
    return get_object_or_404(
        Exploration.objects.select_related("author", "winner"),
        pk=exploration_id,
        team_id=membership.team_id,
    )


def grid_context(exploration: Exploration, membership: Membership) -> dict[str, Any]:
    """The grid's rows (a seed each) of cells (a model each), with each image's votes."""
    cells = list(
        ExplorationCell.objects.filter(exploration=exploration)
        .select_related("job")
        .prefetch_related(
            Prefetch("job__images", queryset=GeneratedImage.objects.kept(), to_attr="kept")
        )
    )
    images = [image for cell in cells for image in cell.job.kept]  # type: ignore[attr-defined]
    votes = Counter(Vote.objects.filter(image__in=images).values_list("image_id", flat=True))
    mine = set(
        Vote.objects.filter(image__in=images, user_id=membership.user_id).values_list(
            "image_id", flat=True
        )
    )
    by_place = {(cell.row, cell.column): cell for cell in cells}
    labels = exploration_columns(exploration)
    rows = []
    for row, seed in enumerate(exploration.seeds):
        line = []
        for column, label in enumerate(labels):
            cell = by_place.get((row, column))
            image = cell.job.kept[0] if cell and cell.job.kept else None  # type: ignore[attr-defined]
            line.append(
                {
                    "cell": cell,
                    "label": label,
                    "image": image,
                    "votes": votes.get(image.pk, 0) if image else 0,
                    "voted": bool(image and image.pk in mine),
                }
            )
        rows.append({"seed": seed, "cells": line})
    top = max(votes.values(), default=0)
    # Watched here: a cell that ends in sight of its author needs no notification. One
    # mark for the whole grid (worker/notices.py reads it for each cell's job).
    if exploration.author_id == membership.user_id and any(c.job.is_open for c in cells):
        # A few of the grid's 2-second polls: a tab closed is soon not watching.
        mark_watching(membership.user_id, [exploration.watch_key], seconds=GRID_WATCH_SECONDS)
    return {
        "exploration": exploration,
        "columns": labels,
        "rows": rows,
        "still_open": any(cell.job.is_open for cell in cells),
        "top_votes": top,
        "may_choose": membership.can_review,
    }


def exploration_columns(exploration: Exploration) -> list[str]:
    """The models' display names, in column order."""
    labels = []
    for name in exploration.model_names:
        try:
            labels.append(get_model(name).label)
        except UnknownModel:
            labels.append(name)
    return labels


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def exploration_detail(request: AppRequest, exploration_id: int) -> HttpResponse:
    membership = member(request)
    exploration = get_exploration(membership, exploration_id)
    template = "generation/exploration.html"
    if request.htmx:
        template += "#grid"
    return render(request, template, grid_context(exploration, membership))


def image_of(exploration: Exploration, image_id: int) -> GeneratedImage:
    return get_object_or_404(
        GeneratedImage.objects.kept(),
        pk=image_id,
        job__exploration_cell__exploration=exploration,
    )


@require_POST
@login_required
def exploration_vote(request: AppRequest, exploration_id: int, image_id: int) -> HttpResponse:
    membership = member(request)
    exploration = get_exploration(membership, exploration_id)
    toggle_vote(image_of(exploration, image_id), membership.user_id)
    if request.htmx:
        return render(
            request, "generation/exploration.html#grid", grid_context(exploration, membership)
        )
    return redirect("exploration", exploration_id=exploration.pk)
