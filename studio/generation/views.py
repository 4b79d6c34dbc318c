from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Prefetch, prefetch_related_objects
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from studio.accounts.access import current_membership
from studio.accounts.models import Membership, QuotaCounter
from studio.audit.models import Entry, record
from studio.dashscope.catalog import Kind, ModelSpec, Option, UnknownModel, get_model
from studio.dashscope.tokens import prompt_length
from studio.generation.forms import (
    GenerationForm,
    boxes_text,
    default_size,
    offered_models,
    palette_text,
    size_choices,
)
from studio.generation.messages import DOWNLOAD_HELD
from studio.generation.models import (
    GeneratedImage,
    Job,
    ModelPrice,
    StagedImage,
    money,
    with_usual_seconds,
)
from studio.generation.normalise import ImageRefused, scale_boxes
from studio.generation.services import (
    JobRefused,
    StagedInput,
    assess_inputs,
    cancel_job,
    is_uuid,
    keep_form,
    replace_form,
    retry_job,
    set_aside,
    stage_image,
    staged_form,
    take_off_form,
    uploads_for,
    variations_job,
)
from studio.http import PARTIAL_HEADERS, AppRequest
from studio.media import serve_image


def get_job_for_user(request: AppRequest, job_id: UUID) -> tuple[Job, Membership]:
    """The job and the caller's membership of its team; 404 for anyone outside the team."""
    job = Job.objects.select_related("team", "author").filter(pk=job_id).first()
    membership = (
        Membership.objects.filter(team_id=job.team_id, user=request.user).first() if job else None
    )
    if job is None or membership is None:
        raise Http404("No such job.")
    return job, membership


def _chosen_spec(
    request: AppRequest, kind: Kind, membership: Membership, wanted: str = ""
) -> ModelSpec:
    """The model the form is for: the one asked for, if it does this kind of job and the
    team may use it; otherwise the first the team may use."""
    source = request.POST if request.method == "POST" else request.GET
    offered = offered_models(membership.team, kind)
    if not offered:
        raise PermissionDenied(
            f"Your team may not use any {kind.value} model; an owner can change that."
        )
    try:
        spec = get_model(wanted or source.get("model") or offered[0].name)
    except UnknownModel:
        return offered[0]
    return spec if spec in offered else offered[0]


def _generating_membership(request: AppRequest) -> Membership:
    membership = current_membership(request.user)
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only designers, reviewers and owners can generate images.")
    return membership


def _form_context(membership: Membership, form: GenerationForm) -> dict[str, Any]:
    price = ModelPrice.table().get(form.spec.name)
    try:
        wanted = max(1, int(form["n"].value() or 1))
    except (TypeError, ValueError):
        wanted = 1
    return {
        "form": form,
        "spec": form.spec,
        "models": offered_models(membership.team, form.kind),
        "quota": QuotaCounter.images_left(membership, timezone.now()),
        "budget": QuotaCounter.budget_left(membership.team, timezone.now()),
        "price": price,
        "images_wanted": wanted,
        "cost": money(price * wanted) if price is not None else None,
        "currency": ModelPrice.currency_in_use(),
        **_recent_jobs_context(membership),
    }


RECENT_JOBS = 8


def _recent_jobs_context(membership: Membership) -> dict[str, Any]:
    jobs = with_usual_seconds(
        list(
            Job.objects.filter(team_id=membership.team_id, author_id=membership.user_id)
            .prefetch_related(Prefetch("images", queryset=GeneratedImage.objects.kept()), "inputs")
            .order_by("-created_at")[:RECENT_JOBS]
        )
    )
    still_open = [job for job in jobs if job.is_open]
    return {
        "recent_jobs": jobs,
        "recent_open": bool(still_open),
        # Held downloads are retried minutes apart: the list looks again less often.
        "recent_held_only": bool(still_open) and all(job.is_download_held for job in still_open),
    }


