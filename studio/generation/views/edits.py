"""The edit page: reference images staged one by one, then the form sent as a job.

One address, four things the page asks of it, each its own function: show the form
(GET), remember what the page changed by itself (order, regions, an image taken off),
draw it again after a card button or another model, and send it.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from studio.accounts.models import Membership
from studio.dashscope.catalog import Kind, ModelSpec, Option
from studio.generation import kits
from studio.generation.forms import GenerationForm
from studio.generation.models import BrandKit, Job, StagedImage
from studio.generation.modes import mode_limits
from studio.generation.normalise import ImageRefused
from studio.generation.services import JobRefused
from studio.generation.sizes import default_size
from studio.generation.staging import (
    StagedInput,
    assess_inputs,
    keep_form,
    replace_form,
    set_aside,
    staged_form,
    take_off_form,
    uploads_for,
)
from studio.generation.views.inputs import restage_job_inputs, stage_upload
from studio.generation.views.shared import (
    KEPT_FIELDS,
    SWITCHES,
    KitChoice,
    audit_generate,
    chosen_spec,
    form_context,
    generating_membership,
    kit_choice,
    let_drafts_win,
    remix_initial,
    remix_source,
    submit,
)
from studio.http import PARTIAL_HEADERS, AppRequest

# What the card buttons send without JavaScript. Not "remove": a control of that name
# would hide the form's own remove(), which htmx calls to swap the form.
# "redraw": the form drawn again for a set of images or single ones, or for a piece of
# text and images.
# A brand kit applied (its images added too) or dropped (its images taken off).
KIT_ACTIONS = ("apply_kit", "drop_kit")
CARD_ACTIONS = ("switch_model", "remove_input", "move_input", "add_files", "redraw", *KIT_ACTIONS)

Items = list[tuple[str, str]]  # the form's images: (staged id, regions as typed), in order


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def edit(request: AppRequest) -> HttpResponse:
    membership = generating_membership(request)
    if request.method == "POST" and "remember" in request.POST:
        return _remember_form(request, membership)
    remix = remix_source(request, membership, Job.Kind.EDIT)
    kit = kit_choice(request, membership)
    wanted = kit.model(membership, Kind.EDIT) or (remix.model if remix else "")
    spec = chosen_spec(request, Kind.EDIT, membership, wanted)
    if request.method == "GET":
        return _edit_page(request, membership, spec, remix, kit)
    # The images are taken in as the form's mode takes them: a piece, at most one.
    limits = mode_limits(spec, Kind.EDIT, request.POST)
    items, problems = _taken_in(request, membership, limits)
    if kit.applying:
        items += [(staged_id, "") for staged_id in kits.stage_kit_images(membership, kit.applying)]
    elif kit.dropped:
        # Its images leave the form with it.
        gone = kits.kit_staged_ids(membership, kit.dropped)
        items = [item for item in items if item[0] not in gone]
        keep_form(membership, items, gone)
    inputs = assess_inputs(membership, items, limits)
    problems += _gone(items, inputs)
    if any(k in request.POST for k in CARD_ACTIONS):
        inputs = set_aside(inputs, limits)
        return _edit_redrawn(request, membership, spec, inputs, problems, kit)
    return _edit_send(request, membership, spec, inputs, problems, kit.carried)


# -- Showing the form ---------------------------------------------------------------------


def _edit_page(
    request: AppRequest,
    membership: Membership,
    spec: ModelSpec,
    remix: Job | None,
    kit: KitChoice,
) -> HttpResponse:
    """The edit form as its owner left it: the images staged on it are kept a day. A kit
    in the address (?kit=, from the kits page) is applied to it."""
    if remix and "restaged" not in request.GET:
        # Staged once, then the form's own: a reload shows the same copies instead of
        # staging the job's images again (or none, if none could be).
        replace_form(membership, restage_job_inputs(request, membership, remix, spec))
        query = {"remix": str(remix.pk), "model": spec.name, "restaged": "1"}
        return redirect(f"{reverse('edit')}?{urlencode(query)}")
    named = _items(request.GET)
    if named:
        # An address naming images (a result used as input, an old tab): they join the
        # form, after what is already on it, and the address no longer names them.
        _add_to_form(request, membership, named, spec)
        query = request.GET.copy()
        for key in [k for k in query if k == "input" or k.startswith("boxes-")]:
            del query[key]
        return redirect(f"{reverse('edit')}?{query.urlencode()}".rstrip("?"))
    initial = remix_initial(remix) if remix else {"size": default_size(spec, Kind.EDIT)}
    if kit.applying:
        kits.stage_kit_images(membership, kit.applying)
    shown_kit = kit.applying or (None if remix else kit.carried)  # carried: a reload
    if shown_kit:
        initial |= kits.applied_values(shown_kit, spec, Kind.EDIT, "")
    form = GenerationForm(spec, kind=Kind.EDIT, initial=initial, team=membership.team)
    form.kit = kit.kit
    if shown_kit and not kit.applying:
        let_drafts_win(form)
    inputs = set_aside(assess_inputs(membership, staged_form(membership), form.limits), form.limits)
    return _render_edit(request, membership, form, inputs)


def _add_to_form(
    request: AppRequest, membership: Membership, named: Items, spec: ModelSpec
) -> None:
    found = assess_inputs(membership, named, spec)
    for problem in _gone(named, found):
        messages.warning(request, problem)
    on_form = staged_form(membership)
    kept = {str(item.staged.pk) for item in found} - {staged_id for staged_id, _ in on_form}
    keep_form(membership, on_form + [item for item in named if item[0] in kept])


# -- Remembering what the page changed by itself -------------------------------------------


def _remember_form(request: AppRequest, membership: Membership) -> HttpResponse:
    """What the page changed by itself (order, regions, an image taken off), kept as it
    happens so the form is the same after a reload."""
    keep_form(membership, _items(request.POST), request.POST.getlist("remove_input"))
    return HttpResponse(status=204)


# -- A form posted: its images taken in, then drawn again or sent ---------------------------


def _taken_in(
    request: AppRequest, membership: Membership, spec: ModelSpec
) -> tuple[Items, list[str]]:
    """The form's images as posted, with a card button's change made and the files sent
    with the form staged (without JavaScript they come that way); kept as the form now
    is. Also what to say of files that could not be added."""
    problems: list[str] = []
    items = _apply_card_action(_items(request.POST), request.POST)
    for upload in _within_room(request, spec, items, problems):
        try:
            staged = stage_upload(membership, upload, spec)
        except ImageRefused as refused:
            problems.append(f"{upload.name}: {refused}")
        else:
            items.append((str(staged.pk), ""))
    removed = request.POST.get("remove_input", "")
    keep_form(membership, items, [removed] if removed else [])
    return items, problems


def _within_room(
    request: AppRequest, spec: ModelSpec, items: Items, problems: list[str]
) -> list[UploadedFile]:
    """The files sent with the form, as many as the model has room for next to the images
    already sent; the rest named in `problems`."""
    assert spec.images is not None
    most = spec.images.count[1]
    shown_aside = set(request.POST.getlist("aside"))
    files = request.FILES.getlist("files")
    room = max(0, most - len([i for i, _ in items if i not in shown_aside]))
    if len(files) > room:
        # Refused unread: decoding an image is the costly part, and these cannot be used.
        names = ", ".join(upload.name or "unnamed" for upload in files[room:])
        problems.append(
            f"{spec.label} takes at most {most} image{'s' * (most != 1)}; not added: {names}."
        )
        files = files[:room]
    return files


def _edit_redrawn(
    request: AppRequest,
    membership: Membership,
    spec: ModelSpec,
    inputs: list[StagedInput],
    problems: list[str],
    kit: KitChoice,
) -> HttpResponse:
    """The form again after a card button, another model or a kit: what was written is
    kept, or wrapped in the kit's prompt."""
    # Another model: chosen, or a kit's.
    switching = "switch_model" in request.POST or spec.name != request.POST.get("model")
    kept: dict[str, object] = {
        k: request.POST.get(k, "") for k in (*KEPT_FIELDS, "size", "custom_size")
    }
    if not switching:
        # The same model: its switches stay as set (an unticked box is not sent at all).
        kept |= {name: name in request.POST for name in SWITCHES}
    applied: dict[str, object] = {}
    if kit.applying:
        prompt = str(kept.get("prompt", ""))
        applied = kits.applied_values(kit.applying, spec, Kind.EDIT, prompt, kit.carried)
    elif kit.dropped:
        kept |= kits.dropped_values(kit.dropped, kept)
    form = GenerationForm(spec, kind=Kind.EDIT, initial=kept | applied, team=membership.team)
    form.kit = kit.kit
    form.carry_n(request.POST.get("n"), set_begun=request.POST.get("redraw") == "enable_sequential")
    if switching and "size" not in applied:
        form.initial["size"] = default_size(form.limits, Kind.EDIT)
    response = _render_edit(request, membership, form, inputs, problems)
    if switching and request.htmx:
        # A reload shows the form for the model chosen, as the images were set aside for it.
        response["HX-Replace-Url"] = f"{reverse('edit')}?{urlencode({'model': spec.name})}"
    return response


