"""What a job's pages say about it: its age, settings, shape, cost and progress.

Kept apart from the job's state and its changes (job.py); Job inherits these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.timesince import timesince

from studio.accounts.models import ModelPrice, money
from studio.dashscope.catalog import UnknownModel, get_model
from studio.dashscope.validation import parse_size

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager

    from studio.generation.models.charges import QuotaCharge
    from studio.generation.models.images import GeneratedImage, JobInput
    from studio.generation.models.job import Job, JobEvent


@dataclass(frozen=True)
class PiecePart:
    """One part of a piece of text and images, in reading order: a passage of text, or a
    picture (by its index in the job; `image` once stored and not in the trash)."""

    text: str = ""
    index: int | None = None
    image: GeneratedImage | None = None
    number: int = 0  # "picture N" of the piece, counting from 1

    @property
    def is_picture(self) -> bool:
        return self.index is not None


class JobDisplay:
    """The job as designers read it; a part of Job (its fields are Job's)."""

    if TYPE_CHECKING:
        # What these methods read of Job, as a Job instance has it.
        Status: type[Job.Status]
        OPEN: tuple[str, ...]
        created_at: datetime
        model: str
        parameters: dict[str, Any]
        images_requested: int
        status: str
        error_message: str
        output_parts: list[dict[str, Any]]
        provider_submitted_at: datetime | None
        provider_started_at: datetime | None
        images: RelatedManager[GeneratedImage]
        inputs: RelatedManager[JobInput]
        events: RelatedManager[JobEvent]
        quota_charges: RelatedManager[QuotaCharge]

        def queue_position(self) -> int | None: ...
        @property
        def usual_seconds(self) -> float | None: ...
        @property
        def status_for_designers(self) -> str: ...
        @property
        def is_streamed(self) -> bool: ...

    @property
    def is_set(self) -> bool:
        """Whether the job asked for a set of images: several consistent images in one
        request, as many as the model decides up to the number asked for."""
        return bool(self.parameters.get("enable_sequential"))

    @property
    def set_text(self) -> str:
        """What Results and the job page say of a set: how many it holds, or may."""
        stored = len(self.images.all())
        if self.status in self.OPEN:
            return f"A set of up to {self.images_requested}"
        if stored < self.images_requested:
            return f"A set of {stored}: the model made {stored} of up to {self.images_requested}"
        return f"A set of {stored}"

    def piece_parts(self) -> list[PiecePart]:
        """A piece of text and images as it reads: its text and pictures in the order they
        arrived (output_parts), each picture with its stored image. Reads the prefetched
        images, so a list of jobs asks nothing more per job."""
        stored = {image.index: image for image in self.images.all()}
        parts: list[PiecePart] = []
        for part in self.output_parts:
            index = part.get("image") if isinstance(part, dict) else None
            if isinstance(index, int) and not isinstance(index, bool):
                number = sum(1 for p in parts if p.is_picture) + 1
                parts.append(PiecePart(index=index, image=stored.get(index), number=number))
            elif isinstance(part, dict) and str(part.get("text") or "").strip():
                text = str(part["text"])
                if parts and not parts[-1].is_picture:  # one passage between two pictures
                    text = parts.pop().text + text
                parts.append(PiecePart(text=text))
        return parts

    @property
    def status_text(self) -> str:
        """The job's state as Results and its page say it: a piece whose text is arriving
        is being written, not still being sent."""
        if self.is_streamed and self.status == self.Status.SUBMITTING and self.output_parts:
            return "Being written"
        return self.status_for_designers

    def piece_waiting(self) -> str:
        """What an open piece says after what has arrived: more may come. Empty once ended."""
        if self.status not in self.OPEN:
            return ""
        if self.status == self.Status.SUBMITTING and self.output_parts:
            return "Being written: more may come"
        if self.status == self.Status.DOWNLOADING:
            return "Written: storing its last pictures"
        return self.live_note()

    def piece_end(self) -> str:
        """Why a piece ended early (failed, or broke off with some of it kept): its error,
        or the words its end was recorded with. Reads `endings` where a list prefetched
        them (recent_jobs_context)."""
        if self.status not in (self.Status.PARTIAL, self.Status.FAILED):
            return ""
        if self.error_message:
            return self.error_message
        endings = getattr(self, "endings", None)
        if endings is None:
            endings = list(self.events.filter(status=self.status))
        said = [e.message for e in endings if e.status == self.status and e.message]
        return said[-1] if said else ""

    @property
    def age_text(self) -> str:
        """How long ago the job was asked for, as Results says it: a job sent a moment ago
        was sent "just now", not "0 minutes ago"."""
        if timezone.now() - self.created_at < timedelta(minutes=1):
            return "just now"
        return f"{timesince(self.created_at)} ago"

    @property
    def model_label(self) -> str:
        """The model's name as people read it ("Wan 2.6"); its id for a model the
        catalog no longer knows."""
        try:
            return get_model(self.model).label
        except UnknownModel:
            return self.model

    # The request's settings by the names the generate and edit forms give them.
    PARAMETER_LABELS = {
        "size": "Size",
        "n": "Images",
        "enable_sequential": "Set of images",
        "seed": "Seed",
        "prompt_extend": "Improve my prompt",
        "thinking_mode": "Think first",
        "watermark": "Watermark",
    }

    def settings_shown(self) -> list[tuple[str, str]]:
        """The request's settings as a designer reads them: the forms' labels, sizes as
        width×height, switches as yes or no (the colour palette is drawn apart)."""
        shown = []
        for name, value in self.parameters.items():
            if name == "color_palette" or (name == "n" and (self.is_set or self.is_streamed)):
                continue
            if name == "max_images":
                continue  # said with the piece
            if name == "enable_interleave" and value:
                most = self.parameters.get("max_images", "?")
                shown.append(("Text and images", f"a piece of up to {most} pictures"))
                continue
            if name == "enable_sequential" and value:
                # A set's n is the most it may hold: said once, with the set.
                shown.append(("Set of images", f"up to {self.parameters.get('n', '?')}"))
                continue
            label = self.PARAMETER_LABELS.get(name, name.replace("_", " ").capitalize())
            if isinstance(value, bool):
                text = "yes" if value else "no"
            elif name == "size" and isinstance(value, str):
                text = value.replace("*", "×")
            else:
                text = str(value)
            shown.append((label, text))
        return shown

    def expected_shape(self) -> tuple[int, int]:
        """The width and height of the images this job makes, or of their shape: the images
        themselves once stored, else the size asked for, else (an edit's tier or default
        follows it) the last input image's, else square. Reads prefetched images and
        inputs, so a list of jobs asks nothing more."""
        stored = list(self.images.all())
        if stored:
            return stored[0].width, stored[0].height
        parsed = parse_size(str(self.parameters.get("size") or ""))
        if parsed:
            return parsed
        inputs = sorted(self.inputs.all(), key=lambda item: item.position)
        if inputs:
            return inputs[-1].width, inputs[-1].height
        return 1, 1

    def result_tiles(self) -> list[GeneratedImage | None]:
        """One place per image asked for, in order: the stored image, or None while it is
        still to come. A set may stop short of its upper bound: once it has ended, its
        places are the images it holds."""
        stored = {image.index: image for image in self.images.all()}
        count = max(self.images_requested, max(stored, default=-1) + 1)
        if self.is_set and self.status not in self.OPEN and stored:
            return [stored[index] for index in sorted(stored)]
        return [stored.get(index) for index in range(count)]

    def image_cost(self) -> str:
        """What one of its images cost, for people to read: the price it was charged at
        when it was made (as the usage report counts it), or today's price for a job from
        before the ledger; "no price set" without either."""
        charge = self.quota_charges.order_by("-kind").first()  # settled before reserved
        price = ModelPrice.objects.filter(model=self.model).first()
        if charge is not None and (charge.unit_price or price is not None):
            unit = charge.unit_price
        elif price is not None:
            unit = price.price_per_image
        else:
            return "no price set"
        return f"{money(unit)} {price.currency if price else ModelPrice.currency_in_use()}"

    def live_note(self, now: datetime | None = None) -> str:
        """What an open job is doing, as its placeholders say it: its place in line, its
        time at the provider against what the model usually takes, or that its images are
        on their way. Empty once it has ended."""
        now = now or timezone.now()
        if self.status == self.Status.QUEUED:
            position = self.queue_position() or 1
            return "Next in line" if position == 1 else f"{ordinal(position)} in line"
        if self.status == self.Status.SUBMITTING:
            return "Sending to the provider"
        if self.status == self.Status.PENDING:
            waited = _seconds_since(self.provider_submitted_at, now)
            return "Waiting at the provider" + (f" · {waited} s" if waited is not None else "")
        if self.status == self.Status.RUNNING:
            ran = _seconds_since(self.provider_started_at or self.provider_submitted_at, now)
            if ran is None:
                return "Running"
            usual = self.usual_seconds
            if usual is None:
                return f"Running · {ran} s"
            about = max(1, round(usual))
            if ran > about:
                return f"Running · {ran} s, longer than the usual {about} s"
            return f"Running · {ran} s of about {about} s"
        if self.status == self.Status.DOWNLOADING:
            return "Made · storing the images"
        if self.status in self.OPEN:
            return self.status_for_designers
        return ""


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def _seconds_since(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    return max(0, int((now - moment).total_seconds()))
