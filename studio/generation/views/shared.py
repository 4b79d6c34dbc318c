"""What the compose and edit pages share: who may generate, which model the form is for,
the form's context, a remixed job's settings, and sending a valid form as a job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.utils import timezone

from studio.accounts.access import current_membership
from studio.accounts.models import Membership, ModelPrice, QuotaCounter, money
from studio.audit.models import Entry, record
from studio.dashscope.catalog import Kind, ModelSpec, UnknownModel, get_model
from studio.dashscope.validation import Problem
from studio.generation.access import get_job_to_remix
from studio.generation.forms import GenerationForm, offered_models
from studio.generation.kits import find_kit, kit_model, team_kits
from studio.generation.models import (
    SUBJECT,
    BrandKit,
    GeneratedImage,
    Job,
    JobEvent,
    with_usual_seconds,
)
from studio.generation.modes import mode_limits, piece_only
from studio.generation.parsers import palette_text
from studio.generation.services import JobRefused, create_job
from studio.generation.sizes import default_size, size_choices
from studio.generation.staging import InputUpload
from studio.http import AppRequest

# What a model switch carries over: what the designer wrote, not the model's own options.
# A set of images, or a piece of text and images (and its most pictures), is the
# designer's choice too, kept wherever the new model makes one.
KEPT_FIELDS = (
    "prompt",
    "negative_prompt",
    "seed",
    "color_palette",
    "enable_sequential",
    "enable_interleave",
    "max_images",
)
SWITCHES = ("prompt_extend", "thinking_mode", "watermark")

RECENT_JOBS = 8
ENDED_EARLY = (Job.Status.PARTIAL, Job.Status.FAILED)


def generating_membership(request: AppRequest) -> Membership:
    membership = current_membership(request.user)
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only designers, reviewers and owners can generate images.")
    return membership


def chosen_spec(
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


@dataclass(frozen=True)
class PickerOption:
    """A model as the picker shows it for this kind of job."""

    name: str
    label: str
    hint: str


def picker_options(membership: Membership, kind: Kind) -> list[PickerOption]:
    """The models offered, each with what it does here: a model offered from a prompt
    alone for its pieces of text and images says that, not what it does with images."""
    options = []
    for spec in offered_models(membership.team, kind):
        hint = spec.hint
        if piece_only(spec, kind) and spec.interleave is not None:
            most = spec.interleave.max_images.max
            # Short: the picker shows two lines of a hint.
            hint = f"A short text illustrated with up to {most} pictures."
        options.append(PickerOption(spec.name, spec.label, hint))
    return options


def form_context(membership: Membership, form: GenerationForm) -> dict[str, Any]:
    price = ModelPrice.table().get(form.spec.name)
    wanted = form.images_wanted()
    return {
        "form": form,
        # The limits the form is drawn for: a piece's, in its mode (its name is the model's).
        "spec": form.limits,
        "models": picker_options(membership, form.kind),
        "quota": QuotaCounter.images_left(membership, timezone.now()),
        "budget": QuotaCounter.budget_left(membership.team, timezone.now()),
        "price": price,
        "images_wanted": wanted,
        "cost": money(price * wanted) if price is not None else None,
        "currency": ModelPrice.currency_in_use(),
        "kits": list(team_kits(membership.team_id).only("pk", "name")),
        "applied_kit": form.kit,
        "can_manage_kits": membership.can_manage,
        **recent_jobs_context(membership),
    }


def recent_jobs_context(membership: Membership) -> dict[str, Any]:
    jobs = with_usual_seconds(
        list(
            Job.objects.filter(team_id=membership.team_id, author_id=membership.user_id)
            .prefetch_related(
                Prefetch("images", queryset=GeneratedImage.objects.kept()),
                "inputs",
                # What a piece that ended early says (JobDisplay.piece_end), in one query.
                Prefetch(
                    "events",
                    queryset=JobEvent.objects.filter(status__in=ENDED_EARLY),
                    to_attr="endings",
                ),
            )
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


def submit(form: GenerationForm, membership: Membership, inputs: Sequence[InputUpload] = ()) -> Job:
    """Create the job this valid form describes (with the kit it carries); JobRefused
    says why it cannot be."""
    prompt = form.cleaned_data["prompt"]
    if form.kit is not None and SUBJECT in prompt:
        raise JobRefused(
            [Problem("prompt", f"Write what the picture shows in place of {SUBJECT}.")]
        )
    return create_job(
        membership=membership,
        model=form.spec.name,
        prompt=prompt,
        negative_prompt=form.cleaned_data.get("negative_prompt", ""),
        parameters=form.parameters(),
        inputs=inputs,
        kit=form.kit,
    )


@dataclass(frozen=True)
class KitChoice:
    """The brand kit of a form: one applied just now (its values to fill in), or the one
    the form carries from an earlier click; none once the designer drops it."""

    applying: BrandKit | None
    carried: BrandKit | None
    dropped: BrandKit | None = None  # taken off the form just now

    @property
    def kit(self) -> BrandKit | None:
        return self.applying or self.carried

    def model(self, membership: Membership, kind: Kind) -> str:
        """The model to draw the form for when applying: the kit's, where it is offered."""
        if self.applying is None:
            return ""
        return kit_model(self.applying, offered_models(membership.team, kind))


