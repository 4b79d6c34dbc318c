"""From a designer's request to stored images, through every way the provider can fail.

Each test checks what a person would notice: the job's state and message, the images
stored (once each), and the quota charged for exactly those images.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from studio.dashscope.emulator.render import BOX_COLOUR, box_on_canvas, placements
from studio.generation.models import GeneratedImage, Job, LeaseTerm, QuotaCharge
from studio.generation.worker.limits import Limits
from studio.generation.worker.steps import run_step
from tests.support.pipeline import (
    SYNC,
    Pipeline,
    another_member,
    answer_held,
    counters,
    in_background,
    inject,
    make_pipeline,
    open_image,
    pipeline_config,
    upload,
)

T2I = {
    "model": "wan2.6-t2i",
    "prompt": "A lighthouse at dusk",
    "parameters": {"size": "1280*1280", "n": 2},
}


def stored_files(media: Path) -> list[Path]:
    return (
        sorted(p for p in (media / "results").rglob("*") if p.is_file())
        if (media / "results").exists()
        else []
    )


def test_an_async_job_goes_from_queued_to_stored_images(pipeline, member, media):
    job = pipeline.submit(member, **T2I)
    assert job.status == Job.Status.QUEUED
    assert counters(member)["person-day"] == (0, 2)
    pipeline.tick()
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.provider_task_id
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    images = list(job.images.all())
    assert [i.index for i in images] == [0, 1]
    for image in images:
        assert (image.width, image.height) == (1280, 1280)
        assert open_image(image.image).size == (1280, 1280)
        thumb = open_image(image.thumbnail)
        assert thumb.format == "WEBP" and max(thumb.size) == 512
    assert len(stored_files(media)) == 2
    assert counters(member) == {
        "person-day": (2, 0),
        "person-month": (2, 0),
        "team-day": (2, 0),
        "team-month": (2, 0),
    }
    assert job.images_charged == 2 and job.result_urls == []
    assert job.usage["image_count"] == 2


def test_the_history_names_each_state_and_provider_call_without_secrets(pipeline, member):
    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    events = list(job.events.all())
    statuses = [e.status for e in events]
    for status in ("queued", "submitting", "pending", "running", "downloading", "succeeded"):
        assert status in statuses
    assert any(e.request_id for e in events)
    text = " ".join(f"{e.message} {e.code} {e.request_id}" for e in events)
    assert "Signature" not in text and "sk-" not in text and "http" not in text


def test_a_job_sent_into_a_free_slot_is_seen_running_without_being_late(pipeline, member):
    """Once a model's duration is known its jobs are looked at when they should end; one
    early look still shows the designer the job running, and the end is not looked for
    later than it would have been."""
    first = pipeline.submit(member, **(T2I | {"parameters": {"size": "1280*1280", "n": 1}}))
    pipeline.drive()
    pipeline.emulator.config.pending_seconds = 0.5
    job = pipeline.submit(member, **(T2I | {"parameters": {"size": "1280*1280", "n": 1}}))
    sent = pipeline.now()
    pipeline.drive()
    job.refresh_from_db()
    statuses = list(job.events.values_list("status", flat=True))
    assert statuses[: statuses.index("downloading")] == [
        "queued",
        "submitting",
        "pending",
        "running",
    ]
    assert job.polls == 2
    # The task ran 0.5 s pending and 3 s running: found done within a pass or two of that.
    assert (pipeline.now() - sent).total_seconds() <= 3.5 + 1.5
    assert first.pk != job.pk


def test_a_sync_only_model_is_generated_by_a_job_step(pipeline, member):
    job = pipeline.submit(member, **SYNC)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.provider_task_id == "" and job.provider_request_id
    assert job.images.get().width == 1024
    assert pipeline.emulator.stats()["counts"]["generated"] == 1


@pytest.mark.parametrize("retry_after", [20, 120])  # the second over the longest own pause
def test_a_refused_sync_generation_waits_in_the_queue_not_in_its_step(
    pipeline, member, retry_after
):
    """A sync call may take minutes: a step that retried a refusal itself could outlast the
    cluster's timeout, and be killed while the provider made images nobody would store."""
    inject(pipeline, "generate:429x1")
    pipeline.emulator.config.retry_after = retry_after
    job = pipeline.submit(member, **SYNC)
    step = pipeline.until_handed_over(job)
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.attempts == 0
    # Sent again when the provider said to, not before.
    waits = (job.next_poll_at - pipeline.now()).total_seconds()
    assert waits == pytest.approx(retry_after, abs=0.5)
    assert job.events.last().message == "The provider is busy; trying again shortly."
    assert len([e for e in pipeline.emulator.requests if e["method"] == "POST"]) == 1
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.images.count() == 1 and job.images_charged == 1
    assert len([e for e in pipeline.emulator.requests if e["method"] == "POST"]) == 2


