"""Images side by side: two to four from the grid, or an edit's result beside the reference
images it was made from; two of the same shape also under a slider."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from studio.accounts.access import get_membership_for_user
from studio.accounts.models import Membership
from studio.gallery.access import as_id, get_image_for_user, set_image_ids, team_images
from studio.gallery.views.common import safe_next
from studio.generation.models import GeneratedImage, JobInput
from studio.http import AppRequest

COMPARE_MOST = 4  # side by side, each still large enough to judge on a laptop
LETTERS = "ABCD"


@require_http_methods(["GET", "POST"])
@login_required
def compare(request: AppRequest) -> HttpResponse:
    """Two to four images side by side, and two of the same shape under a slider. Posted
    from the selection bar (which carries its CSRF token, kept out of URLs), or linked to
    with ?image=…&image=…. Never fewer than were asked for without saying so."""
    membership = get_membership_for_user(request.user)
    source = request.POST if request.method == "POST" else request.GET
    # A set ticked as one card stands for its images.
    ids = source.getlist("image") + [
        str(pk) for pk in set_image_ids(membership, source.getlist("set"))
    ]
    images = _images_to_compare(request, membership, ids)
    if images is None:
        return redirect(safe_next(request) or reverse("gallery"))
    _letter(images)
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


def _images_to_compare(
    request: AppRequest, membership: Membership, ids: list[str]
) -> list[GeneratedImage] | None:
    """The team's images of those asked for, saying which are gone; None (and why, in a
    message) if there are too many or too few to compare."""
    asked = len({pk for pk in map(as_id, ids) if pk is not None})
    if asked > COMPARE_MOST:
        messages.error(
            request,
            f"Compare takes up to {COMPARE_MOST} images and {asked} were selected; "
            "untick some and compare again.",
        )
        return None
    images = team_images(membership, ids)
    gone = asked - len(images)
    if len(images) < 2:
        messages.error(request, "Select two to four images to compare." + _gone_text(gone))
        return None
    if gone:
        messages.warning(request, _gone_text(gone).strip() + " The others are compared.")
    return images


def _letter(images: list[GeneratedImage]) -> None:
    """Name each image by a letter, and give it its original's address."""
    for letter, image in zip(LETTERS, images, strict=False):
        image.letter = letter
        image.original_url = reverse("job-image", args=[image.job_id, image.index, "original"])


def _gone_text(gone: int) -> str:
    if not gone:
        return ""
    if gone == 1:
        return " One of the selected images is no longer in the gallery."
    return f" {gone} of the selected images are no longer in the gallery."


@require_GET
@login_required
def compare_inputs(request: AppRequest, image_id: int) -> HttpResponse:
    """An edit's result beside the reference images it was made from, and under the
    slider with one of them when they have the same shape."""
    image, membership = get_image_for_user(request.user, image_id)
    job = image.job
    inputs = list(job.inputs.all())
    if not inputs:
        raise Http404("This image was not made from reference images.")
    same = [item for item in inputs if _same_shape(image, item)]
    context = {
        "result": image,
        "job": job,
        "inputs": inputs,
        "columns": min(len(inputs) + 1, COMPARE_MOST),
        "original_url": reverse("job-image", args=[job.pk, image.index, "original"]),
        "slider_input": same[0] if same else None,
        "membership": membership,
        "states": GeneratedImage.Review.choices,
        "next": request.get_full_path(),
    }
    return render(request, "gallery/compare.html", context)


def _same_shape(first: GeneratedImage | JobInput, second: GeneratedImage | JobInput) -> bool:
    """Whether one image lies exactly over the other once both are drawn the same width:
    the slider shows one's left part beside the other's right part, which only reads as one
    picture when the two have the same aspect ratio (a pixel of rounding either way)."""
    return abs(first.width * second.height - second.width * first.height) <= max(
        first.width, first.height, second.width, second.height
    )