def let_drafts_win(form: GenerationForm) -> None:
    """The prompts a page fills in from a kit on a reload yield to what the tab kept as
    typed (studio.js): her words, wrapped in the kit, not the kit's empty slot."""
    for name in ("prompt", "negative_prompt"):
        if name in form.fields:
            form.fields[name].widget.attrs["data-draft-wins"] = ""


def kit_choice(request: AppRequest, membership: Membership) -> KitChoice:
    """The kit a request applies (a kit's button, or ?kit= in the address), carries (the
    form's hidden field, or the page's last in this session: a reload keeps it, as it
    keeps the prompt and the images) or drops ("No kit")."""
    remembered = f"kit:{request.path}"
    if request.method == "GET":
        choice = KitChoice(
            find_kit(membership, request.GET.get("kit")),
            find_kit(membership, request.session.get(remembered)),
        )
    elif "drop_kit" in request.POST:
        choice = KitChoice(None, None, find_kit(membership, request.POST.get("kit")))
    else:
        choice = KitChoice(
            find_kit(membership, request.POST.get("apply_kit")),
            find_kit(membership, request.POST.get("kit")),
        )
    if choice.kit is not None:
        request.session[remembered] = choice.kit.pk
    else:
        request.session.pop(remembered, None)
    return choice


def audit_generate(request: AppRequest, job: Job) -> None:
    record(
        request,
        Entry.Action.GENERATE,
        job,
        team=job.team,
        changes={"model": [None, job.model], "images": [None, job.images_requested]},
    )


def remix_source(request: AppRequest, membership: Membership, kind: str) -> Job | None:
    """The job a form starts from (?remix=), on the form's first showing only."""
    job_id = request.GET.get("remix") if request.method == "GET" else None
    if not job_id:
        return None
    return get_job_to_remix(membership, job_id, kind)


def remix_initial(job: Job) -> dict[str, object]:
    initial: dict[str, object] = {"prompt": job.prompt, "negative_prompt": job.negative_prompt}
    initial.update({k: v for k, v in job.parameters.items() if k != "color_palette"})
    if job.parameters.get("color_palette"):
        initial["color_palette"] = palette_text(job.parameters["color_palette"])
    size = str(job.parameters.get("size", ""))
    kind = Kind.EDIT if job.kind == Job.Kind.EDIT else Kind.TEXT_TO_IMAGE
    spec = mode_limits(get_model(job.model), kind, job.parameters)
    if size and size not in dict(size_choices(spec, kind)):
        initial["custom_size"] = size.replace("*", "×")
    elif not size:
        initial["size"] = default_size(spec, kind)
    return initial