def test_a_sync_job_left_sent_without_a_hold_is_handed_over(pipeline, member):
    """What a dispatcher that died between marking a sync job sent and holding it for its
    step left behind: a job no step holds and no hold will ever run out on."""
    job = pipeline.submit(member, **SYNC)
    job.move(
        Job.Status.SUBMITTING,
        expect=(Job.Status.QUEUED,),
        submit_started_at=pipeline.now() - timedelta(minutes=5),
    )
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert counters(member)["person-day"] == (1, 0)


def test_an_edit_sends_the_regions_where_they_were_drawn(pipeline, member):
    box = (100, 150, 400, 450)
    inputs = [
        upload(900, 600, color=(30, 30, 30)),
        upload(600, 800, color=(30, 30, 30), boxes=[box]),
        upload(800, 800, color=(30, 30, 30)),
    ]
    job = pipeline.submit(
        member,
        model="wan2.7-image-pro",
        prompt="Replace the cup in image 2 with the vase from image 1",
        parameters={"size": "2K", "n": 1},
        inputs=inputs,
    )
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    submitted = next(e for e in pipeline.emulator.requests if e["method"] == "POST")
    assert submitted["body"]["parameters"]["bbox_list"] == [[], [list(box)], []]
    result = open_image(job.images.get().image).convert("RGB")
    place = placements([(900, 600), (600, 800), (800, 800)], *result.size)[1]
    x1, y1, _, y2 = box_on_canvas(place, box)
    assert result.getpixel((x1 + 1, (y1 + y2) // 2)) == BOX_COLOUR


def test_partial_success_stores_and_charges_only_what_arrived(pipeline, member):
    job = pipeline.submit(
        member,
        model="wan2.5-t2i-preview",
        prompt="Four vases #partial",
        parameters={"size": "1280*1280", "n": 4},
    )
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL
    assert job.images.count() == 3 and job.images_charged == 3
    assert counters(member)["person-day"] == (3, 0)
    assert "3 of 4" in job.events.last().message


@pytest.mark.parametrize("prompt", ["A cat #unsafe", "A cat #unsafe-output"])
def test_refused_content_fails_with_a_clear_message_and_no_charge(pipeline, member, prompt):
    job = pipeline.submit(member, **(T2I | {"prompt": prompt}))
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_code == "DataInspectionFailed"
    assert "refused this content" in job.error_message
    assert job.images.count() == 0 and job.images_charged == 0
    assert counters(member)["person-day"] == (0, 0)


def test_throttled_submits_succeed_after_backoff_without_extra_charge(pipeline, member):
    inject(pipeline, "submit:429x3")
    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert len(pipeline.emulator.tasks) == 1
    assert counters(member)["person-day"] == (2, 0)


@pytest.mark.parametrize("spec", ["submit:500x*", "submit:429x*"])
def test_a_job_the_provider_always_turns_away_fails_after_the_limit(member, pipeline_with, spec):
    """A busy or broken provider does not keep a job, and its reservation, queued forever;
    it is sent again less and less often meanwhile."""
    world = pipeline_with(busy_give_up_seconds=600)
    inject(world, spec)
    job = world.submit(member, **T2I)
    world.drive(seconds=900, tick=2)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_code.split(".")[0] in ("InternalError", "Throttling")
    assert job.error_message.startswith(
        "The provider turned this job away as busy for 10 minutes (last answer"
    )
    assert "Nothing was charged" in job.error_message
    assert 600 <= (world.now() - job.created_at).total_seconds() <= 700
    sends = job.events.filter(message="The provider is busy; trying again shortly.")
    assert 10 <= sends.count() <= 30  # pauses of up to a minute, not every two seconds
    assert counters(member)["person-day"] == (0, 0)
    assert job.images_charged == 0 and not world.emulator.tasks


def test_time_a_job_waited_in_the_studios_queue_is_not_counted_as_turned_away(
    member, pipeline_with
):
    """Turned away once, then kept in the queue for longer than the limit while a
    colleague's job had the only slot: one more refusal does not fail it."""
    world = pipeline_with(running_per_model=1, busy_give_up_seconds=600, timeout_seconds=3600)
    world.emulator.config.running_seconds = 700
    colleague = another_member(member.team, "eli")
    inject(world, "submit:429x4")  # the client's four tries: one refusal
    job = world.submit(member, **(T2I | {"parameters": {"size": "1280*1280", "n": 1}}))
    world.tick()
    world.submit(colleague, **(T2I | {"parameters": {"size": "1280*1280", "n": 1}}))
    world.drive(lambda: Job.objects.filter(status=Job.Status.PENDING).exists())
    inject(world, "submit:429x4")  # and once more, 700 s later
    world.drive(lambda: not Job.objects.get(pk=job.pk).is_open, seconds=2000, tick=2)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message


def test_a_job_cancelled_while_the_provider_turns_it_away_ends_cancelled(member, pipeline_with):
    world = pipeline_with(busy_give_up_seconds=60)
    inject(world, "submit:429x*")
    job = world.submit(member, **T2I)
    real = world.dispatcher._refused

    def cancelled_while_sending(sent, *args, **kwargs):
        if world.clock.now() - sent.created_at.timestamp() > 70:
            Job.objects.filter(pk=sent.pk).update(cancel_requested=True)
        return real(sent, *args, **kwargs)

    world.dispatcher._refused = cancelled_while_sending
    world.drive(seconds=600, tick=2)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELED and job.images_charged == 0


def test_a_sync_job_the_provider_always_turns_away_fails_after_the_limit(member, pipeline_with):
    world = pipeline_with(busy_give_up_seconds=300)
    inject(world, "generate:500x*")
    job = world.submit(member, **SYNC)
    world.drive(seconds=600, tick=2)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "turned this job away as busy for 5 minutes" in job.error_message
    assert counters(member)["person-day"] == (0, 0)


def test_an_exhausted_provider_quota_fails_at_once(pipeline, member):
    inject(pipeline, "submit:429-quota")
    job = pipeline.submit(member, **T2I)
    pipeline.tick()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_code == "Throttling.AllocationQuota"
    assert "used up its quota" in job.error_message
    assert counters(member)["person-day"] == (0, 0)


def test_a_task_still_running_at_the_timeout_is_watched_and_stored_when_it_succeeds(
    pipeline, member
):
    job = pipeline.submit(member, **(T2I | {"prompt": "A slow render #slow"}))
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status == Job.Status.TIMED_OUT)
    job.refresh_from_db()
    waited = (job.timed_out_at - job.submit_started_at).total_seconds()
    assert 120 <= waited <= 122
    assert "keeps watching" in job.events.filter(status="timed_out").first().message
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.images.count() == 2 and job.images_charged == 2


def test_a_task_never_started_by_the_timeout_is_cancelled_and_released(member, media):
    pipeline = Pipeline(
        pipeline_config(max_running_per_model=1, slow_seconds=600),
        Limits(running_per_model=2, timeout_seconds=120),
    )
    try:
        blocker = pipeline.submit(member, **(T2I | {"prompt": "Hog the provider #slow"}))
        waiting = pipeline.submit(member, **T2I)
        pipeline.drive(lambda: Job.objects.get(pk=waiting.pk).status == Job.Status.FAILED)
        waiting.refresh_from_db()
        assert waiting.error_code == "TimedOut"
        assert waiting.images_charged == 0
        assert pipeline.emulator.tasks[waiting.provider_task_id].canceled_at is not None
        blocker.refresh_from_db()
        assert blocker.status == Job.Status.TIMED_OUT
    finally:
        pipeline.close()


def test_a_task_id_that_reads_unknown_fails_as_expired(pipeline, member):
    job = pipeline.submit(member, **T2I)
    pipeline.tick()
    pipeline.emulator.config.task_ttl_seconds = 0
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error_code == "Expired"
    assert counters(member)["person-day"] == (0, 0)


@pytest.mark.parametrize("damage", ["forbidden", "truncated", "not-an-image"])
def test_a_bad_download_is_retried_then_held_or_given_up_without_storing_anything(
    pipeline, member, media, monkeypatch, damage
):
    from studio.dashscope.errors import DashScopeError

    calls = []
    real_download = pipeline.client.download

    def broken(url: str, **limits) -> bytes:
        calls.append(url)
        if damage == "forbidden":
            raise DashScopeError(
                status=403, code="AccessDenied", message="Request has expired.", retryable=False
            )
        data = real_download(url, **limits)
        return data[: len(data) // 2] if damage == "truncated" else b"<html>hello</html>"

    monkeypatch.setattr(pipeline.client, "download", broken)
    job = pipeline.submit(member, **T2I)
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status not in Job.ACTIVE)
    job.refresh_from_db()
    assert len(calls) == 2 * 3  # each of the two images tried three times
    assert stored_files(media) == []
    assert GeneratedImage.objects.count() == 0
    if damage == "forbidden":
        # The result host says the URLs expired: the images are gone, and nothing is charged.
        assert job.status == Job.Status.FAILED and job.error_code == "ResultExpired"
        assert counters(member)["person-day"] == (0, 0)
        return
    # A body the studio refuses is its own refusal: the job is held, its quota reserved,
    # until the URLs expire; then it fails, charged nothing.
    assert job.status == Job.Status.DOWNLOAD_HELD and job.error_code == "InvalidResult"
    assert counters(member)["person-day"] == (0, 2)
    pipeline.clock.advance(24 * 3600 + 1)
    pipeline.drive(lambda: not Job.objects.get(pk=job.pk).is_open)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error_code == "ResultExpired"
    assert GeneratedImage.objects.count() == 0 and job.result_urls == []
    assert counters(member)["person-day"] == (0, 0)


def test_a_result_url_outside_the_provider_is_never_fetched_and_holds_the_job(
    pipeline, member, media
):
    job = pipeline.submit(member, **T2I)
    step = pipeline.until_handed_over(job)
    Job.objects.filter(pk=job.pk).update(
        result_urls=[
            "http://169.254.169.254/latest/meta-data/x.png",
            "https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com.evil.example/a.png",
        ]
    )
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    # The studio's own refusal: held (test_downloads_held.py), never failed.
    assert job.status == Job.Status.DOWNLOAD_HELD and stored_files(media) == []
    assert job.error_code == "ResultURLRefused"
    tries = job.events.filter(code="ResultURLRefused", message__startswith="download of")
    assert tries.count() == 2


def test_a_duplicate_step_delivery_does_nothing(pipeline, member, media):
    job = pipeline.submit(member, **T2I)
    step = pipeline.until_handed_over(job)
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.images.count() == 2 and len(stored_files(media)) == 2
    assert QuotaCharge.objects.filter(job=job).count() == 2  # one reserve, one settle


@pytest.mark.django_db(transaction=True)
def test_a_step_that_outlasts_its_lease_keeps_its_job(member, media, monkeypatch):
    """A sync generation may take minutes (the provider answers when the images exist). The
    worker waiting for it is alive: its job is not handed to another worker meanwhile,
    which would fail it as interrupted and lose the images the provider made and bills."""
    world = make_pipeline(step_lease_seconds=0.6)
    try:
        job = world.submit(member, **SYNC)
        step = world.until_handed_over(job)
        answer = answer_held(monkeypatch, world.client, "generate")
        waiting = in_background(
            lambda: run_step(step, world.client, limits=world.limits, now=world.now)
        )
        # Over three leases' worth of waiting for the provider: a fixed wait, as the time
        # passing is what would lose an unrenewed lease; there is no event to wait for.
        time.sleep(2.0)
        world.dispatcher.step()  # a dispatcher pass hands out steps whose worker is gone
        world.run_steps()
        answer.set()
        waiting.join(timeout=10)
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error_message
        assert job.images.count() == 1 and len(stored_files(media)) == 1
        assert job.images_charged == 1 and job.attempts == 1
        assert LeaseTerm.objects.filter(lease=LeaseTerm.of_job(job.pk)).count() == 1
    finally:
        world.close()


def test_a_lease_is_renewed_on_after_a_renewal_fails():
    """A lost connection or a locked database fails one renewal; the lease still has two
    thirds of its time, and the next renewal keeps it."""
    from django.db import OperationalError

    from studio.generation.worker.leases import lease_kept

    renewals = []

    def renew() -> bool:
        renewals.append(time.monotonic())
        if len(renewals) == 1:
            raise OperationalError("database is locked")
        return True

    with lease_kept(renew, seconds=0.3):
        time.sleep(0.55)  # five renewals' worth
    assert len(renewals) >= 3


def test_a_job_that_crashes_its_worker_every_time_is_held_after_k_attempts(
    pipeline, member, monkeypatch
):
    """Its images are made: after K crashes it waits for an operator (held), and ends,
    charged nothing, once its URLs have expired."""
    import studio.generation.worker.downloads as worker

    healthy = pipeline.submit(member, **(T2I | {"prompt": "A healthy job"}))
    poison = pipeline.submit(member, **(T2I | {"prompt": "A poison pill"}))
    real_store = worker.store_result
    crashes = []

    def crash(job, index, data):
        if job.pk == poison.pk:
            crashes.append(index)
            raise SystemExit("the worker died")  # what an OOM kill looks like from outside
        return real_store(job, index, data)

    monkeypatch.setattr(worker, "store_result", crash)

    def run_until(done) -> None:
        end = pipeline.clock.now() + 300
        while not done():
            assert pipeline.clock.now() < end
            pipeline.dispatcher.step()
            while pipeline.steps:
                step = pipeline.steps.pop(0)
                try:
                    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
                except SystemExit:
                    # The dead worker's lease runs out before anyone else may take the job.
                    Job.objects.filter(pk=step).update(lease_until=pipeline.now() - timedelta(1))
            pipeline.clock.advance(0.5)

    run_until(
        lambda: (
            not Job.objects.filter(status__in=Job.WATCHED).exists()
            and Job.objects.get(pk=poison.pk).status == Job.Status.DOWNLOAD_HELD
        )
    )
    poison.refresh_from_db()
    healthy.refresh_from_db()
    assert len(crashes) == pipeline.limits.step_attempts
    assert poison.error_code == "WorkerCrashed" and poison.images_charged is None
    assert healthy.status == Job.Status.SUCCEEDED
    assert counters(member)["person-day"] == (2, 2)  # the held job's images stay reserved

    pipeline.clock.advance(25 * 3600)  # its URLs expire
    run_until(lambda: not Job.objects.filter(status__in=Job.OPEN).exists())
    poison.refresh_from_db()
    assert poison.status == Job.Status.FAILED and poison.images_charged == 0
    assert counters(member)["person-day"] == (2, 0)  # only the healthy job's two images


def test_a_dispatcher_dying_after_a_refusal_never_gives_its_job_a_colleagues_task(
    pipeline, member, monkeypatch
):
    """Dana's submit is refused while Eli's is on its way; the dispatcher dies at its
    first commit after the refusal arrived. The next dispatcher finds Eli's task by
    listing: Eli's job must get it, never the refused one (which would be charged for a
    colleague's image while his job failed)."""
    import contextlib
    import threading

    from studio.generation.worker import submits as worker
    from studio.generation.worker.dispatcher import Dispatcher
    from tests.support.pipeline import another_member

    eli = another_member(member.team, "eli")
    one = {"model": "wan2.6-t2i", "parameters": {"size": "1280*1280", "n": 1}}
    refused = pipeline.submit(member, prompt="A lighthouse", **one)
    accepted = pipeline.submit(eli, prompt="A red bicycle", **one)
    inject(pipeline, "submit:429-quotax1")  # the first submit: refused for good
    real_submit, real_atomic = pipeline.client.submit, worker.transaction.atomic
    refusal_arrived, eli_may_go = threading.Event(), threading.Event()
    depth = [0]

    def submit(request):
        if request.prompt == "A red bicycle":
            eli_may_go.wait(10)  # his answer comes after the dispatcher is dead
        return real_submit(request)

    real_refused = pipeline.dispatcher._refused

    def refused_answer(job, *args, **kwargs):
        if job.pk == refused.pk:
            refusal_arrived.set()  # from here, the dispatcher's next commit is its last
        return real_refused(job, *args, **kwargs)

    @contextlib.contextmanager
    def atomic_then_die(*args, **kwargs):
        depth[0] += 1
        try:
            with real_atomic(*args, **kwargs):
                yield
        finally:
            depth[0] -= 1
        if depth[0] == 0 and refusal_arrived.is_set():
            raise SystemExit("the dispatcher died just after a commit")

    monkeypatch.setattr(pipeline.client, "submit", submit)
    monkeypatch.setattr(pipeline.dispatcher, "_refused", refused_answer)
    monkeypatch.setattr(worker.transaction, "atomic", atomic_then_die)
    with pytest.raises(SystemExit):
        pipeline.dispatcher.step()
    monkeypatch.undo()
    eli_may_go.set()
    pipeline.dispatcher.close()  # Eli's submit completes: the provider made his task
    pipeline.clock.advance(60)  # the dead dispatcher's lease runs out
    pipeline.dispatcher = Dispatcher(
        pipeline.client, limits=pipeline.limits, now=pipeline.now, enqueue_step=pipeline.enqueue
    )
    pipeline.drive()
    refused.refresh_from_db()
    accepted.refresh_from_db()
    assert refused.status == Job.Status.FAILED and refused.images_charged == 0
    assert accepted.status == Job.Status.SUCCEEDED, accepted.error_message
    assert accepted.images.count() == 1 and accepted.images_charged == 1


def test_an_unanswered_submit_is_found_by_listing_and_never_sent_twice(pipeline, member):
    inject(pipeline, "submit:drop-after")
    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert len(pipeline.emulator.tasks) == 1
    assert job.provider_task_id in pipeline.emulator.tasks


def test_a_submit_lost_before_the_provider_saw_it_fails_without_charge(pipeline, member):
    inject(pipeline, "submit:drop")
    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error_code == "SubmitUncertain"
    assert not pipeline.emulator.tasks
    assert counters(member)["person-day"] == (0, 0)


def test_staff_see_a_jobs_history_in_the_admin_but_never_its_result_urls(pipeline, member, client):
    from tests.support.factories import create_user

    job = pipeline.submit(member, **T2I)
    step = pipeline.until_handed_over(job)
    job.refresh_from_db()
    secret = job.result_urls[0].split("Signature=")[1]
    staff = create_user(username="sam", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    page = client.get(f"/admin/generation/job/{job.pk}/change/").content.decode()
    assert "Made by the provider; downloading." in page
    assert job.provider_request_id in page
    assert secret not in page and "Signature=" not in page
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    # Which worker stored it, and that its step ended rather than died.
    page = client.get(f"/admin/generation/job/{job.pk}/change/").content.decode()
    term = LeaseTerm.objects.get(lease=LeaseTerm.of_job(job.pk))
    assert term.ended_at is not None
    assert f"{term.owner}: done at" in page


def test_a_task_the_provider_cannot_report_on_times_out_and_is_still_watched(pipeline, member):
    job = pipeline.submit(member, **T2I)
    pipeline.tick()
    inject(pipeline, "fetch:500x*")
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status == Job.Status.TIMED_OUT)
    inject(pipeline)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images.count() == 2


@pytest.mark.parametrize("reached", [3, 2])
def test_submits_cut_off_by_a_dead_dispatcher_are_matched_to_their_own_tasks(
    pipeline, member, reached
):
    jobs = [pipeline.submit(member, **(T2I | {"prompt": f"Picture number {i}"})) for i in range(3)]
    # What a dispatcher killed mid-batch leaves: all three marked as being sent, in order,
    # the first `reached` of them made by the provider, and no answer committed.
    for i, job in enumerate(jobs):
        job.move(
            Job.Status.SUBMITTING,
            expect=(Job.Status.QUEUED,),
            submit_started_at=pipeline.now() + timedelta(microseconds=i),
        )
    for job in jobs[:reached]:
        pipeline.client.submit(job.to_generation_request())
    assert len(pipeline.emulator.tasks) == reached

    pipeline.clock.advance(pipeline.limits.dispatcher_lease_seconds + 1)
    pipeline.drive()
    for job in jobs:
        job.refresh_from_db()
        if job.provider_task_id:
            task = pipeline.emulator.tasks[job.provider_task_id]
            assert task.request.prompt == job.prompt  # its own task, not a neighbour's
            assert job.status == Job.Status.SUCCEEDED
        else:
            assert job.status == Job.Status.FAILED and job.error_code == "SubmitUncertain"
            assert job.images_charged == 0
    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == reached
    assert len(pipeline.emulator.tasks) == reached  # nothing was sent twice


def test_a_download_that_keeps_failing_for_a_while_is_retried_not_given_up(
    pipeline, member, monkeypatch
):
    from studio.dashscope.errors import DashScopeError

    real_download = pipeline.client.download
    failures = []

    def flaky(url: str, **limits) -> bytes:
        if len(failures) < 6:  # more than the step's crash budget, fewer than the retries
            failures.append(url)
            raise DashScopeError(status=503, code="ServiceUnavailable", message="busy")
        return real_download(url, **limits)

    monkeypatch.setattr(pipeline.client, "download", flaky)
    job = pipeline.submit(member, **T2I)
    end = pipeline.clock.now() + 900
    while Job.objects.get(pk=job.pk).is_open:
        assert pipeline.clock.now() < end
        pipeline.tick(1.0)
        # The pause is a lease in the database's clock: let it run out, as time would.
        Job.objects.filter(pk=job.pk, status=Job.Status.DOWNLOADING).exclude(
            lease_owner="x"
        ).update(lease_until=pipeline.now() - timedelta(days=1))
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images.count() == 2
    assert job.download_failures == 6


def test_the_team_sees_a_jobs_history_on_its_page_and_outsiders_get_404(pipeline, member, client):
    from studio.accounts.models import Membership
    from tests.support.factories import create_membership, create_team, create_user

    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    colleague = create_membership(
        team=member.team, user=create_user(username="vic"), role=Membership.Role.VIEWER
    )
    client.force_login(colleague.user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Succeeded" in page and "Made by the provider; downloading." in page
    assert job.provider_request_id in page and "2 images stored." in page
    assert "Signature" not in page and "http://dashscope.emulator" not in page
    stranger = create_membership(
        team=create_team(name="Elsewhere", slug="else"), user=create_user(username="eve")
    )
    client.force_login(stranger.user)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    client.logout()
    assert client.get(f"/jobs/{job.pk}/").status_code == 302
