"""The text-to-image page: the form for the chosen model, sent as a job, and the designer's
recent jobs beside it; and the prompt counter both forms ask."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from studio.accounts.access import current_membership
from studio.accounts.models import Membership
from studio.dashscope.catalog import Kind, ModelSpec, UnknownModel, get_model
from studio.dashscope.tokens import prompt_length
from studio.generation.forms import GenerationForm
from studio.generation.kits import applied_values, dropped_values
from studio.generation.models import Job
from studio.generation.services import JobRefused
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
    recent_jobs_context,
    remix_initial,
    remix_source,
    submit,
)
from studio.http import PARTIAL_HEADERS, AppRequest
from studio.notifications.watching import mark_watching


@require_GET
@login_required
def recent_jobs(request: AppRequest) -> HttpResponse:
    membership = current_membership(request.user)
    if membership is None:
        raise Http404("No team.")
    context = recent_jobs_context(membership)
    # Watched here: a job that ends in sight of its author needs no notification.
    mark_watching(request.user.pk, [job.pk for job in context["recent_jobs"] if job.is_open])
    return render(request, "generation/recent_jobs.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def generate(request: AppRequest) -> HttpResponse:
    membership = generating_membership(request)
    remix = remix_source(request, membership, Job.Kind.TEXT_TO_IMAGE)
    kit = kit_choice(request, membership)
    wanted = kit.model(membership, Kind.TEXT_TO_IMAGE) or (remix.model if remix else "")
    spec = chosen_spec(request, Kind.TEXT_TO_IMAGE, membership, wanted)
    if request.method == "GET" or any(k in request.POST for k in REDRAWS):
        return _switched(request, membership, spec, remix, kit)
    return _sent(request, membership, spec, kit)


# What a form posts to be drawn again rather than sent: another model, a set or single
# images, a brand kit applied or dropped.
REDRAWS = ("switch_model", "redraw", "apply_kit", "drop_kit")


def _switched(
    request: AppRequest,
    membership: Membership,
    spec: ModelSpec,
    remix: Job | None,
    kit: KitChoice,
) -> HttpResponse:
    """The form for the model chosen, or drawn again for a set of images or single ones
    (a model offered here for pieces of text and images is drawn as one), or with a brand
    kit's values. Choosing another model keeps what was typed; nothing is validated or
    sent yet."""
    source = request.POST if request.method == "POST" else request.GET
    kept: dict[str, object] = {k: source.get(k, "") for k in KEPT_FIELDS if k in source}
    redraw = source.get("redraw", "") if request.method == "POST" else ""
    if redraw:
        # The same model: its size and switches stay as set.
        kept |= {k: source.get(k, "") for k in ("size", "custom_size")}
        kept |= {name: name in source for name in SWITCHES}
    if remix:
        kept = remix_initial(remix)
    # A reload with the page's kit still applied: its settings again.
    reloaded = kit.carried if request.method == "GET" and not remix else None
    if kit.applying:
        prompt = str(kept.get("prompt", ""))
        kept |= applied_values(kit.applying, spec, Kind.TEXT_TO_IMAGE, prompt, kit.carried)
    elif kit.dropped:
        kept |= dropped_values(kit.dropped, kept)
    elif reloaded:
        kept |= applied_values(reloaded, spec, Kind.TEXT_TO_IMAGE, "")
    form = GenerationForm(spec, initial=kept, team=membership.team)
    form.kit = kit.kit
    if reloaded and not kit.applying:
        let_drafts_win(form)
    if not remix:
        form.carry_n(source.get("n"), set_begun=redraw == "enable_sequential")
    response = _render_form(request, membership, form)
    if request.htmx:
        # A reload shows the form for the model chosen.
        response["HX-Replace-Url"] = f"{reverse('generate')}?{urlencode({'model': spec.name})}"
    return response


def _sent(
    request: AppRequest, membership: Membership, spec: ModelSpec, kit: KitChoice
) -> HttpResponse:
    """The form sent: a job made of it, or the form again with the reasons it was not."""
    form = GenerationForm(spec, request.POST, team=membership.team)
    form.kit = kit.carried
    status = 200
    if form.is_valid():
        try:
            job = submit(form, membership)
        except JobRefused as refused:
            form.add_problems(refused.problems)
            status = refused.status
        else:
            audit_generate(request, job)
            if not request.htmx:
                return redirect("job-detail", job_id=job.pk)
            # The designer stays where she is: the form as she left it, to change and
            # send again, and her results with this job's places at the top.
            context = form_context(membership, form) | {"sent": job}
            return render(request, "generation/generate.html#sent", context)
    return _render_form(request, membership, form, status)


def _render_form(
    request: AppRequest, membership: Membership, form: GenerationForm, status: int = 200
) -> HttpResponse:
    template = "generation/generate.html"
    if request.htmx:
        template += "#generate-form"
    return render(request, template, form_context(membership, form), status=status)


@require_POST
@login_required
def count_prompt(request: AppRequest) -> JsonResponse:
    """A prompt's length in its model's unit, for the form's counter: the server's own
    count, so the counter and the check on sending agree exactly (tokens cannot be
    counted in the browser without the tokenizer's vocabulary)."""
    generating_membership(request)  # the people who may send a prompt, and no one else
    try:
        spec = get_model(request.POST.get("model", ""))
    except UnknownModel:
        return JsonResponse({"error": "Unknown model."}, status=400)
    # All of it, as the form's check counts it; a request body is at most 2.5 MB anyway.
    text = request.POST.get("text", "").replace("\r\n", "\n")
    return JsonResponse(
        {"count": prompt_length(spec, text), "max": spec.prompt_max, "unit": spec.prompt_unit}
    )