@require_GET
@login_required
def recent_jobs(request: AppRequest) -> HttpResponse:
    membership = current_membership(request.user)
    if membership is None:
        raise Http404("No team.")
    return render(request, "generation/recent_jobs.html", _recent_jobs_context(membership))


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def generate(request: AppRequest) -> HttpResponse:
    membership = _generating_membership(request)
    remix = _remix_source(request, membership, Job.Kind.TEXT_TO_IMAGE)
    spec = _chosen_spec(request, Kind.TEXT_TO_IMAGE, membership, remix.model if remix else "")
    switching = request.method == "GET" or "switch_model" in request.POST
    status = 200
    if switching:
        # Choosing another model keeps what was typed; nothing is validated or sent yet.
        source = request.POST if request.method == "POST" else request.GET
        kept: dict[str, object] = {k: source.get(k, "") for k in KEPT_FIELDS if k in source}
        if remix:
            kept = _remix_initial(remix)
        form = GenerationForm(spec, initial=kept, team=membership.team)
        if not remix:
            form.carry_n(source.get("n"))
    else:
        form = GenerationForm(spec, request.POST, team=membership.team)
        if form.is_valid():
            try:
                job = form.submit(membership)
            except JobRefused as refused:
                form.add_problems(refused.problems)
                status = refused.status
            else:
                _audit_generate(request, job)
                if not request.htmx:
                    return redirect("job-detail", job_id=job.pk)
                # The designer stays where she is: the form as she left it, to change and
                # send again, and her results with this job's places at the top.
                context = _form_context(membership, form) | {"sent": job}
                return render(request, "generation/generate.html#sent", context)
    template = "generation/generate.html"
    if request.htmx:
        template += "#generate-form"
    response = render(request, template, _form_context(membership, form), status=status)
    if switching and request.htmx:
        # A reload shows the form for the model chosen.
        response["HX-Replace-Url"] = f"{reverse('generate')}?{urlencode({'model': spec.name})}"
    return response


# What a model switch carries over: what the designer wrote, not the model's own options.
KEPT_FIELDS = ("prompt", "negative_prompt", "seed", "color_palette")
SWITCHES = ("prompt_extend", "thinking_mode", "watermark")


def _audit_generate(request: AppRequest, job: Job) -> None:
    record(
        request,
        Entry.Action.GENERATE,
        job,
        team=job.team,
        changes={"model": [None, job.model], "images": [None, job.images_requested]},
    )


def _remix_source(request: AppRequest, membership: Membership, kind: str) -> Job | None:
    job_id = request.GET.get("remix") if request.method == "GET" else None
    if not job_id:
        return None
    job = (
        Job.objects.filter(pk=job_id, team_id=membership.team_id).first()
        if is_uuid(job_id)
        else None
    )
    if job is None or job.kind != kind:
        raise Http404("No such job to remix.")
    return job


def _remix_initial(job: Job) -> dict[str, object]:
    initial: dict[str, object] = {"prompt": job.prompt, "negative_prompt": job.negative_prompt}
    initial.update({k: v for k, v in job.parameters.items() if k != "color_palette"})
    if job.parameters.get("color_palette"):
        initial["color_palette"] = palette_text(job.parameters["color_palette"])
    size = str(job.parameters.get("size", ""))
    spec = get_model(job.model)
    kind = Kind.EDIT if job.kind == Job.Kind.EDIT else Kind.TEXT_TO_IMAGE
    if size and size not in dict(size_choices(spec, kind)):
        initial["custom_size"] = size.replace("*", "×")
    elif not size:
        initial["size"] = default_size(spec, kind)
    return initial


# -- Editing: reference images arrive one by one, then the form is sent ------------------

# Far above any model's file limit (oversized images are scaled down, not refused), but a
# bound on what one request can make the server read.
MAX_UPLOAD_BYTES = 40 * 1024 * 1024


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def edit(request: AppRequest) -> HttpResponse:
    membership = _generating_membership(request)
    if request.method == "POST" and "remember" in request.POST:
        return _remember_form(request, membership)
    remix = _remix_source(request, membership, Job.Kind.EDIT)
    spec = _chosen_spec(request, Kind.EDIT, membership, remix.model if remix else "")
    if request.method == "GET":
        return _edit_page(request, membership, spec, remix)
    return _edit_post(request, membership, spec)


