"""A piece of mixed text and images (wan2.6-image, streamed) through the worker against the
emulator: text kept in order with its pictures, each picture stored as it is announced,
charged for what arrived; a stream that errors, stalls or loses its worker midway keeps
what arrived and is never sent again."""

from __future__ import annotations

import itertools

import pytest

from studio.generation.models import Job, QuotaCharge
from studio.generation.worker import steps
from tests.support.pipeline import Pipeline

PIECE = {
    "model": "wan2.6-image",
    "parameters": {"enable_interleave": True, "max_images": 3, "size": "1024*1024"},
}


def submit(pipeline: Pipeline, member, prompt: str) -> Job:
    return pipeline.submit(member, prompt=prompt, **PIECE)


def streams_sent(pipeline: Pipeline) -> int:
    return pipeline.emulator.counts["streams"]


def told(job: Job) -> str:
    """What the job says at its end: its last line of history."""
    return job.events.order_by("at", "pk").last().message


def charged(job: Job) -> dict[str, int]:
    return {c.kind: c.images for c in job.quota_charges.all()}


def test_a_piece_keeps_its_text_and_pictures_in_order(pipeline, member):
    job = submit(pipeline, member, "A short illustrated story of a fox in the snow")
    assert job.parameters["n"] == 1 and job.parameters["max_images"] == 3
    assert charged(job) == {QuotaCharge.Kind.RESERVE: 3}
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, told(job)
    images = list(job.images.order_by("index"))
    assert len(images) == 3 and job.images_charged == 3
    # Text, a picture, text…: each picture in its place, the text around it.
    kinds = ["text" if "text" in part else "image" for part in job.output_parts]
    assert kinds[0] == "text" and kinds.count("image") == 3
    assert all(a != b for a, b in itertools.pairwise(kinds))
    assert [part["image"] for part in job.output_parts if "image" in part] == [0, 1, 2]
    assert job.output_text and job.output_text == "".join(
        part["text"] for part in job.output_parts if "text" in part
    )
    assert job.result_urls == []  # signed URLs are not kept once stored
    assert streams_sent(pipeline) == 1


def test_a_stream_that_errors_midway_keeps_and_charges_what_arrived(pipeline, member):
    job = submit(pipeline, member, "A story that breaks off #stream-error")
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL
    assert job.images.count() == 1 and job.images_charged == 1
    assert job.error_code == "StreamError"
    assert "the rest failed" in told(job) and "InternalError.Algo" in told(job)
    assert charged(job) == {QuotaCharge.Kind.RESERVE: 3, QuotaCharge.Kind.SETTLE: 1}
    assert [p for p in job.output_parts if "image" in p] == [{"image": 0}]
    assert streams_sent(pipeline) == 1  # never sent again


def test_a_stream_that_stalls_past_its_limit_keeps_what_arrived(pipeline_with, member):
    pipeline = pipeline_with(stream_stall_seconds=2.0)
    job = submit(pipeline, member, "A story that goes quiet #stream-stall")
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL, told(job)
    assert job.images.count() == 1 and job.images_charged == 1
    assert job.error_code in ("StreamStalled", "StreamCut")
    assert "kept, and the rest failed" in told(job)
    assert streams_sent(pipeline) == 1


class WorkerDied(BaseException):
    """Stands for the worker's process being killed: nothing below catches it."""


def test_a_worker_killed_mid_stream_stores_what_was_announced_and_never_resends(
    pipeline, member, monkeypatch
):
    job = submit(pipeline, member, "A story whose worker dies")
    real_store = steps.fetch_and_store

    def die_at_the_second_picture(job, index, url, client, give_up_at):  # type: ignore[no-untyped-def]
        if index == 1:
            raise WorkerDied  # its URL is committed, the picture not yet stored
        return real_store(job, index, url, client, give_up_at)

    monkeypatch.setattr(steps, "fetch_and_store", die_at_the_second_picture)
    with pytest.raises(WorkerDied):
        pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTING
    assert len(job.result_urls) == 2 and job.images.count() == 1
    monkeypatch.setattr(steps, "fetch_and_store", real_store)
    # The next step, once the dead one's lease has run out.
    Job.objects.filter(pk=job.pk).update(lease_until=None, lease_owner="")
    pipeline.run_steps()
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL, told(job)
    assert job.error_code == "WorkerStoppedMidStream"
    assert job.images.count() == 2 and job.images_charged == 2
    assert sorted(job.images.values_list("index", flat=True)) == [0, 1]  # each once
    assert "not sent again" in told(job)
    assert streams_sent(pipeline) == 1


def test_a_broken_off_piece_held_for_its_download_still_ends_saying_so(
    pipeline, member, monkeypatch
):
    from studio.dashscope.errors import DashScopeError

    real_download = pipeline.client.download

    def refused(url: str, **limits) -> bytes:  # type: ignore[no-untyped-def]
        raise DashScopeError(status=None, code="ResultTLSFailed", message="refused")

    monkeypatch.setattr(pipeline.client, "download", refused)
    job = submit(pipeline, member, "A story that breaks off #stream-error")
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status == Job.Status.DOWNLOAD_HELD)
    job.refresh_from_db()
    assert job.error_code == "ResultTLSFailed" and not job.images.exists()
    # The operator fixes it; the held download is tried again and stores the picture.
    monkeypatch.setattr(pipeline.client, "download", real_download)
    Job.objects.filter(pk=job.pk).update(download_retry_at=pipeline.now())
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL, told(job)
    assert job.error_code == "StreamError" and "the rest failed" in told(job)
    assert job.images.count() == 1 and job.images_charged == 1
    assert streams_sent(pipeline) == 1