def _edit_send(
    request: AppRequest,
    membership: Membership,
    spec: ModelSpec,
    inputs: list[StagedInput],
    problems: list[str],
    kit: BrandKit | None,
) -> HttpResponse:
    """The form sent as a job; or drawn again, each reason next to what it is about."""
    form = GenerationForm(spec, request.POST, kind=Kind.EDIT, team=membership.team)
    form.kit = kit
    limits = form.limits  # a piece's, in that mode
    status = 200
    # Sent as the page showed them: what it showed as set aside stays behind, and
    # anything else the model cannot take is refused on its card.
    inputs = set_aside(inputs, limits, set(request.POST.getlist("aside")))
    sending = [item for item in inputs if not item.aside]
    card_problems = {str(item.staged.pk): item.problem for item in sending if item.problem}
    if form.is_valid() and not card_problems and not problems:
        too_few_or_many = _count_problem(limits, sending, optional=form.makes_piece)
        if too_few_or_many:
            problems.append(too_few_or_many)
        else:
            try:
                job = submit(form, membership, uploads_for(sending, limits))
            except ImageRefused as refused:
                problems.append(str(refused))  # an image that could not be fitted to the model
            except JobRefused as refused:
                status = refused.status
                _on_cards(form.add_problems(refused.problems), sending, card_problems)
            else:
                return _edit_sent(request, membership, spec, job, sending, kit)
    inputs = [
        replace(item, problem=card_problems.get(str(item.staged.pk), item.problem))
        for item in inputs
    ]
    return _render_edit(request, membership, form, inputs, problems, status=status)


