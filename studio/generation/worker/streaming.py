"""A piece of mixed text and images, read as the provider streams it (wan2.6-image's
`enable_interleave`): each image stored the moment it is announced, the text kept in order.

Zero loss holds for a stream as for a task:
- Each image's URL is committed before it is downloaded, and stored at once under the
  job's index, so an image announced is never lost: a step that dies mid-stream leaves
  the URL for the next step to store (results.py stores an index once, however often).
- A stream is never sent again once it began: the provider may have billed it. The next
  step stores what was announced and ends the job saying what is known.
- A stream that breaks off (an error event, a stall past its limit, a cut connection)
  keeps what arrived: its images are stored and charged, and the job says the rest
  failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction

from studio.dashscope.errors import (
    DashScopeError,
    RequestRefused,
    StreamDeadlineExceeded,
    StreamError,
    StreamStalled,
)
from studio.dashscope.streams import (
    ImagePart,
    StreamFailed,
    StreamFinished,
    StreamLimits,
    TextPart,
)
from studio.generation import messages
from studio.generation.models import Job
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.outcomes import finish

if TYPE_CHECKING:
    from studio.dashscope.client import DashScopeClient
    from studio.dashscope.types import Usage
    from studio.generation.worker.limits import Limits

# Stores one announced image at once (downloads.py's fetch and store); what it returns is
# not needed here: anything not stored is tried again by the downloads that follow.
StoreNow = Callable[[Job, int, str], object]

# One logger for the whole worker, as operators filter its lines by that name.
logger = logging.getLogger("studio.generation.worker")

# Text arrives a few characters an event: committed this often (and at each image), so the
# designer reads it as it comes without a write per event.
TEXT_COMMIT_SECONDS = 1.0

# What a piece's stream ended with, recorded as the code of the line of history that says
# so; the job ends saying it once its pictures are stored.
STREAM_ERROR = "StreamError"
STREAM_STALLED = "StreamStalled"
STREAM_DEADLINE = "StreamDeadline"
STREAM_CUT = "StreamCut"
WORKER_STOPPED = "WorkerStoppedMidStream"
BROKEN_OFF = frozenset({STREAM_ERROR, STREAM_STALLED, STREAM_DEADLINE, STREAM_CUT, WORKER_STOPPED})


class Piece:
    """The parts of one job's stream as they arrive, committed to the job as they do."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.parts: list[dict[str, object]] = list(job.output_parts)
        self.urls: list[str] = list(job.result_urls)
        self.committed_at = time.monotonic()
        self.dirty = False

    def text(self, text: str) -> None:
        if self.parts and "text" in self.parts[-1]:
            self.parts[-1] = {"text": str(self.parts[-1]["text"]) + text}
        else:
            self.parts.append({"text": text})
        self.dirty = True
        if time.monotonic() - self.committed_at >= TEXT_COMMIT_SECONDS:
            self.commit()

    def image(self, url: str) -> int:
        """The image's index; its URL is committed before anything is fetched."""
        index = len(self.urls)
        self.urls.append(url)
        self.parts.append({"image": index})
        self.dirty = True
        self.commit()
        return index

    def commit(self) -> None:
        if not self.dirty:
            return
        text = "".join(str(part["text"]) for part in self.parts if "text" in part)
        Job.objects.filter(pk=self.job.pk).update(
            output_parts=self.parts, output_text=text, result_urls=self.urls
        )
        self.job.output_parts, self.job.output_text = self.parts, text
        self.job.result_urls = self.urls
        self.committed_at, self.dirty = time.monotonic(), False


@acting_on_job
def stream_piece(job: Job, client: DashScopeClient, limits: Limits, store: StoreNow) -> bool:
    """Read the job's stream to its end, storing each image as it is announced. True when
    the job goes on to its downloads (some image was announced), False when it ended."""
    piece = Piece(job)
    stream_limits = StreamLimits(
        deadline=limits.stream_deadline_seconds, stall=limits.stream_stall_seconds
    )
    ended: StreamFinished | StreamFailed | None = None
    broke: StreamError | None = None
    try:
        events = client.stream(job.to_generation_request(), limits=stream_limits)
        for event in events:
            if isinstance(event, TextPart):
                piece.text(event.text)
            elif isinstance(event, ImagePart):
                index = piece.image(event.url)
                job.log(f"Image {index + 1} announced; storing it now.")
                store(job, index, event.url)
            else:
                ended = event
                break
    except StreamError as error:
        broke = error
    except (DashScopeError, RequestRefused) as error:
        piece.commit()
        return _not_begun(job, piece, error)
    piece.commit()
    return _stream_ended(job, piece, ended, broke)


def _not_begun(job: Job, piece: Piece, error: DashScopeError | RequestRefused) -> bool:
    """Refused before any image: said by the caller as for any sync call, unless images
    were announced, which are stored."""
    if piece.urls:
        return _broke_off(job, STREAM_CUT, messages.stream_cut(len(piece.urls)))
    raise error


def _stream_ended(
    job: Job,
    piece: Piece,
    ended: StreamFinished | StreamFailed | None,
    broke: StreamError | None,
) -> bool:
    if isinstance(ended, StreamFinished):
        job.log("Provider call: stream", request_id=ended.request_id, code="ok")
        return _finished(job, piece, ended.usage, ended.request_id)
    if isinstance(ended, StreamFailed):
        job.log("Provider call: stream", request_id=ended.request_id or "", code=ended.code)
        told = messages.stream_failed(len(piece.urls), ended.code, ended.message)
        return _broke_off(job, STREAM_ERROR, told, request_id=ended.request_id or "")
    # Ended without its last event: a stall, the deadline, or a cut connection.
    code = STREAM_CUT
    if isinstance(broke, StreamStalled):
        code = STREAM_STALLED
    elif isinstance(broke, StreamDeadlineExceeded):
        code = STREAM_DEADLINE
    job.log("Provider call: stream", code=code)
    return _broke_off(job, code, messages.stream_stopped(len(piece.urls), code))


def _finished(job: Job, piece: Piece, usage: Usage | None, request_id: str) -> bool:
    counted = (
        {"image_count": usage.image_count, "width": usage.width, "height": usage.height}
        if usage
        else None
    )
    if not piece.urls:
        with transaction.atomic():
            Job.objects.filter(pk=job.pk).update(usage=counted, provider_request_id=request_id)
            finish(
                job,
                Job.Status.SUCCEEDED,
                message="The piece is written; the model added no pictures to it.",
                expect=(Job.Status.SUBMITTING,),
            )
        return False
    return job.move(
        Job.Status.DOWNLOADING,
        expect=(Job.Status.SUBMITTING,),
        message=f"Written, with {len(piece.urls)} pictures; storing any still to store.",
        usage=counted,
        provider_request_id=request_id,
    )


def _broke_off(job: Job, code: str, told: str, *, request_id: str = "") -> bool:
    """A stream that ended before its last event: what arrived is kept."""
    if not job.result_urls:
        finish(job, Job.Status.FAILED, code=code, message=told, expect=(Job.Status.SUBMITTING,))
        return False
    return job.move(
        Job.Status.DOWNLOADING,
        expect=(Job.Status.SUBMITTING,),
        message=told,
        request_id=request_id,
        code=code,  # read again when its pictures are stored (downloads.py)
    )


def resume_after_worker_stopped(job: Job) -> bool:
    """A step died while the job's stream was being read. It is not sent again (the
    provider may have billed it): what was announced is stored, and the job says what is
    known. True when there are images to store."""
    told = messages.worker_stopped_mid_stream(len(job.result_urls))
    return _broke_off(job, WORKER_STOPPED, told)
