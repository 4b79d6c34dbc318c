"""Job steps: the slow work of one job, under its lease. A sync generation, then its
images downloaded and stored (downloads.py); attempts are counted when a step starts, so a
job that keeps crashing its worker ends after a few tries instead of crashing workers
forever."""

from __future__ import annotations

import logging
import time

from django.db import close_old_connections
from django.utils import timezone

from studio.dashscope.client import DashScopeClient
from studio.dashscope.errors import DashScopeError, RequestRefused, SubmitUncertain
from studio.dashscope.types import TaskResult
from studio.generation import messages
from studio.generation.models import Job
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.downloads import download_all, fetch_and_store, hold_download
from studio.generation.worker.leases import claim, lease_kept, worker_name
from studio.generation.worker.limits import Clock, Limits
from studio.generation.worker.outcomes import cancel_unsent, finish, turned_away, usage
from studio.generation.worker.streaming import resume_after_worker_stopped, stream_piece
from studio.logs import log_context

# One logger for the whole worker, as operators filter its lines by that name.
logger = logging.getLogger("studio.generation.worker")

# A job step's downloads stop retrying this long after the step began, and the job waits
# to try again in another step: the cluster kills a task past its timeout (Q_CLUSTER's 300
# s) as if it had crashed, and a crash spends one of the job's few attempts. A sync
# generation counts against it (what it leaves is for the downloads), and the dispatcher's
# slice (40 s, and the pass under way) waits for the downloads it began. A download may
# overrun it by a connect and a read timeout.
STEP_SECONDS = 180
# A picture announced in a stream is stored at once, within this long.
STORE_NOW_SECONDS = 30


def run_step(
    job_id: str, client: DashScopeClient, *, limits: Limits | None = None, now: Clock = timezone.now
) -> None:
    owner = worker_name()
    with log_context(job_id=job_id, worker=owner):
        _run_step(job_id, owner, client, limits or Limits.from_settings(), now)


def run_step_in_thread(job_id: str, client: DashScopeClient, limits: Limits) -> None:
    """A step run by one of the dispatcher's download threads; a failure is logged there."""
    close_old_connections()  # this thread's database connection may have gone stale
    try:
        run_step(job_id, client, limits=limits)
    except Exception:
        with log_context(job_id=job_id):
            logger.exception("Downloading the results of job %s failed", job_id)


def _run_step(job_id: str, owner: str, client: DashScopeClient, limits: Limits, now: Clock) -> None:
    job = claim(job_id, owner, seconds=limits.step_lease_seconds)
    if job is None:
        return  # a duplicate delivery, or the job moved on: nothing to do
    seconds = limits.step_lease_seconds
    with lease_kept(lambda: job.renew_lease(owner, seconds), seconds):
        _carry_out_step(job, client, limits, now)


def _carry_out_step(job: Job, client: DashScopeClient, limits: Limits, now: Clock) -> None:
    give_up_at = time.monotonic() + STEP_SECONDS
    if job.attempts > limits.step_attempts:
        _crashed_too_often(job, limits, now)
        return
    if job.status == Job.Status.SUBMITTING:
        if job.attempts > 1:
            if job.is_streamed:
                # Its stream was being read: what it announced is stored, nothing resent.
                if resume_after_worker_stopped(job):
                    download_all(job, client, give_up_at, limits, now)
                return
            # A sync call was under way when its worker died: the images may exist, but
            # there is no task id to find them by.
            finish(
                job, Job.Status.FAILED, code="SubmitUncertain", message=messages.SUBMIT_UNCERTAIN
            )
            return
        if job.cancel_requested:
            cancel_unsent(job)
            return
        if job.is_streamed:
            made = _stream(job, client, limits, now, give_up_at)
        else:
            made = _generate(job, client, limits, now)
        if not made:
            return
    download_all(job, client, give_up_at, limits, now)


def _crashed_too_often(job: Job, limits: Limits, now: Clock) -> None:
    moment = now()
    valid_until = job.results_valid_until or job.result_urls_valid_until(moment)
    if job.status != Job.Status.SUBMITTING and job.result_urls and moment < valid_until:
        # Its images are made: a step that keeps dying (storage that hangs past the
        # task's timeout, say) is an operator's to fix, and the job waits for it.
        logger.error("Job %s stopped its step %d times; held", job.pk, job.attempts - 1)
        hold_download(job, "WorkerCrashed", moment, valid_until, limits)
        return
    logger.error("Job %s failed its step %d times; giving up", job.pk, job.attempts - 1)
    finish(job, Job.Status.FAILED, code="WorkerCrashed", message=messages.WORKER_CRASHED)


@acting_on_job
def _generate(job: Job, client: DashScopeClient, limits: Limits, now: Clock) -> bool:
    try:
        # One try: a refused call goes back to the queue below, where the dispatcher paces
        # it by the provider's limits. Retried here, each try could take minutes and keep
        # the step past the cluster's timeout, whose kill would fail the job as uncertain
        # while the provider might be making (and billing) its images.
        result = client.generate(job.to_generation_request(), once=True)
    except (DashScopeError, RequestRefused) as error:
        _not_generated(job, error, limits, now)
        return False
    job.log("Provider call: generate", request_id=result.request_id, code="ok")
    return _generated(job, result)


def _stream(
    job: Job, client: DashScopeClient, limits: Limits, now: Clock, give_up_at: float
) -> bool:
    """A piece of mixed text and images, read as it streams; each picture stored at once."""

    def store_now(job: Job, index: int, url: str) -> object:
        # Briefly: what cannot be stored at once is left to the downloads after the
        # stream, and the step's time is the stream's too.
        return fetch_and_store(
            job, index, url, client, min(give_up_at, time.monotonic() + STORE_NOW_SECONDS)
        )

    try:
        return stream_piece(job, client, limits, store_now)
    except (DashScopeError, RequestRefused) as error:
        _not_generated(job, error, limits, now)
        return False


def _not_generated(
    job: Job, error: DashScopeError | RequestRefused, limits: Limits, now: Clock
) -> None:
    if isinstance(error, SubmitUncertain):
        job.log("generate: no answer from the provider", code=error.code)
        finish(job, Job.Status.FAILED, code="SubmitUncertain", message=messages.SUBMIT_UNCERTAIN)
        return
    if isinstance(error, RequestRefused):
        finish(job, Job.Status.FAILED, code="InvalidParameter", message=messages.refused(error))
        return
    job.log("Provider call: generate", request_id=error.request_id or "", code=error.code)
    if error.retryable:
        turned_away(job, error, now(), limits, least_pause=5.0, lease_owner="", lease_until=None)
    else:
        finish(job, Job.Status.FAILED, code=error.code, message=messages.for_error(error))


def _generated(job: Job, result: TaskResult) -> bool:
    cancelled_meanwhile = Job.objects.filter(pk=job.pk, cancel_requested=True).exists()
    moved = job.move(
        Job.Status.DOWNLOADING,
        expect=(Job.Status.SUBMITTING,),
        message=(
            "Made by the provider before the cancel could stop it; its images will be stored."
            if cancelled_meanwhile
            else "Made by the provider; downloading."
        ),
        result_urls=list(result.image_urls),
        usage=usage(result),
        provider_request_id=result.request_id,
    )
    if not moved:
        # Nothing ends a job being sent but its own step; should that change, the images
        # the provider made would be lost here, and this says so.
        logger.error("Job %s ended while its images were being made; they are not stored", job.pk)
    return moved