def _edit_page(
    request: AppRequest, membership: Membership, spec: ModelSpec, remix: Job | None
) -> HttpResponse:
    """The edit form as its owner left it: the images staged on it are kept a day."""
    if remix and "restaged" not in request.GET:
        # Staged once, then the form's own: a reload shows the same copies instead of
        # staging the job's images again (or none, if none could be).
        replace_form(membership, _restage_job_inputs(request, membership, remix, spec))
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
    initial = _remix_initial(remix) if remix else {"size": default_size(spec, Kind.EDIT)}
    form = GenerationForm(spec, kind=Kind.EDIT, initial=initial, team=membership.team)
    inputs = set_aside(assess_inputs(membership, staged_form(membership), spec), spec)
    return _render_edit(request, membership, form, inputs)


def _add_to_form(
    request: AppRequest, membership: Membership, named: list[tuple[str, str]], spec: ModelSpec
) -> None:
    found = assess_inputs(membership, named, spec)
    for problem in _gone(named, found):
        messages.warning(request, problem)
    on_form = staged_form(membership)
    kept = {str(item.staged.pk) for item in found} - {staged_id for staged_id, _ in on_form}
    keep_form(membership, on_form + [item for item in named if item[0] in kept])


def _remember_form(request: AppRequest, membership: Membership) -> HttpResponse:
    """What the page changed by itself (order, regions, an image taken off), kept as it
    happens so the form is the same after a reload."""
    keep_form(membership, _items(request.POST), request.POST.getlist("remove_input"))
    return HttpResponse(status=204)


def _items(data: Any) -> list[tuple[str, str]]:
    """The form's reference images in its order, each with its regions as typed."""
    return [(i, data.get(f"boxes-{i}", "")) for i in data.getlist("input")]


# What the card buttons send without JavaScript. Not "remove": a control of that name
# would hide the form's own remove(), which htmx calls to swap the form.
CARD_ACTIONS = ("switch_model", "remove_input", "move_input", "add_files")


def _edit_post(request: AppRequest, membership: Membership, spec: ModelSpec) -> HttpResponse:
    problems: list[str] = []
    items = _apply_card_action(_items(request.POST), request.POST)
    shown_aside = set(request.POST.getlist("aside"))
    assert spec.images is not None
    most = spec.images.count[1]
    files = request.FILES.getlist("files")
    room = max(0, most - len([i for i, _ in items if i not in shown_aside]))
    if len(files) > room:
        # Refused unread: decoding an image is the costly part, and these cannot be used.
        names = ", ".join(upload.name or "unnamed" for upload in files[room:])
        problems.append(f"{spec.label} takes at most {most} images; not added: {names}.")
        files = files[:room]
    for upload in files:
        # Without JavaScript the files come with the form; they are staged the same way.
        try:
            staged = _stage_upload(membership, upload, spec)
        except ImageRefused as refused:
            problems.append(f"{upload.name}: {refused}")
        else:
            items.append((str(staged.pk), ""))
    removed = request.POST.get("remove_input", "")
    keep_form(membership, items, [removed] if removed else [])
    inputs = assess_inputs(membership, items, spec)
    problems += _gone(items, inputs)
    if any(k in request.POST for k in CARD_ACTIONS):
        return _edit_redrawn(request, membership, spec, set_aside(inputs, spec), problems)

    form = GenerationForm(spec, request.POST, kind=Kind.EDIT, team=membership.team)
    status = 200
    # Sent as the page showed them: what it showed as set aside stays behind, and
    # anything else the model cannot take is refused on its card.
    inputs = set_aside(inputs, spec, shown_aside)
    sending = [item for item in inputs if not item.aside]
    card_problems = {str(item.staged.pk): item.problem for item in sending if item.problem}
    if form.is_valid() and not card_problems and not problems:
        if not sending:
            problems.append("Add at least one reference image to edit.")
        elif len(sending) > most:
            problems.append(
                f"{spec.label} takes at most {most} images; remove {len(sending) - most}."
            )
        else:
            try:
                job = form.submit(membership, uploads_for(sending, spec))
            except ImageRefused as refused:
                problems.append(str(refused))  # an image that could not be fitted to the model
            except JobRefused as refused:
                status = refused.status
                for problem in form.add_problems(refused.problems):
                    position = int(problem.field.split("[")[1].rstrip("]"))
                    if 1 <= position <= len(sending):
                        key = str(sending[position - 1].staged.pk)
                        card_problems[key] = " ".join(
                            filter(None, (card_problems.get(key), problem.message))
                        )
            else:
                # Used: they leave the form, which is empty for the next edit.
                take_off_form(membership, [str(item.staged.pk) for item in sending])
                _audit_generate(request, job)
                if not request.htmx:
                    return redirect("job-detail", job_id=job.pk)
                return _edit_sent(request, membership, spec, job)
    inputs = [
        replace(item, problem=card_problems.get(str(item.staged.pk), item.problem))
        for item in inputs
    ]
    return _render_edit(request, membership, form, inputs, problems, status=status)


