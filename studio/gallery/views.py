"""The team gallery: the grid, an image's panel (its page and the viewer's), review, stars and the
activity feed."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import zipfile
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from studio.accounts.models import Membership
from studio.audit.models import Entry, entry, record
from studio.dashscope.catalog import UnknownModel, get_model
from studio.gallery.access import (
    as_id,
    gallery_membership,
    image_for,
    require,
    team_board,
    team_images,
)
from studio.gallery.forms import Cursor, GalleryFilter
from studio.gallery.models import Activity, Board, BoardImage, Comment, Star
from studio.gallery.templatetags.gallery_text import MENTION
from studio.generation.forms import parse_boxes
from studio.generation.models import GeneratedImage, JobInput
from studio.http import PARTIAL_HEADERS, AppRequest

FEED_SIZE = 12
logger = logging.getLogger(__name__)


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
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
    }
    template = "gallery/gallery.html"
    if request.htmx and after is not None:
        template += "#grid-page"  # the next page of an infinite scroll
    elif request.htmx and request.htmx.target == "gallery-results":
        template += "#results"  # the filters changed
        # The sidebar's list follows (out of band): which board is current may have changed.
        context["boards_oob"] = True
        context["boards"] = filters.boards
        context["current_board"] = filters.cleaned_data.get("board")
    else:
        # Only the whole page shows the feed and the selection bar's boards.
        context["feed"] = _feed(membership.team_id)
        context["boards"] = filters.boards
        context["current_board"] = filters.cleaned_data.get("board")
    return render(request, template, context)


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def image_detail(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    filters = GalleryFilter(request.GET, membership)
    newer, older = filters.neighbours(image)
    job = image.job
    inputs = list(job.inputs.all())
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
        "feed": [] if request.htmx else _feed(membership.team_id),
        "comments": _comments(image),
        # The seed has its own line beside the cost; the other settings as the job lists them.
        "settings": [(label, text) for label, text in job.settings_shown() if label != "Seed"],
        "seed": job.parameters.get("seed"),
        "cost": job.image_cost(),
        # Where a form sent without JavaScript comes back to: this image's page.
        "next": request.get_full_path(),
        **_board_context(image, membership),
    }
    template = "gallery/image.html"
    if request.htmx:
        template += "#image-panel"
    return render(request, template, context)


@require_GET
@login_required
def compare_inputs(request: AppRequest, image_id: int) -> HttpResponse:
    """An edit's result beside the reference images it was made from, and under the
    slider with one of them when they have the same shape."""
    image, membership = image_for(request, image_id)
    job = image.job
    inputs = list(job.inputs.all())
    if not inputs:
        raise Http404("This image was not made from reference images.")
    original = reverse("job-image", args=[job.pk, image.index, "original"])
    same = [item for item in inputs if _same_shape(image, item)]
    context = {
        "result": image,
        "job": job,
        "inputs": inputs,
        "columns": min(len(inputs) + 1, COMPARE_MOST),
        "original_url": original,
        "slider_input": same[0] if same else None,
        "membership": membership,
        "states": GeneratedImage.Review.choices,
        "next": request.get_full_path(),
    }
    return render(request, "gallery/compare.html", context)


@require_POST
@login_required
def image_review(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    require(membership.can_review, "set review states")
    state = request.POST.get("state", "")
    if state in GeneratedImage.Review.values and state != image.review_state:
        _set_state([image], state, request)
    # Reviewed on the compare page, the designer goes back there, not to the image's page.
    back = _safe_next(request)
    if not request.htmx:
        return redirect(back or reverse("gallery-image", args=[image.pk]))
    response = render(
        request,
        "gallery/image.html#review",
        {
            "image": image,
            "membership": membership,
            "states": GeneratedImage.Review.choices,
            "next": back,
            "oob": _over_the_grid(request),
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
        Activity.about([image], request.user, Activity.Verb.STARRED)
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
@vary_on_headers(*PARTIAL_HEADERS)
def activity(request: AppRequest) -> HttpResponse:
    membership = gallery_membership(request)
    context = {"feed": _feed(membership.team_id, size=100 if not request.htmx else FEED_SIZE)}
    template = "gallery/activity.html"
    if request.htmx:
        template += "#feed"
    return render(request, template, context)


_STAND_IN_ID = 987654321
_STAND_IN_JOB = UUID("00000000-0000-4000-8000-0000c0ffee00")


def _prepare_cards(images: list[GeneratedImage], query: str) -> None:
    """What each grid card shows, worked out here rather than in the template: a page of
    48 cards is the gallery's cost, and template lookups are its slowest part."""
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
        image.state_label = states[image.review_state]
        image.author_name = job.author.get_username()
        # The name people read; the id stays on the page as its tooltip.
        image.model_label = job.model_label
        image.model_name = job.model


