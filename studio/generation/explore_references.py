"""What each model of an exploration receives of the reference images on the designer's
Edit form: all of them, those it has room for, without the regions it does not take, or
none (a model that makes its picture from the prompt alone)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio.accounts.models import Membership
from studio.dashscope.catalog import Kind, ModelSpec, Option
from studio.generation.sizes import default_size
from studio.generation.staging import StagedInput, assess_inputs, set_aside

Items = Sequence[tuple[str, str]]  # the Edit form's images: (staged id, regions as typed)


@dataclass(frozen=True)
class References:
    """One model's share of the reference images, and what to say of it."""

    sending: tuple[StagedInput, ...] = ()
    size: str = ""  # an edit's size: a tier, or "" for the last image's shape
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def edits(self) -> bool:
        return bool(self.sending)


def edits_images(spec: ModelSpec) -> bool:
    return spec.images is not None and Kind.EDIT in spec.kinds


def references_for(spec: ModelSpec, membership: Membership, items: Items) -> References:
    """What the model receives of the form's images `items` (none given: nothing to say)."""
    if not items:
        if edits_images(spec) and Kind.TEXT_TO_IMAGE not in spec.kinds:
            return References(problems=(f"{spec.label} edits images: it needs at least one.",))
        return References()
    if not edits_images(spec):
        return References(notes=("takes no reference images: drawn from the prompt alone",))
    assessed = set_aside(assess_inputs(membership, items, spec), spec)
    sending = tuple(item for item in assessed if not item.aside)
    aside = [item for item in assessed if item.aside]
    count = len(sending)
    notes = [f"{count} reference image{'s' * (count != 1)}"]
    with_boxes = [item for item in sending if item.boxes]
    if with_boxes and spec.supports(Option.BBOX_LIST):
        notes.append(f"with the regions on {len(with_boxes)} of them")
    elif with_boxes:
        notes.append("takes no regions: sent without them")
    if aside:
        notes.append(f"{len(aside)} not sent: {aside[0].aside}")
    problems = [f"Image {item.number}: {item.problem}" for item in sending if item.problem]
    if not sending:
        reason = aside[0].aside if aside else ""
        problems.append(f"None of the reference images can go to {spec.label}. {reason}".strip())
    return References(
        sending=sending,
        size=default_size(spec, Kind.EDIT),
        notes=tuple(notes),
        problems=tuple(problems),
    )
