"""A piece of mixed text and images (wan2.6-image, streamed) run by the real worker
(`manage.py qcluster`) against the served emulator, when the stream goes wrong: an error
event midway, the worker killed mid-stream, a stream that goes silent past its limit.
What arrived is stored once and charged; nothing is sent twice; the job says what is known.
"""

from __future__ import annotations

import pytest

from studio.accounts.models import QuotaCounter
from studio.generation.models import GeneratedImage, Job
from studio.generation.services import create_job
from tests.support.clusters import make_member, wait_until_done
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def piece(member, prompt: str) -> Job:
    return create_job(
        membership=member,
        model="wan2.6-image",
        prompt=prompt,
        parameters={"enable_interleave": True, "max_images": 3, "size": "1024*1024"},
    )


def told(job: Job) -> str:
    return job.events.order_by("at", "pk").last().message


def stored_once(job: Job, media) -> list[int]:
    """The job's stored images by index, each once, and each file on disk once."""
    indexes = list(job.images.order_by("index").values_list("index", flat=True))
    assert len(indexes) == len(set(indexes))
    files = sorted((media / "results" / str(job.pk)).glob("*.png"))
    assert len(files) == len(indexes)
    return indexes


def charged(member) -> tuple[int, int]:
    person = QuotaCounter.objects.get(user=member.user, period="day")
    return person.used, person.reserved


def test_a_stream_that_errors_midway_stores_and_charges_what_arrived(fleet, settings):
    fleet.start_emulator(running_seconds=1, max_running=2)
    member = make_member()
    job = piece(member, "A fox's winter, told in pictures #stream-error")
    fleet.new_cluster().start()
    wait_until_done(90)
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL, told(job)
    assert stored_once(job, settings.MEDIA_ROOT) == [0]
    assert charged(member) == (1, 0)
    assert "the rest failed" in told(job)
    assert job.output_text  # the text that came before the error is kept
    assert fleet.stats()["counts"]["streams"] == 1


def test_a_worker_killed_mid_stream_stores_each_image_once_and_never_resends(
    fleet, settings, monkeypatch
):
    # Pictures a few seconds apart, so the worker is killed between two of them; a step's
    # hold on its job short, so the next worker takes it over soon.
    monkeypatch.setenv("DASHSCOPE_EMULATOR_STREAM_IMAGE_SECONDS", "4")
    fleet.start_emulator(running_seconds=1, max_running=2, STUDIO_STEP_LEASE_SECONDS="6")
    member = make_member()
    job = piece(member, "A lighthouse keeper's night, in pictures")
    first = fleet.new_cluster()
    first.start()
    wait_for(lambda: GeneratedImage.objects.filter(job=job).exists(), 60)
    first.kill()
    job.refresh_from_db()
    announced = len(job.result_urls)
    assert job.status == Job.Status.SUBMITTING and 1 <= announced < 3

    fleet.new_cluster().start()
    wait_until_done(120)
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL, told(job)
    assert job.error_code == "WorkerStoppedMidStream"
    assert stored_once(job, settings.MEDIA_ROOT) == list(range(announced))
    assert charged(member) == (announced, 0)
    assert "not sent again" in told(job) and "not known" in told(job)
    assert fleet.stats()["counts"]["streams"] == 1  # never sent a second time


def test_a_stream_that_goes_silent_past_its_limit_keeps_what_arrived(fleet, settings, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_EMULATOR_STREAM_STALL_SECONDS", "30")
    fleet.start_emulator(running_seconds=1, max_running=2, STUDIO_STREAM_STALL_SECONDS="3")
    member = make_member()
    job = piece(member, "A quiet harbour, in pictures #stream-stall")
    fleet.new_cluster().start()
    wait_until_done(90)
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL, told(job)
    assert job.error_code == "StreamStalled"
    assert "sent nothing for too long after 1 picture" in told(job)
    assert stored_once(job, settings.MEDIA_ROOT) == [0]
    assert charged(member) == (1, 0)
    assert fleet.stats()["counts"]["streams"] == 1