def _count_problem(spec: ModelSpec, sending: list[StagedInput], *, optional: bool) -> str:
    """Why this many images cannot be sent to the model, if they cannot. `optional`: the
    form's mode needs none (a piece of text and images)."""
    assert spec.images is not None
    most = spec.images.count[1]
    if not sending and not optional:
        return "Add at least one reference image to edit."
    if len(sending) > most:
        return (
            f"{spec.label} takes at most {most} image{'s' * (most != 1)}; "
            f"remove {len(sending) - most}."
        )
    return ""


def _on_cards(
    on_images: list[tuple[int, str]], sending: list[StagedInput], card_problems: dict[str, str]
) -> None:
    """The provider's reasons about one image (by its position in the request), added to
    what that image's card says."""
    for position, message in on_images:
        if 1 <= position <= len(sending):
            key = str(sending[position - 1].staged.pk)
            card_problems[key] = " ".join(filter(None, (card_problems.get(key), message)))


def _edit_sent(
    request: AppRequest,
    membership: Membership,
    spec: ModelSpec,
    job: Job,
    sent: list[StagedInput],
    kit: BrandKit | None,
) -> HttpResponse:
    """After an edit is sent, the designer stays: a form for the next edit (its images
    used, its prompt and settings kept), and her results with this job's places on top."""
    # Used: they leave the form, which is empty for the next edit.
    take_off_form(membership, [str(item.staged.pk) for item in sent])
    audit_generate(request, job)
    if not request.htmx:
        return redirect("job-detail", job_id=job.pk)
    kept = {k: request.POST.get(k, "") for k in KEPT_FIELDS}
    form = GenerationForm(
        spec,
        kind=Kind.EDIT,
        initial=kept | {"size": default_size(spec, Kind.EDIT)},
        team=membership.team,
    )
    form.kit = kit  # still applied, for the next edit
    form.carry_n(request.POST.get("n"))
    limits = form.limits
    inputs = set_aside(assess_inputs(membership, staged_form(membership), limits), limits)
    return _render_edit(request, membership, form, inputs, part="sent", sent=job)


