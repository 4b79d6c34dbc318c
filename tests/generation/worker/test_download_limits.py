"""Result downloads through the worker: bodies that never end are cut off and store
nothing, and a step stops retrying before the cluster would kill its task."""

from __future__ import annotations

import time

import pytest

from studio.dashscope.client import DashScopeClient, RetryPolicy, Timeouts
from studio.generation.models import GeneratedImage, Job
from studio.generation.worker.steps import run_step
from tests.support.emulation import API_KEY

pytestmark = pytest.mark.django_db


def test_result_downloads_that_never_end_are_cut_off_and_store_nothing(
    pipeline, member, media, result_server
):
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 2}
    )
    step = pipeline.until_handed_over(job)
    # The provider hands out URLs whose bodies never end: one endless, one trickling.
    Job.objects.filter(pk=job.pk).update(
        result_urls=[result_server.url("endless"), result_server.url("trickle")]
    )
    client = DashScopeClient(
        api_key=API_KEY,
        base_url="https://dashscope-intl.aliyuncs.com/api/v1",
        route=result_server.route,
        max_download_bytes=256 * 1024,
        timeouts=Timeouts(download=1.0),
        retry=RetryPolicy(attempts=1),
    )
    started = time.monotonic()
    run_step(step, client, limits=pipeline.limits, now=pipeline.now)
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    codes = list(job.events.exclude(code="").values_list("code", flat=True))
    # The endless body is cut at the cap once (the same URL would be as large again); the
    # trickle at the deadline, after which the job waits to try again later.
    assert codes.count("ResultTooLarge") == 1 and codes.count("DownloadTimeout") == 1
    assert elapsed < 1.0 + 2.0
    assert job.status == Job.Status.DOWNLOADING and job.download_failures == 1
    assert not GeneratedImage.objects.exists()
    assert not media.exists() or not any(path.is_file() for path in media.rglob("*"))
    assert len(result_server.requests) == 2


def test_a_step_stops_retrying_slow_downloads_before_its_task_would_be_killed(
    pipeline, member, media, result_server, monkeypatch
):
    """The cluster kills a task past its timeout as if it had crashed, spending one of the
    job's few attempts. A step's downloads stop retrying in time, and the job waits to try
    again in another step, its attempts untouched."""
    import studio.generation.worker.steps as worker

    monkeypatch.setattr(worker, "STEP_SECONDS", 1.5)
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    step = pipeline.until_handed_over(job)
    Job.objects.filter(pk=job.pk).update(result_urls=[result_server.url("trickle")])
    # As configured for the worker: a minute per download, four tries.
    client = DashScopeClient(
        api_key=API_KEY,
        base_url="https://dashscope-intl.aliyuncs.com/api/v1",
        route=result_server.route,
    )
    started = time.monotonic()
    run_step(step, client, limits=pipeline.limits, now=pipeline.now)
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    assert 1.5 <= elapsed < 1.5 + 1.0
    assert job.status == Job.Status.DOWNLOADING and job.download_failures == 1
    assert job.attempts == 0 and not job.lease_owner
    assert not GeneratedImage.objects.exists()


def test_a_steps_time_fits_inside_the_clusters_task_timeout():
    from django.conf import settings

    from studio.generation.worker.runner import DISPATCH_SLICE_SECONDS
    from studio.generation.worker.steps import STEP_SECONDS

    step, killed_after = STEP_SECONDS, settings.Q_CLUSTER["timeout"]
    # A download may overrun the step's time by a connect and a read timeout.
    overrun = Timeouts().connect + Timeouts().read
    # The dispatcher's slice ends after the pass under way, which may be waiting on a
    # submit (a connect and a read timeout too); then it waits for the downloads it began.
    assert DISPATCH_SLICE_SECONDS + overrun + step + overrun < killed_after
    # A sync step makes one provider call (a refusal waits in the studio's queue, not in
    # the step), and its downloads start no retry once the step's time is up.
    assert Timeouts().connect + Timeouts().generate + overrun < killed_after
