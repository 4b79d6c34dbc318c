"""Cancelling a job wherever it is: the person's request stands until the job ends, and a
task the provider runs is never dropped by it."""

from __future__ import annotations

import pytest

from studio.dashscope.client import RetryPolicy
from studio.generation import services
from studio.generation.models import Job
from studio.generation.services import cancel_job
from tests.support.pipeline import SYNC, Pipeline, counters, inject

T2I = {"model": "wan2.6-t2i", "prompt": "A lighthouse", "parameters": {"size": "1280*1280", "n": 2}}


def tries_once(pipeline: Pipeline) -> None:
    """The dispatcher's client as the worker configures it: every call made once."""
    pipeline.dispatcher.client = pipeline.make_client(retry=RetryPolicy(attempts=1))


def waiting_at_the_provider(pipeline: Pipeline, member, *, for_seconds: float = 5.0) -> Job:
    pipeline.emulator.config.pending_seconds = for_seconds
    job = pipeline.submit(member, **T2I)
    pipeline.tick()
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING
    return job


def cancelled_while_waiting(pipeline: Pipeline, member, fault: str, **waiting) -> Job:
    """A task waiting at the provider, cancelled by its author, whose cancels meet `fault`;
    every call is made once, as the worker's dispatcher makes them."""
    tries_once(pipeline)
    job = waiting_at_the_provider(pipeline, member, **waiting)
    cancel_job(job, membership=member)
    inject(pipeline, fault)
    return job


def cancels_asked(pipeline: Pipeline) -> int:
    return len([e for e in pipeline.emulator.requests if e["path"].endswith("/cancel")])


def assert_cancelled_for_nothing(job: Job, member) -> None:
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELED, (job.status, job.error_message)
    assert job.images_charged == 0
    assert counters(member)["person-day"] == (0, 0)


def test_a_job_sent_while_it_is_cancelled_is_cancelled_at_the_provider(
    pipeline, member, monkeypatch
):
    """The cancel read the job as queued; the dispatcher sent it before the cancel wrote.
    The job is not ended then and there, which would leave a task nobody watches."""
    job = pipeline.submit(member, **T2I)
    finish = services.finish

    def sent_meanwhile(*args, **kwargs):
        pipeline.dispatcher.step()
        return finish(*args, **kwargs)

    monkeypatch.setattr(services, "finish", sent_meanwhile)
    answer = cancel_job(job, membership=member)
    monkeypatch.setattr(services, "finish", finish)

    assert answer.startswith("Cancelling")
    pipeline.drive()
    job.refresh_from_db()
    # Still waiting at the provider, the task is cancelled there, not left to run unwatched.
    assert pipeline.emulator.tasks[job.provider_task_id].canceled_at is not None
    assert_cancelled_for_nothing(job, member)


def test_a_cancel_the_provider_throttled_is_asked_again(pipeline, member):
    job = cancelled_while_waiting(pipeline, member, "cancel:429x1")
    pipeline.drive()
    assert_cancelled_for_nothing(job, member)
    assert cancels_asked(pipeline) == 2


def test_a_cancel_the_provider_keeps_failing_is_asked_less_and_less_often(pipeline, member):
    job = cancelled_while_waiting(pipeline, member, "cancel:500x*", for_seconds=90.0)
    pipeline.drive(lambda: pipeline.clock.now() > job.created_at.timestamp() + 60, tick=0.1)
    assert 4 <= cancels_asked(pipeline) <= 7  # after 2, 4, 8, 16, 30 s: not every pass
    job.refresh_from_db()
    lines = [e.message for e in job.events.all() if e.message == "Provider call: cancel"]
    assert len(lines) == 1  # the first failure; the same failure again is no news


def test_a_cancel_whose_answer_was_lost_still_reads_as_cancelled(pipeline, member):
    job = cancelled_while_waiting(pipeline, member, "cancel:drop-afterx1")
    pipeline.drive()
    assert_cancelled_for_nothing(job, member)
    assert "time limit" not in job.events.last().message


def test_a_cancel_that_comes_too_late_says_the_images_will_be_stored(pipeline, member):
    job = waiting_at_the_provider(pipeline, member)
    pipeline.clock.advance(5.5)  # the provider starts it
    cancel_job(job, membership=member)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images_charged == 2
    messages = [event.message for event in job.events.all()]
    assert any("started before it could be cancelled" in m for m in messages), messages


