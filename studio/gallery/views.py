"""The team gallery: the grid, the lightbox, review, stars and the activity feed."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_POST

from studio.gallery.access import gallery_membership, image_for, require
from studio.gallery.forms import Cursor, GalleryFilter
from studio.gallery.models import Activity, Star
from studio.generation.models import GeneratedImage
from studio.http import AppRequest

FEED_SIZE = 12


@require_GET
@login_required
def gallery(request: AppRequest) -> HttpResponse:
    membership = gallery_membership(request)
    filters = GalleryFilter(request.GET, membership)
    after = Cursor.parse(request.GET.get("after", ""))
    images, cursor = filters.page(after)
    query = filters.query_string()
    _prepare_cards(images, query)
    context = {
        "filters": filters,
        "images": images,
        "cursor": cursor,
        "query": query,
        "membership": membership,
        "feed": _feed(membership.team_id),
    }
    template = "gallery/gallery.html"
    if request.htmx and after is not None:
        template += "#grid-page"  # the next page of an infinite scroll
    elif request.htmx and request.htmx.target == "gallery-results":
        template += "#results"  # the filters changed
    return render(request, template, context)


@require_GET
@login_required
def image_detail(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    filters = GalleryFilter(request.GET, membership)
    newer, older = filters.neighbours(image)
    job = image.job
    inputs = list(job.inputs.all())
    for item in inputs:
        item.boxes_shown = [
            (
                100 * x1 / item.width,
                100 * y1 / item.height,
                100 * (x2 - x1) / item.width,
                100 * (y2 - y1) / item.height,
            )
            for x1, y1, x2, y2 in item.boxes
        ]
    context = {
        "image": image,
        "job": job,
        "inputs": inputs,
        "events": job.events.all(),
        "membership": membership,
        "newer": newer,
        "older": older,
        "query": filters.query_string(),
        "starred": Star.objects.filter(image=image, user=request.user).exists(),
        "states": GeneratedImage.Review.choices,
        "feed": _feed(membership.team_id),
    }
    template = "gallery/image.html"
    if request.htmx:
        template += "#image-panel"
    return render(request, template, context)


@require_POST
@login_required
def image_review(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    require(membership.can_review, "set review states")
    state = request.POST.get("state", "")
    if state in GeneratedImage.Review.values and state != image.review_state:
        with transaction.atomic():
            GeneratedImage.objects.filter(pk=image.pk).update(
                review_state=state, reviewed_by=request.user, reviewed_at=timezone.now()
            )
            Activity.objects.create(
                team_id=image.team_id,
                actor=request.user,
                verb=Activity.Verb.REVIEWED,
                image=image,
                job_id=image.job_id,
                detail=GeneratedImage.Review(state).label,
            )
        image.review_state = state
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    response = render(
        request,
        "gallery/image.html#review",
        {
            "image": image,
            "membership": membership,
            "states": GeneratedImage.Review.choices,
            "oob": True,
        },
    )
    response["HX-Trigger"] = "activity-changed"
    return response


@require_POST
@login_required
def image_star(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    require(membership.can_generate, "star images")
    deleted, _ = Star.objects.filter(image=image, user=request.user).delete()
    starred = not deleted
    if starred:
        try:
            with transaction.atomic():
                Star.objects.create(image=image, user=request.user)
        except IntegrityError:
            pass  # starred twice at once: once is what was meant
        Activity.objects.create(
            team_id=image.team_id,
            actor=request.user,
            verb=Activity.Verb.STARRED,
            image=image,
            job_id=image.job_id,
        )
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    response = render(
        request,
        "gallery/image.html#star",
        {"image": image, "membership": membership, "starred": starred},
    )
    response["HX-Trigger"] = "activity-changed"
    return response


@require_GET
@login_required
def activity(request: AppRequest) -> HttpResponse:
    membership = gallery_membership(request)
    context = {"feed": _feed(membership.team_id, size=100 if not request.htmx else FEED_SIZE)}
    template = "gallery/activity.html"
    if request.htmx:
        template += "#feed"
    return render(request, template, context)


def _prepare_cards(images: list[GeneratedImage], query: str) -> None:
    """What each grid card shows, worked out here rather than in the template: a page of
    48 cards is the gallery's cost, and template lookups are its slowest part."""
    states = dict(GeneratedImage.Review.choices)
    suffix = f"?{query}" if query else ""
    for image in images:
        job = image.job
        image.href = reverse("gallery-image", args=[image.pk]) + suffix
        image.thumb_url = reverse("job-image", args=[job.pk, image.index, "thumb"])
        image.alt = Truncator(job.prompt).chars(100)
        image.state_label = states[image.review_state]
        image.caption = f"{job.author.get_username()} · {job.model}"


def _feed(team_id: int, size: int = FEED_SIZE) -> list[Activity]:
    return list(
        Activity.objects.filter(team_id=team_id).select_related("actor", "image", "job")[:size]
    )
