"""The gallery's grid, page by page as it scrolls and as its filters change, and the
activity feed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from studio.accounts.access import get_membership_for_user
from studio.gallery.feed import FEED_SIZE, team_feed
from studio.gallery.forms import Cursor, GalleryFilter
from studio.generation.models import GeneratedImage
from studio.http import PARTIAL_HEADERS, AppRequest


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def gallery(request: AppRequest) -> HttpResponse:
    membership = get_membership_for_user(request.user)
    filters = GalleryFilter(request.GET, membership)
    after = Cursor.parse(request.GET.get("after", ""))
    images, cursor = filters.page(after)
    query = filters.query_string()
    set_job = filters.set_job()
    _prepare_cards(images, query, stacked=set_job is None)
    context: dict[str, Any] = {
        "set_job": set_job,
        "edited_image": filters.edited_image(),
        "filters": filters,
        "images": images,
        "cursor": cursor,
        "query": query,
        "membership": membership,
    }
    template = "gallery/gallery.html"
    if request.htmx and after is not None:
        template += "#grid-page"  # the next page of an infinite scroll
    elif request.htmx and request.htmx.target == "gallery-results":
        template += "#results"  # the filters changed
        # The sidebar's list follows (out of band): which board is current may have changed.
        context["boards_oob"] = True
        context.update(_boards_context(filters))
    else:
        # Only the whole page shows the feed and the selection bar's boards.
        context["feed"] = team_feed(membership.team_id)
        context.update(_boards_context(filters))
    return render(request, template, context)


def _boards_context(filters: GalleryFilter) -> dict[str, Any]:
    return {"boards": filters.boards, "current_board": filters.cleaned_data.get("board")}


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def activity(request: AppRequest) -> HttpResponse:
    membership = get_membership_for_user(request.user)
    context = {"feed": team_feed(membership.team_id, size=100 if not request.htmx else FEED_SIZE)}
    template = "gallery/activity.html"
    if request.htmx:
        template += "#feed"
    return render(request, template, context)


_STAND_IN_ID = 987654321
_STAND_IN_JOB = UUID("00000000-0000-4000-8000-0000c0ffee00")


def _prepare_cards(images: list[GeneratedImage], query: str, *, stacked: bool = True) -> None:
    """What each grid card shows, worked out here rather than in the template: a page of
    48 cards is the gallery's cost, and template lookups are its slowest part."""
    if stacked:
        _prepare_sets(images)
    states = dict(GeneratedImage.Review.choices)
    suffix = f"?{query}" if query else ""
    # Each card's two addresses from one reversal apiece (48 of each were a tenth of the
    # page): the route with stand-ins for its arguments, which are then put in their place.
    detail = reverse("gallery-image", args=[_STAND_IN_ID])
    thumb = reverse("job-image", args=[_STAND_IN_JOB, _STAND_IN_ID, "thumb"])
    for image in images:
        job = image.job
        image.href = detail.replace(str(_STAND_IN_ID), str(image.pk)) + suffix
        # The index first: a real job id could, however rarely, hold the stand-in's digits.
        image.thumb_url = thumb.replace(str(_STAND_IN_ID), str(image.index)).replace(
            str(_STAND_IN_JOB), str(job.pk)
        )
        image.alt = Truncator(job.prompt).chars(100)
        if not stacked and job.is_set:
            image.alt = f"Set image {image.index + 1}: {image.alt}"  # told apart when ticked
        image.state_label = states[image.review_state]
        image.author_name = job.author.get_username()
        # The name people read; the id stays on the page as its tooltip.
        image.model_label = job.model_label
        image.model_name = job.model


def _prepare_sets(images: list[GeneratedImage]) -> None:
    """The stacked card of each set on the page: how many images it holds (one query, and
    only when a set is shown) and where it opens: the grid of its images."""
    set_jobs = {image.job_id for image in images if image.job.is_set}
    if not set_jobs:
        return
    sizes = dict(
        GeneratedImage.objects.kept()
        .filter(job_id__in=set_jobs)
        .values_list("job_id")
        .annotate(Count("id"))
        .values_list("job_id", "id__count")
    )
    grid = reverse("gallery")
    for image in images:
        if sizes.get(image.job_id, 1) > 1:  # a set left with one image is shown as one
            image.set_size = sizes[image.job_id]
            image.set_href = f"{grid}?{urlencode({'job': str(image.job_id)})}"
