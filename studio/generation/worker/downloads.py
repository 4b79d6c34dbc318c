"""A step's downloads: each result fetched and stored (results.py), passing faults retried
after pauses, and a job whose images cannot be stored yet held until its URLs expire."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from studio.dashscope.client import DashScopeClient
from studio.dashscope.errors import DashScopeError
from studio.generation import messages
from studio.generation.models import Job, JobEvent, JobFields, LeaseTerm
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.limits import Clock, Limits
from studio.generation.worker.outcomes import finish
from studio.generation.worker.results import InvalidResult, StorageUnavailable, store_result
from studio.generation.worker.streaming import BROKEN_OFF

# One logger for the whole worker, as operators filter its lines by that name.
logger = logging.getLogger("studio.generation.worker")

# Passing download failures (a 5xx, a dropped connection) are retried with pauses doubling
# from 5 s to 10 min, about an hour in all; one that outlasts them holds the job.
DOWNLOAD_RETRIES = 12
IMAGE_TRIES = 3  # downloads of one image answering 403 or not an image, in one step
# What the studio refuses itself, or an operator must fix, does not change on a quick retry:
# a host it does not allow (or that resolves inward), a certificate it does not trust, a
# result over its byte cap. The job is held at once, and tried again with longer pauses.
HOLD_AT_ONCE = frozenset({"ResultURLRefused", "ResultTLSFailed", "ResultTooLarge"})
STORAGE_UNAVAILABLE = "StorageUnavailable"


@dataclass(frozen=True)
class NotStored:
    """Why one result is not stored after a step's tries."""

    code: str
    # The provider no longer serves it (its URL expired, or the object is gone): final.
    gone: bool = False
    # A passing fault (a 5xx, a dropped connection, time up): worth a short pause.
    passing: bool = False


def _url_gone(error: DashScopeError) -> bool:
    """What a result host answers once a URL's validity is over, or its object is gone."""
    return (error.status == 403 and error.code == "AccessDenied") or (
        error.status == 404 and error.code == "NoSuchKey"
    )


def fetch_and_store(
    job: Job, index: int, url: str, client: DashScopeClient, give_up_at: float
) -> NotStored | None:
    """Download one result and store it: None once it is stored, or why it is not."""
    # A held job is tried every few minutes for up to a day: its tries are not each a line
    # of its history (the hold's reason is, when it changes).
    record = job.status == Job.Status.DOWNLOADING
    outcome: NotStored | None = None
    for attempt in range(1, IMAGE_TRIES + 1):
        try:
            data = client.download(url, within=give_up_at - time.monotonic())
        except DashScopeError as error:
            if record:
                job.log(f"download of image {index + 1}", code=error.code)
            if error.code in HOLD_AT_ONCE:
                return NotStored(error.code)  # trying the same URL again gives the same answer
            if error.retryable:
                return NotStored(error.code, passing=True)
            # A 403 or 404 is tried again, in case the host only stumbled.
            outcome = NotStored(error.code, gone=_url_gone(error))
            continue
        try:
            store_result(job, index, data)
            return None
        except InvalidResult as error:
            # A cut connection or a proxy's error page: worth another try or two.
            if record:
                job.log(
                    f"image {index + 1} is not a valid image ({error}), try {attempt}",
                    code="InvalidResult",
                )
            outcome = NotStored("InvalidResult")
        except StorageUnavailable as error:
            if record:
                job.log(f"storing image {index + 1}: {error}", code=STORAGE_UNAVAILABLE)
            return NotStored(STORAGE_UNAVAILABLE)
    return outcome


@acting_on_job
def download_all(
    job: Job, client: DashScopeClient, give_up_at: float, limits: Limits, now: Clock
) -> None:
    """Store every result not stored yet.

    A passing fault is tried again after a pause, in another step, for about an hour. What
    the studio refuses itself, a fault an operator can fix, and a passing fault that
    outlasted its retries hold the job (the images stored so far stay, the reservation
    stays) until the provider's URLs expire. Only images the provider no longer serves are
    given up, and the job is then charged for exactly what was stored.
    """
    stored = set(job.images.values_list("index", flat=True))
    not_stored: list[NotStored] = []
    for index, url in enumerate(job.result_urls):
        if index in stored:
            continue
        outcome = fetch_and_store(job, index, url, client, give_up_at)
        if outcome is None:
            continue
        if (
            outcome.passing
            and job.status == Job.Status.DOWNLOADING
            and job.download_failures < DOWNLOAD_RETRIES
        ):
            _pause_downloads(job)
            return
        not_stored.append(outcome)
        if outcome.code == STORAGE_UNAVAILABLE:
            break  # the other images would meet the same storage
    _settle_downloads(job, not_stored, limits, now())