# -- Shared by the four -------------------------------------------------------------------


def _items(data: QueryDict) -> Items:
    """The form's reference images in its order, each with its regions as typed."""
    return [(i, data.get(f"boxes-{i}", "")) for i in data.getlist("input")]


def _apply_card_action(items: Items, data: QueryDict) -> Items:
    """Remove or move a reference image: what the card buttons do without JavaScript."""
    removed = data.get("remove_input")
    if removed:
        items = [item for item in items if item[0] != removed]
    moved, _, step = (data.get("move_input") or "").partition(":")
    ids = [item[0] for item in items]
    if moved in ids and step in ("-1", "1"):
        at = ids.index(moved)
        to = at + int(step)
        if 0 <= to < len(items):
            items[at], items[to] = items[to], items[at]
    return items


def _render_edit(
    request: AppRequest,
    membership: Membership,
    form: GenerationForm,
    inputs: list[StagedInput],
    problems: list[str] | None = None,
    status: int = 200,
    part: str = "edit-form",
    sent: Job | None = None,
) -> HttpResponse:
    spec = form.limits  # a piece's, in that mode: its images, and its name for them
    assert spec.images is not None
    context = form_context(membership, form) | {
        "inputs": inputs,
        "set_aside": sum(1 for item in inputs if item.aside),
        "rule": spec.images,
        "images_optional": form.makes_piece,
        "takes_boxes": spec.supports(Option.BBOX_LIST),
        "max_boxes": spec.max_boxes_per_image,
        "upload_problems": problems or [],
        "accept": ",".join(f"image/{f.lower()}" for f in spec.images.formats),
        "sent": sent,
    }
    template = "generation/edit.html"
    if request.htmx:
        template += f"#{part}"
    return render(request, template, context, status=status)


def _gone(items: Items, inputs: list[StagedInput]) -> list[str]:
    """What to say of images the form names that the studio no longer keeps: added more
    than a day ago (or never this person's). Said, so an edit never goes without them."""
    kept = {str(item.staged.pk) for item in inputs}
    gone = [n for n, (staged_id, _) in enumerate(items, start=1) if staged_id not in kept]
    if not gone:
        return []
    which = ", ".join(str(n) for n in gone)
    hours = int(StagedImage.KEEP_FOR.total_seconds() // 3600)
    return [
        f"Image{'s' if len(gone) > 1 else ''} {which} of this form "
        f"{'are' if len(gone) > 1 else 'is'} no longer kept (added images are kept for "
        f"{hours} hours); add {'them' if len(gone) > 1 else 'it'} again."
    ]