def _feed(team_id: int, size: int = FEED_SIZE) -> list[Activity]:
    items = list(
        Activity.objects.filter(team_id=team_id)
        .select_related("actor", "image")
        .annotate(job_model=F("job__model"), job_prompt=F("job__prompt"))[:size]
    )
    for item in items:
        # A finished job's line was written with the model's id ("2 images with
        # wan2.6-t2i"); it is read with the model's name, old lines too.
        if item.verb == Activity.Verb.GENERATED and item.job_model:
            label = _model_label(item.job_model)
            item.detail = item.detail.replace(f" with {item.job_model}", f" with {label}")
    return items


def _model_label(name: str) -> str:
    try:
        return get_model(name).label
    except UnknownModel:
        return name  # a model the catalog no longer knows: its id is all there is


# -- Comments -----------------------------------------------------------------------------


@require_POST
@login_required
def image_comment(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    require(membership.can_generate, "comment")
    body = request.POST.get("body", "").strip()
    error = ""
    box = None
    if not body:
        error = "Write something first."
    elif len(body) > 2000:
        error = f"A comment is at most 2,000 characters; this one is {len(body):,}."
    elif request.POST.get("box", "").strip():
        try:
            (box,) = parse_boxes(request.POST["box"])[:1] or [None]
        except ValueError:
            error = "The pinned area must be four whole numbers: left, top, right, bottom."
        if box and not (
            0 <= box[0] < box[2] <= image.width and 0 <= box[1] < box[3] <= image.height
        ):
            error = f"The pinned area must lie inside the {image.width}×{image.height} image."
    if not error:
        with transaction.atomic():
            comment = Comment.objects.create(
                image=image, author=request.user, body=body, box=list(box) if box else None
            )
            names = set(MENTION.findall(body))
            if names:
                comment.mentions.set(
                    User.objects.filter(username__in=names, memberships__team_id=image.team_id)
                )
            Activity.about(
                [image], request.user, Activity.Verb.COMMENTED, Truncator(body).chars(120)
            )
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    response = render(
        request,
        "gallery/image.html#comments",
        {
            "image": image,
            "membership": membership,
            "comments": _comments(image),
            "comment_error": error,
            "comment_body": body if error else "",
            "oob_pins": True,  # the pins drawn on the image follow the comments
        },
    )
    if not error:
        response["HX-Trigger"] = "activity-changed"
    return response


def _comments(image: GeneratedImage) -> list[Comment]:
    comments = list(image.comments.select_related("author", "image").prefetch_related("mentions"))
    for number, comment in enumerate((c for c in comments if c.box), start=1):
        comment.pin = number
        comment.pin_box = comment.box_percent()
    return comments


# -- Boards -------------------------------------------------------------------------------


@require_POST
@login_required
def board_create(request: AppRequest) -> HttpResponse:
    membership = gallery_membership(request)
    require(membership.can_generate, "make boards")
    name = " ".join(request.POST.get("name", "").split())[:80]
    if name:
        board, made = Board.objects.get_or_create(
            team_id=membership.team_id, name=name, defaults={"created_by": request.user}
        )
        images = team_images(membership, request.POST.getlist("image"))
        _add_to_board(board, images, request.user)
        shown = f"{reverse('gallery')}?board={board.pk}"
        if images:
            # Made from the selection: the board, with the images just put on it.
            messages.success(request, f"{len(images)} image(s) on the board “{board.name}”.")
            return redirect(shown)
        if made:
            messages.success(request, f"Board “{board.name}” made: drag images onto it.")
        else:
            messages.info(request, f"There is already a board “{board.name}”: drag images onto it.")
        # Made from the sidebar: back to the grid the images are dragged from, not to an
        # empty board.
        return redirect(_safe_next(request) or shown)
    messages.error(request, "Give the board a name.")
    return redirect(_safe_next(request) or reverse("gallery"))


@require_POST
@login_required
def board_add(request: AppRequest, board_id: int) -> HttpResponse:
    """Images dropped on a board in the gallery's sidebar: added, and the sidebar drawn
    again with the new counts and what was done."""
    membership = gallery_membership(request)
    require(membership.can_generate, "change boards")
    board = team_board(membership, str(board_id))
    if board is None:
        raise Http404("No such board.")
    images = team_images(membership, request.POST.getlist("image"))
    already = set(
        BoardImage.objects.filter(board=board, image__in=images).values_list("image_id", flat=True)
    )
    _add_to_board(board, images, request.user)
    added = len(images) - len(already)
    if not images:
        said = f"Nothing was added to “{board.name}”: those images are no longer in the gallery."
    elif added == 0:
        said = f"Already on “{board.name}”."
    else:
        said = f"{added} image{'s' if added != 1 else ''} added to “{board.name}”."
    if not request.htmx:
        messages.success(request, said)
        return redirect(f"{reverse('gallery')}?board={board.pk}")
    context = {
        "boards": list(Board.objects.filter(team_id=membership.team_id).with_counts()),
        "current_board": as_id(request.POST.get("current_board")),
        "membership": membership,
        "board_said": said,
    }
    return render(request, "gallery/_boards.html", context)


def _add_to_board(board: Board, images: list[GeneratedImage], user: Any) -> None:
    BoardImage.objects.bulk_create(
        [BoardImage(board=board, image=image, added_by=user) for image in images],
        ignore_conflicts=True,  # already on it: nothing to do
    )


@require_POST
@login_required
def image_board(request: AppRequest, image_id: int) -> HttpResponse:
    """Put an image on a board, or take it off."""
    image, membership = image_for(request, image_id)
    require(membership.can_generate, "change boards")
    board = team_board(membership, request.POST.get("board"))
    if board is not None:
        # Not "remove": a control of that name would stand for the form's own remove(),
        # which htmx calls when it swaps the form out.
        if request.POST.get("take_off"):
            BoardImage.objects.filter(board=board, image=image).delete()
        else:
            _add_to_board(board, [image], request.user)
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    return render(
        request,
        "gallery/image.html#boards",
        {"image": image, "membership": membership, **_board_context(image, membership)},
    )


def _board_context(image: GeneratedImage, membership: Membership) -> dict[str, Any]:
    boards = list(Board.objects.filter(team_id=membership.team_id))
    on = set(image.boards.values_list("pk", flat=True))
    return {
        "boards_on": [b for b in boards if b.pk in on],
        "boards_off": [b for b in boards if b.pk not in on],
    }


# -- Compare, bulk actions, the trash -----------------------------------------------------


COMPARE_MOST = 4  # side by side, each still large enough to judge on a laptop
LETTERS = "ABCD"


@require_http_methods(["GET", "POST"])
@login_required
def compare(request: AppRequest) -> HttpResponse:
    """Two to four images side by side, and two of the same shape under a slider. Posted
    from the selection bar (which carries its CSRF token, kept out of URLs), or linked to
    with ?image=…&image=…. Never fewer than were asked for without saying so."""
    membership = gallery_membership(request)
    source = request.POST if request.method == "POST" else request.GET
    asked = len({pk for pk in map(as_id, source.getlist("image")) if pk is not None})
    back = _safe_next(request) or reverse("gallery")
    if asked > COMPARE_MOST:
        messages.error(
            request,
            f"Compare takes up to {COMPARE_MOST} images and {asked} were selected; "
            "untick some and compare again.",
        )
        return redirect(back)
    images = team_images(membership, source.getlist("image"))
    gone = asked - len(images)
    if len(images) < 2:
        messages.error(request, "Select two to four images to compare." + _gone_text(gone))
        return redirect(back)
    if gone:
        messages.warning(request, _gone_text(gone).strip() + " The others are compared.")
    for letter, image in zip(LETTERS, images, strict=False):
        image.letter = letter
        image.original_url = reverse("job-image", args=[image.job_id, image.index, "original"])
    link = reverse("gallery-compare") + "?" + "&".join(f"image={image.pk}" for image in images)
    context = {
        "images": images,
        "link": link,
        "slider": len(images) == 2 and _same_shape(*images),
        "membership": membership,
        "states": GeneratedImage.Review.choices,
        "next": link,  # a review made here without JavaScript comes back here
    }
    return render(request, "gallery/compare.html", context)


def _gone_text(gone: int) -> str:
    if not gone:
        return ""
    if gone == 1:
        return " One of the selected images is no longer in the gallery."
    return f" {gone} of the selected images are no longer in the gallery."


def _same_shape(first: GeneratedImage | JobInput, second: GeneratedImage | JobInput) -> bool:
    """Whether one image lies exactly over the other once both are drawn the same width:
    the slider shows one's left part beside the other's right part, which only reads as one
    picture when the two have the same aspect ratio (a pixel of rounding either way)."""
    return abs(first.width * second.height - second.width * first.height) <= max(
        first.width, first.height, second.width, second.height
    )


@require_POST
@login_required
def bulk(request: AppRequest) -> HttpResponse:
    """What the selection bar does to the images ticked in the grid."""
    membership = gallery_membership(request)
    images = team_images(membership, request.POST.getlist("image"))
    action = request.POST.get("action", "")
    if not images:
        messages.error(request, "Select some images first.")
        return redirect("gallery")
    if action == "zip":
        record(request, Entry.Action.DOWNLOAD, f"zip of {len(images)} images", team=membership.team)
        return _zip_response(images, membership)
    if action == "state":
        require(membership.can_review, "set review states")
        state = request.POST.get("state", "")
        if state in GeneratedImage.Review.values:
            _set_state([i for i in images if i.review_state != state], state, request)
            messages.success(
                request, f"{len(images)} image(s) now {GeneratedImage.Review(state).label.lower()}."
            )
    elif action == "board":
        require(membership.can_generate, "change boards")
        board = team_board(membership, request.POST.get("board"))
        if board is not None:
            _add_to_board(board, images, request.user)
            messages.success(request, f"{len(images)} image(s) on the board “{board.name}”.")
    elif action == "delete":
        require(membership.can_manage, "delete images")
        _trash(images, request)
        messages.success(
            request,
            f"{len(images)} image(s) moved to the trash; owners can restore them for "
            f"{GeneratedImage.TRASH_DAYS} days.",
        )
    return redirect(_safe_next(request) or reverse("gallery"))


def _over_the_grid(request: AppRequest) -> bool:
    """Whether the review was made in the viewer over the grid, whose card's badge then
    follows. Elsewhere (the image's own page, compare) there is no card, and a part sent
    for an element that is not on the page is an error in the browser."""
    return urlsplit(request.htmx.current_url or "").path == reverse("gallery")


def _safe_next(request: AppRequest) -> str:
    """The page a form asked to go back to, if it is one of ours; else ""."""
    back = request.POST.get("next", "")
    return back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else ""


def _set_state(images: list[GeneratedImage], state: str, request: AppRequest) -> None:
    """Review images: one statement each for the rows, the audit log and the activity."""
    if not images:
        return
    user, now, label = request.user, timezone.now(), GeneratedImage.Review(state).label
    with transaction.atomic():
        # The states as they are now, not as the page was read: a colleague may have
        # reviewed or trashed an image since. Locked, so two reviews one after the other
        # each record what they really changed.
        before = dict(
            GeneratedImage.objects.select_for_update()
            .kept()
            .filter(pk__in=[image.pk for image in images])
            .exclude(review_state=state)
            .values_list("pk", "review_state")
        )
        changed = [image for image in images if image.pk in before]
        if not changed:
            return
        Entry.objects.bulk_create(
            entry(
                request,
                Entry.Action.REVIEW,
                image,
                team=image.team,
                changes={"review_state": [before[image.pk], state]},
            )
            for image in changed
        )
        GeneratedImage.objects.filter(pk__in=before).update(
            review_state=state, reviewed_by=user, reviewed_at=now
        )
        Activity.about(changed, user, Activity.Verb.REVIEWED, label)
    for image in changed:
        image.review_state = state


def _zip_response(images: list[GeneratedImage], membership: Membership) -> HttpResponse:
    """The originals and a manifest of what made each, as one zip: in memory while small,
    on disk beyond that (200 originals can be a gigabyte), and streamed from there."""
    # Closed by the response once sent.
    buffer = tempfile.SpooledTemporaryFile(max_size=ZIP_IN_MEMORY_BYTES)  # noqa: SIM115
    manifest = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for number, image in enumerate(images, start=1):
            job = image.job
            ext = image.mime.split("/")[-1].replace("jpeg", "jpg")
            name = f"{number:03d}-{job.model}-{str(job.pk)[:8]}-{image.index + 1}.{ext}"
            try:
                # Already compressed: stored as is, copied a piece at a time.
                with image.image.open("rb") as file, archive.open(name, "w") as member:
                    shutil.copyfileobj(file, member)
            except OSError:
                # Said in the manifest rather than failing the whole download.
                logger.error("Image %s is missing from the media store", image.pk)
                name = ""
            manifest.append(
                {
                    "file": name or None,
                    "missing": not name,
                    "model": job.model,
                    "prompt": job.prompt,
                    "negative_prompt": job.negative_prompt,
                    "parameters": job.parameters,
                    "author": job.author.get_username(),
                    "created_at": image.created_at.isoformat(),
                    "width": image.width,
                    "height": image.height,
                    "sha256": image.sha256,
                    "review_state": image.review_state,
                }
            )
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    buffer.seek(0)
    return FileResponse(
        buffer,
        as_attachment=True,
        filename=f"{membership.team.slug}-{stamp}.zip",
        content_type="application/zip",
    )


ZIP_IN_MEMORY_BYTES = 16 * 1024 * 1024


def _trash(images: list[GeneratedImage], request: AppRequest) -> None:
    """Move images to the trash; those already there (a double click) are left alone."""
    user = request.user
    with transaction.atomic():
        fresh = set(
            GeneratedImage.objects.select_for_update()
            .kept()
            .filter(pk__in=[image.pk for image in images])
            .values_list("pk", flat=True)
        )
        trashed = [image for image in images if image.pk in fresh]
        if not trashed:
            return
        GeneratedImage.objects.filter(pk__in=fresh).update(
            deleted_at=timezone.now(), deleted_by=user
        )
        Entry.objects.bulk_create(
            entry(request, Entry.Action.DELETE, image, team=image.team) for image in trashed
        )
        Activity.about(trashed, user, Activity.Verb.DELETED)


@require_POST
@login_required
def image_delete(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id)
    require(membership.can_manage, "delete images")
    _trash([image], request)
    messages.success(
        request, f"Moved to the trash; owners can restore it for {GeneratedImage.TRASH_DAYS} days."
    )
    return redirect("gallery")


@require_GET
@login_required
def trash(request: AppRequest) -> HttpResponse:
    membership = gallery_membership(request)
    require(membership.can_manage, "see the trash")
    images = list(
        GeneratedImage.objects.trashed()
        .filter(team_id=membership.team_id)
        .select_related("job", "deleted_by")
        .order_by("-deleted_at")[:200]
    )
    for image in images:
        image.purge_on = image.deleted_at + timedelta(days=GeneratedImage.TRASH_DAYS)
    context = {"images": images, "trash_days": GeneratedImage.TRASH_DAYS}
    return render(request, "gallery/trash.html", context)


@require_POST
@login_required
def image_restore(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = image_for(request, image_id, trashed=True)
    require(membership.can_manage, "restore images")
    if (
        GeneratedImage.objects.trashed()
        .filter(pk=image.pk)
        .update(deleted_at=None, deleted_by=None)
    ):
        record(request, Entry.Action.RESTORE, image, team=image.team)
        Activity.about([image], request.user, Activity.Verb.RESTORED)
        messages.success(request, "Restored to the gallery.")
    return redirect("gallery-trash")