def _edit_sent(
    request: AppRequest, membership: Membership, spec: ModelSpec, job: Job
) -> HttpResponse:
    """After an edit is sent, the designer stays: a form for the next edit (its images
    used, its prompt and settings kept), and her results with this job's places on top."""
    kept = {k: request.POST.get(k, "") for k in KEPT_FIELDS}
    form = GenerationForm(
        spec,
        kind=Kind.EDIT,
        initial=kept | {"size": default_size(spec, Kind.EDIT)},
        team=membership.team,
    )
    form.carry_n(request.POST.get("n"))
    inputs = set_aside(assess_inputs(membership, staged_form(membership), spec), spec)
    return _render_edit(request, membership, form, inputs, part="sent", sent=job)


def _edit_redrawn(
    request: AppRequest,
    membership: Membership,
    spec: ModelSpec,
    inputs: list[StagedInput],
    problems: list[str],
) -> HttpResponse:
    """The form again after a card button or another model: what was written is kept."""
    switching = "switch_model" in request.POST
    kept: dict[str, object] = {
        k: request.POST.get(k, "") for k in (*KEPT_FIELDS, "size", "custom_size")
    }
    if not switching:
        # The same model: its switches stay as set (an unticked box is not sent at all).
        kept |= {name: name in request.POST for name in SWITCHES}
    form = GenerationForm(spec, kind=Kind.EDIT, initial=kept, team=membership.team)
    form.carry_n(request.POST.get("n"))
    if switching:
        form.initial["size"] = default_size(spec, Kind.EDIT)
    response = _render_edit(request, membership, form, inputs, problems)
    if switching and request.htmx:
        # A reload shows the form for the model chosen, as the images were set aside for it.
        response["HX-Replace-Url"] = f"{reverse('edit')}?{urlencode({'model': spec.name})}"
    return response