def _settle_downloads(
    job: Job, not_stored: list[NotStored], limits: Limits, moment: datetime
) -> None:
    """Hold the job for what can still be stored, or end it with what was."""
    held = [outcome for outcome in not_stored if not outcome.gone]
    if held:
        valid_until = job.results_valid_until or job.result_urls_valid_until(moment)
        if moment < valid_until:
            hold_download(job, held[0].code, moment, valid_until, limits)
            return
        # The URLs have expired: what is not stored now never will be.
    count = job.images.count()
    # A set's n and a piece's max_images are upper bounds the model may stop short of;
    # otherwise every requested image that did not arrive makes the job partial.
    wanted = (
        len(job.result_urls)
        if job.parameters.get("enable_sequential") or job.is_streamed
        else max(job.images_requested, len(job.result_urls))
    )
    broke_off = _broken_off(job) if count else None
    if broke_off is not None:
        # A piece whose stream broke off: what arrived is stored, and the job says so.
        told = messages.piece_stored(count, broke_off.message)
        finish(job, Job.Status.PARTIAL, code=broke_off.code, message=told)
    elif count == 0 and not_stored:
        finish(job, Job.Status.FAILED, code="ResultExpired", message=messages.RESULTS_EXPIRED)
    elif count == 0:
        finish(job, Job.Status.FAILED, code="DownloadFailed", message=messages.DOWNLOAD_FAILED)
    elif count < wanted:
        finish(job, Job.Status.PARTIAL, message=messages.partial(count, wanted))
    else:
        finish(job, Job.Status.SUCCEEDED, message=messages.stored(count))


def _broken_off(job: Job) -> JobEvent | None:
    """How a piece's stream broke off, if it did: the line of history it was said in (a
    held download since then has its own reason, which does not replace it)."""
    if not job.is_streamed:
        return None
    return job.events.filter(code__in=BROKEN_OFF).order_by("at", "pk").last()


def _pause_downloads(job: Job) -> None:
    """Let go of the job for a pause that doubles with each passing failure. The step ends
    normally (attempts count crashes only), and the job is handed out again once the pause
    is over (handover.hand_over_steps)."""
    pause = min(5 * 2**job.download_failures, 600)
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(
            download_failures=F("download_failures") + 1,
            attempts=0,
            lease_owner="",
            lease_until=Now() + timedelta(seconds=pause),
        )
        LeaseTerm.end(LeaseTerm.of_job(job.pk), job.lease_owner)


def hold_download(
    job: Job, code: str, now: datetime, valid_until: datetime, limits: Limits
) -> None:
    """Hold a job whose images cannot be stored yet, for the reason `code`: tried again
    after as long as it has been held (within the first and longest pauses), and at the
    latest when its URLs expire, when that try is the last. The step lets go of it."""
    since = job.download_held_at or now
    held_for = (now - since).total_seconds()
    pause = min(limits.hold_longest_seconds, max(limits.hold_first_seconds, held_for))
    fields: JobFields = {
        "error_code": code,
        "download_held_at": since,
        "download_retry_at": min(now + timedelta(seconds=pause), valid_until),
        "results_valid_until": valid_until,
        "attempts": 0,
        "lease_owner": "",
        "lease_until": None,
    }
    if job.status != Job.Status.DOWNLOAD_HELD or job.error_code != code:
        # News for the history: the job is held, or held for another reason now.
        logger.warning("Job %s is held: its images cannot be stored yet (%s)", job.pk, code)
        job.move(
            Job.Status.DOWNLOAD_HELD,
            expect=(Job.Status.DOWNLOADING, Job.Status.DOWNLOAD_HELD),
            message=messages.DOWNLOAD_HELD_EVENT,
            code=code,
            **fields,
        )
        return
    logger.info(
        "Job %s is still held (%s); next try at %s", job.pk, code, fields["download_retry_at"]
    )
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, status=Job.Status.DOWNLOAD_HELD).update(
            updated_at=timezone.now(), **fields
        )
        LeaseTerm.end(LeaseTerm.of_job(job.pk), job.lease_owner)
