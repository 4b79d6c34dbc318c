"""The provider's limits hold, and the studio's own queue is fair between people."""

from __future__ import annotations

import pytest

from studio.accounts.models import Team
from studio.generation.models import Job
from studio.generation.worker.forecast import poll_interval
from studio.generation.worker.limits import Limits
from tests.support.pipeline import Pipeline, another_member, make_pipeline, pipeline_config

T2I = {"model": "wan2.6-t2i", "prompt": "A teapot", "parameters": {"size": "1280*1280", "n": 1}}


@pytest.mark.parametrize("queue_ahead", [0, 1])
def test_a_colleague_waits_at_most_one_turn_behind_a_batch(db, media, queue_ahead):
    team = Team.objects.create(name="Studio A", slug="a", member_jobs_in_flight=50)
    alice, bob = another_member(team, "alice"), another_member(team, "bob")
    pipeline = make_pipeline(running_per_model=1, queue_ahead=queue_ahead)
    try:
        batch = [pipeline.submit(alice, **T2I) for _ in range(8)]
        pipeline.clock.advance(0.1)
        single = pipeline.submit(bob, **T2I)
        pipeline.drive()
        tasks = pipeline.emulator.tasks
        bob_started = tasks[Job.objects.get(pk=single.pk).provider_task_id].start_at
        ahead = sum(
            1
            for job in Job.objects.filter(pk__in=[j.pk for j in batch])
            if tasks[job.provider_task_id].start_at < bob_started
        )
        # The one already running when Bob asked, plus what was sent ahead to wait.
        assert ahead <= 1 + queue_ahead
    finally:
        pipeline.close()


def test_never_more_than_the_running_limit_at_the_provider_nor_a_429(db, media):
    team = Team.objects.create(name="Studio B", slug="b", member_jobs_in_flight=50)
    people = [another_member(team, f"p{i}") for i in range(3)]
    pipeline = make_pipeline(running_per_model=3, submits_per_second=2, queries_per_second=10)
    try:
        for i in range(18):
            pipeline.submit(people[i % 3], **T2I)
        peak = 0
        give_up = pipeline.clock.now() + 600
        while Job.objects.filter(status__in=Job.OPEN).exists():
            pipeline.tick(0.25)
            at_provider = sum(
                pipeline.emulator.stats()["tasks"].get(s, 0) for s in ("PENDING", "RUNNING")
            )
            peak = max(peak, at_provider)
            assert pipeline.clock.now() < give_up
        counts = pipeline.emulator.stats()["counts"]
        assert peak == 3
        assert counts.get("throttled.submits", 0) == 0
        assert counts.get("throttled.queries", 0) == 0
        assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 18
    finally:
        pipeline.close()


def test_polls_come_often_at_first_and_widen_later():
    early = [poll_interval(age) for age in (0, 5, 14)]
    later = [poll_interval(age) for age in (20, 45, 90, 600)]
    assert max(early) <= 1.0
    assert later == sorted(later) and later[-1] <= 15


def test_admission_reads_a_few_jobs_per_person_however_long_the_backlog(db, media, settings):
    from django.db.models.signals import post_init

    settings.STUDIO_SUBMITS_PER_MINUTE = 1000  # a backlog of 300 sent at one instant

    team = Team.objects.create(name="Studio C", slug="c", member_jobs_in_flight=1000)
    alice, bob = another_member(team, "alice"), another_member(team, "bob")
    pipeline = make_pipeline(running_per_model=2, submits_per_second=1000)
    try:
        for _ in range(300):
            pipeline.submit(alice, **T2I)
        bob_job = pipeline.submit(bob, **T2I)
        loaded = []

        def count(sender, instance, **kwargs):
            loaded.append(instance)

        post_init.connect(count, sender=Job)
        try:
            pipeline.dispatcher._admit()
        finally:
            post_init.disconnect(count, sender=Job)
        # Room for 2 at the provider: at most 2 of each person's oldest are read, not 301.
        assert len(loaded) <= 2 * 2
        bob_job.refresh_from_db()
        assert bob_job.status != Job.Status.QUEUED  # among the first sent, behind 300
    finally:
        pipeline.close()


def test_a_request_is_counted_from_its_answer_once_it_has_one():
    """A request that waited for a thread reached the provider late; the next second's
    budget starts from its answer, never from when it was counted."""
    from studio.generation.worker.limits import RateWindow

    now = [100.0]
    window = RateWindow(2, clock=lambda: now[0])
    first = window.take()
    now[0] = 100.2
    assert first is not None and window.take() is not None
    assert window.take() is None  # two in the window already
    window.answered(first, 100.9)  # answered late: it may have arrived as late
    now[0] = 101.3  # 1.3 s after it was counted, but only 0.4 s after its answer
    assert window.take() is None
    now[0] = 102.2
    assert window.take() is not None