def _apply_card_action(items: list[tuple[str, str]], data: Any) -> list[tuple[str, str]]:
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
    spec = form.spec
    assert spec.images is not None
    context = _form_context(membership, form) | {
        "inputs": inputs,
        "set_aside": sum(1 for item in inputs if item.aside),
        "rule": spec.images,
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


def _gone(items: list[tuple[str, str]], inputs: list[StagedInput]) -> list[str]:
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


def _stage_upload(membership: Membership, upload: UploadedFile, spec: ModelSpec) -> StagedImage:
    assert spec.images is not None
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise ImageRefused(
            f"This file is {upload.size / 1024 / 1024:.0f} MB; the studio takes files up to "
            f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        )
    return stage_image(membership, upload.read(), name=upload.name or "", rule=spec.images)


def _restage_job_inputs(
    request: AppRequest, membership: Membership, job: Job, spec: ModelSpec
) -> list[tuple[str, str]]:
    """A remixed edit's inputs, staged again for the person remixing, boxes and all; those
    the chosen model cannot take are left out, and the person told why."""
    assert spec.images is not None
    items = []
    for item in job.inputs.all():
        with item.image.open("rb") as file:
            try:
                staged = stage_image(
                    membership, file.read(), name=f"Image {item.position}", rule=spec.images
                )
            except ImageRefused as refused:
                messages.error(
                    request,
                    f"Image {item.position} of the job cannot be used with {spec.label}: {refused}",
                )
                continue
        boxes = scale_boxes(
            [tuple(b) for b in item.boxes], (item.width, item.height), (staged.width, staged.height)
        )
        items.append((str(staged.pk), boxes_text(boxes)))
    return items


@require_POST
@login_required
def stage_input(request: AppRequest) -> HttpResponse:
    """One reference image, checked and normalised on arrival; answered with its card."""
    membership = _generating_membership(request)
    spec = _chosen_spec(request, Kind.EDIT, membership)
    upload = request.FILES.get("file")
    context: dict[str, Any] = {
        "spec": spec,
        "takes_boxes": spec.supports(Option.BBOX_LIST),
        "max_boxes": spec.max_boxes_per_image,
    }
    if upload is None:
        context["refused"] = {"name": "", "reason": "No file arrived; try adding it again."}
        return render(request, "generation/edit.html#input-card", context, status=400)
    try:
        staged = _stage_upload(membership, upload, spec)
    except ImageRefused as refused:
        context["refused"] = {"name": upload.name, "reason": str(refused)}
        return render(request, "generation/edit.html#input-card", context, status=422)
    context["item"] = assess_inputs(membership, [(str(staged.pk), "")], spec)[0]
    return render(request, "generation/edit.html#input-card", context)


@require_POST
@login_required
def use_as_input(request: AppRequest, job_id: UUID, index: int) -> HttpResponse:
    """Start an edit from a result: staged as the first reference image."""
    job, _membership = get_job_for_user(request, job_id)
    # Staged for the team the studio acts in, where the edit form will look for it.
    membership = _generating_membership(request)
    image = job.images.kept().filter(index=index).first()
    if image is None:
        raise Http404("No such image.")
    spec = _chosen_spec(request, Kind.EDIT, membership, request.POST.get("model", ""))
    assert spec.images is not None
    with image.image.open("rb") as file:
        data = file.read()
    try:
        staged = stage_image(
            membership, data, name=f"{job.model_label} result {index + 1}", rule=spec.images
        )
    except ImageRefused as refused:
        messages.error(request, f"This image cannot be edited with {spec.label}: {refused}")
        return redirect("job-detail", job_id=job.pk)
    return redirect(f"{reverse('edit')}?model={spec.name}&input={staged.pk}")


@require_GET
@login_required
def staged_image(request: AppRequest, staged_id: UUID) -> HttpResponse:
    staged = StagedImage.objects.filter(pk=staged_id, owner=request.user).first()
    if staged is None:
        raise Http404("No such image.")
    return serve_image(staged.image, staged.mime, max_age=86400)


@require_POST
@login_required
def job_cancel(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    messages.info(request, cancel_job(job, membership=membership))
    return redirect("job-detail", job_id=job.pk)


@require_POST
@login_required
def job_retry(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    try:
        again = retry_job(job, membership=membership)
    except JobRefused as refused:
        messages.error(request, str(refused))
        return redirect("job-detail", job_id=job.pk)
    _audit_generate(request, again)
    return redirect("job-detail", job_id=again.pk)


@require_POST
@login_required
def job_variations(request: AppRequest, job_id: UUID) -> HttpResponse:
    """The same settings with a new seed. From the viewer the designer stays where she is,
    told what happened with a link to the new job; without JavaScript, she goes to it."""
    job, membership = get_job_for_user(request, job_id)
    made: Job | None = None
    error = ""
    status = 200
    try:
        made = variations_job(job, membership=membership)
    except JobRefused as refused:
        error, status = str(refused), refused.status
    else:
        _audit_generate(request, made)
    if not request.htmx:
        if made is not None:
            return redirect("job-detail", job_id=made.pk)
        messages.error(request, error)
        back = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect("job-detail", job_id=job.pk)
    context = {"job": job, "made": made, "variations_error": error, "may_generate": True}
    response = render(request, "gallery/image.html#variations", context, status=status)
    if made is not None:
        response["HX-Trigger"] = "jobs-changed"  # a results list on the page takes it in
    return response


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def job_detail(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    # Its places show only what is not in the trash, as the results list does.
    prefetch_related_objects(
        [job], Prefetch("images", queryset=GeneratedImage.objects.kept()), "inputs"
    )
    inputs = list(job.inputs.all())
    events = list(job.events.all())
    context = {
        "job": job,
        "may_act": membership.user_id == job.author_id or membership.can_manage,
        "may_generate": membership.can_generate,
        "events": events,
        # A poll sends the history only when it has grown: a table being read (scrolled,
        # a request id selected) is left alone otherwise.
        "history_grew": request.GET.get("seen") != str(len(events)),
        "inputs": inputs,
        "position": job.queue_position(),
        "elapsed": _elapsed(job),
        # Made, and on its way: never the hold's reason, which is for the staff.
        "held_note": DOWNLOAD_HELD if job.is_download_held else "",
    }
    template = "generation/job_detail.html"
    if request.htmx:
        template += "#job-status"
    return render(request, template, context)


def _elapsed(job: Job) -> int | None:
    """Whole seconds in the current state at the provider, for the live status."""
    since = {
        Job.Status.PENDING: job.provider_submitted_at,
        Job.Status.RUNNING: job.provider_started_at or job.provider_submitted_at,
    }.get(job.status)
    if since is None:
        return None
    return max(0, int((timezone.now() - since).total_seconds()))


@require_GET
@login_required
def job_input(request: AppRequest, job_id: UUID, position: int) -> HttpResponse:
    job, _membership = get_job_for_user(request, job_id)
    item = job.inputs.filter(position=position).first()
    if item is None:
        raise Http404("No such image.")
    return serve_image(item.image, item.mime, max_age=3600)


@require_GET
@login_required
def job_image(request: AppRequest, job_id: UUID, index: int, variant: str) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    image = job.images.filter(index=index).first()
    # Owners see trashed images' thumbnails on the trash page; nobody else sees them.
    if image is None or variant not in ("thumb", "original") or not image.is_visible_to(membership):
        raise Http404("No such image.")
    field = image.thumbnail if variant == "thumb" else image.image
    mime = "image/webp" if variant == "thumb" else image.mime
    attachment = bool(request.GET.get("download"))
    response = serve_image(
        field,
        mime,
        max_age=3600,
        filename=f"{job.model}-{str(job.pk)[:8]}-{index + 1}.{mime.split('/')[1]}",
        attachment=attachment,
    )
    if attachment and variant == "original":
        record(request, Entry.Action.DOWNLOAD, f"{job} image {index + 1}", team=job.team)
    return response


@require_POST
@login_required
def count_prompt(request: AppRequest) -> JsonResponse:
    """A prompt's length in its model's unit, for the form's counter: the server's own
    count, so the counter and the check on sending agree exactly (tokens cannot be
    counted in the browser without the tokenizer's vocabulary)."""
    _generating_membership(request)  # the people who may send a prompt, and no one else
    try:
        spec = get_model(request.POST.get("model", ""))
    except UnknownModel:
        return JsonResponse({"error": "Unknown model."}, status=400)
    # All of it, as the form's check counts it; a request body is at most 2.5 MB anyway.
    text = request.POST.get("text", "").replace("\r\n", "\n")
    return JsonResponse(
        {"count": prompt_length(spec, text), "max": spec.prompt_max, "unit": spec.prompt_unit}
    )