def test_a_sync_job_cancelled_while_waiting_for_a_worker_is_never_sent(pipeline, member):
    job = pipeline.submit(member, **SYNC)
    step = pipeline.until_handed_over(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTING
    cancel_job(job, membership=member)
    pipeline.steps.append(step)
    pipeline.drive()
    assert_cancelled_for_nothing(job, member)
    assert not [e for e in pipeline.emulator.requests if e["method"] == "POST"]


def test_a_job_cancelled_while_sent_and_put_back_in_the_queue_is_not_sent_again(
    pipeline, member, monkeypatch
):
    tries_once(pipeline)
    inject(pipeline, "submit:429x1")
    job = pipeline.submit(member, **T2I)
    answered = pipeline.dispatcher._refused

    def cancelled_while_sending(sent: Job, *args, **kwargs):
        cancel_job(sent, membership=member)  # before the provider's answer is read
        return answered(sent, *args, **kwargs)

    monkeypatch.setattr(pipeline.dispatcher, "_refused", cancelled_while_sending)
    pipeline.drive()
    assert_cancelled_for_nothing(job, member)
    assert not pipeline.emulator.tasks


def test_a_lost_submit_is_looked_for_while_the_provider_cannot_list_its_tasks(pipeline, member):
    """Not found is not the same as not asked: the job waits, and its task is found and
    stored once the provider answers again."""
    tries_once(pipeline)
    inject(pipeline, "submit:drop-after", "list:500x*")
    job = pipeline.submit(member, **T2I)
    pipeline.drive(
        lambda: pipeline.clock.now() > job.created_at.timestamp() + 600, seconds=700, tick=0.5
    )
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTING and not job.provider_task_id
    messages = [e.message for e in job.events.all()]
    assert messages.count("No answer to its submit was recorded; looking for its task.") == 1
    assert messages.count("Provider call: list, to find the task") == 1
    lists = [e for e in pipeline.emulator.requests if "/tasks" in e["path"]]
    assert len(lists) < 20  # ten minutes of looking, less and less often
    inject(pipeline)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images_charged == 2
    assert len(pipeline.emulator.tasks) == 1


@pytest.mark.parametrize("failures", ["list:500x1", "list:429x1"])
def test_a_failed_look_for_a_lost_submit_is_tried_again(pipeline, member, failures):
    """The submit's answer was lost after the provider made the task, and the first look
    for it failed: the task is still found, and its images stored."""
    tries_once(pipeline)
    inject(pipeline, "submit:drop-after", failures)
    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert len(pipeline.emulator.tasks) == 1 and job.images_charged == 2


@pytest.mark.parametrize("seen_before", [False, True])
def test_a_lost_submit_is_found_whatever_zone_the_provider_writes_its_times_in(
    pipeline, member, seen_before
):
    """The documents never say in which zone the provider writes its times: here it is
    Beijing's, eight hours east of UTC, for the task list's window too."""
    pipeline.emulator.config.utc_offset_minutes = 480
    tries_once(pipeline)
    if seen_before:  # the dispatcher has read some of its times already
        pipeline.submit(member, **T2I)
        pipeline.drive()
    lists_before = pipeline.emulator.counts["lists"]
    inject(pipeline, "submit:drop-after")
    job = pipeline.submit(member, **T2I)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.images_charged == 2
    # Its times are kept in UTC, as the studio's own are.
    for kept in (job.provider_submitted_at, job.provider_finished_at):
        assert abs((kept - job.submit_started_at).total_seconds()) < 60, kept
    # Knowing the zone, one look; not knowing it, UTC first and then Beijing's.
    assert pipeline.emulator.counts["lists"] - lists_before == (1 if seen_before else 2)


def test_a_sync_job_cancelled_while_it_is_made_says_why_it_is_charged(
    pipeline, member, monkeypatch
):
    job = pipeline.submit(member, **SYNC)
    step = pipeline.until_handed_over(job)
    generate = pipeline.client.generate

    def cancelled_while_made(*args, **kwargs):
        result = generate(*args, **kwargs)
        cancel_job(job, membership=member)
        return result

    monkeypatch.setattr(pipeline.client, "generate", cancelled_while_made)
    pipeline.steps.append(step)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images_charged == 1
    messages = [event.message for event in job.events.all()]
    assert any("before the cancel could stop it" in m for m in messages), messages