def test_the_providers_clock_is_read_from_the_submit_round_trip_not_from_late_notices():
    """An end noticed late says little about the provider's clock, and polls planned with
    it would come as late again; the task's creation time, bounded by the submit's answer,
    pins the clock down within one round trip."""
    from datetime import UTC, datetime, timedelta

    from studio.dashscope.types import TaskResult, TaskStatus
    from studio.generation.worker.forecast import Forecast

    skew = timedelta(seconds=7)  # the provider's clock runs 7 s behind ours

    def provider(ours: datetime) -> datetime:
        """Our time as the provider's clock reads it (it writes naive times)."""
        return (ours - skew).replace(tzinfo=None)

    def as_read(naive: datetime) -> datetime:
        return naive.replace(tzinfo=UTC)  # as the worker reads the provider's times

    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    forecast = Forecast()
    # A task ran from t0 to t0 + 1 s, and its end was noticed 0.4 s late.
    forecast.learn(
        "m",
        TaskResult(
            status=TaskStatus.SUCCEEDED,
            request_id="r",
            scheduled_time=provider(t0),
            end_time=provider(t0 + timedelta(seconds=1)),
        ),
        observed_at=t0 + timedelta(seconds=1.4),
    )
    # A second task starts at t0 + 5 s; it ends a second later by our clock.
    started = as_read(provider(t0 + timedelta(seconds=5)))
    true_end = t0 + timedelta(seconds=6)
    late = forecast.expected_end("m", forecast.ours(started))
    assert late - true_end > timedelta(seconds=0.35)
    # Another task's submit was answered 10 ms after the provider created it.
    created = t0 + timedelta(seconds=2)
    forecast.submitted("job", created + timedelta(seconds=0.01))
    forecast.created("job", as_read(provider(created)))
    sharp = forecast.expected_end("m", forecast.ours(started))
    assert timedelta(0) < sharp - true_end < timedelta(seconds=0.06)


def test_a_task_sent_into_a_slot_that_freed_earlier_is_polled_from_when_it_was_sent(db, media):
    """When the studio falls behind, a task goes into a slot the provider freed a while
    before; it starts when it arrives, and is first polled a task's length after that."""
    from datetime import timedelta

    from studio.generation.worker.forecast import Forecast

    pipeline = make_pipeline(running_per_model=1)
    try:
        member = another_member(Team.objects.create(name="Slots", slug="slots"), "sam")
        job = pipeline.submit(member, **T2I)
        pipeline.dispatcher.step()
        job.refresh_from_db()
        assert job.status == Job.Status.PENDING
        forecast: Forecast = pipeline.dispatcher.forecast
        forecast.durations["wan2.6-t2i"] = 3.0
        sent = job.submit_started_at
        freed_long_ago = sent - timedelta(seconds=2)
        Job.objects.filter(pk=job.pk).update(next_poll_at=sent + timedelta(seconds=60))
        pipeline.dispatcher._slots_freed("wan2.6-t2i", [freed_long_ago])
        job.refresh_from_db()
        assert job.next_poll_at == sent + timedelta(seconds=3 + Forecast.MARGIN)
    finally:
        pipeline.close()


def test_a_first_batch_is_noticed_soon_after_it_ends_with_few_polls(db, media):
    """Before the studio knows how long a model takes, it watches one task of a batch
    closely; its end tells when the others end, so they are not polled blind every half
    second (about 0.45 s late and 7 polls each, before this)."""
    team = Team.objects.create(name="Studio P", slug="p", member_jobs_in_flight=50)
    alice = another_member(team, "alice")
    pipeline = make_pipeline(running_per_model=10, submits_per_second=20)
    try:
        jobs = [pipeline.submit(alice, **T2I) for _ in range(10)]
        lags = sorted(notice_lags(pipeline, jobs))
        assert lags[len(lags) // 2] <= 0.3 and lags[-1] <= 0.6
        assert sum(Job.objects.values_list("polls", flat=True)) <= 55
    finally:
        pipeline.close()


def test_when_the_watched_task_is_cancelled_another_one_is_watched_closely(db, media):
    from studio.generation.services import cancel_job

    team = Team.objects.create(name="Studio Q", slug="q", member_jobs_in_flight=50)
    alice = another_member(team, "alice")
    # 2.6 s of running: the ends fall between the once-a-second looks at unwatched tasks.
    config = pipeline_config(max_running_per_model=10, submits_per_second=20, running_seconds=2.6)
    pipeline = Pipeline(config, Limits(running_per_model=10, submits_per_second=20))
    try:
        first, *others = [pipeline.submit(alice, **T2I) for _ in range(4)]
        pipeline.tick(0.05)  # all four sent; the first is the one watched closely
        assert "Cancelling" in cancel_job(first, membership=alice)
        lags = notice_lags(pipeline, others)
        assert Job.objects.get(pk=first.pk).status == Job.Status.CANCELED
        # Still noticed soon after they end: one of them took over as the one watched.
        assert max(lags) <= 0.35, lags
    finally:
        pipeline.close()


def notice_lags(pipeline, jobs: list[Job]) -> list[float]:
    """Drive the pipeline in 50 ms steps until every job is finished; for each of `jobs`,
    how long after its task ended the studio noticed (took it from the provider)."""
    noticed: dict = {}
    while Job.objects.filter(status__in=Job.OPEN).exists():
        pipeline.tick(0.05)
        taken = Job.objects.exclude(status__in=(*Job.AT_PROVIDER, Job.Status.QUEUED))
        for pk in taken.values_list("pk", flat=True):
            noticed.setdefault(pk, pipeline.clock.now())
    tasks = pipeline.emulator.tasks
    return [
        noticed[job.pk] - tasks[Job.objects.get(pk=job.pk).provider_task_id].end_at for job in jobs
    ]


@pytest.mark.parametrize(
    ("offset", "shift"),
    [
        (-8 * 3600 + 1.3, -8 * 3600),  # Beijing's time, answered a little late
        (5.5 * 3600 - 40, 5.5 * 3600),  # India's half hour
        (1.8, 0),  # the same zone
        (300, 0),  # drift, not a zone
        (-8 * 3600 + 420, 0),  # seven minutes from any zone: a wrong clock
        (177 * 86400, 0),  # a clock months out
    ],
)
def test_the_providers_zone_is_told_from_drift_and_wrong_clocks(offset, shift):
    from datetime import timedelta

    from studio.generation.worker.forecast import Forecast

    forecast = Forecast()
    forecast.offsets.extend([offset + 0.5, offset])
    assert forecast.zone_shift() == timedelta(seconds=shift)
