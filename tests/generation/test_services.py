"""Creating, cancelling and retrying jobs: quotas, limits and who may do what."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from studio.accounts.models import Membership, QuotaCounter, Team
from studio.generation.models import Job, QuotaCharge
from studio.generation.services import (
    JobRefused,
    cancel_job,
    create_job,
    retry_job,
    variations_job,
)
from tests.support.factories import create_membership, create_team, create_user
from tests.support.pipeline import another_member, counters, upload

T2I = {"model": "wan2.6-t2i", "prompt": "A teapot", "parameters": {"size": "1280*1280", "n": 2}}
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_a_job_reserves_its_images_against_person_and_team(member, media):
    job = create_job(membership=member, now=NOON, **T2I)
    assert job.images_requested == 2 and job.parameters["n"] == 2
    assert counters(member) == {
        "person-day": (0, 2),
        "person-month": (0, 2),
        "team-day": (0, 2),
        "team-month": (0, 2),
    }
    assert QuotaCharge.objects.get(job=job).images == 2


def test_n_is_always_explicit_so_the_provider_default_never_surprises(member, media):
    job = create_job(
        membership=member,
        model="wan2.6-t2i",
        prompt="A teapot",
        now=NOON,
        parameters={"size": "1280*1280"},
    )
    assert job.images_requested == 4 and job.parameters["n"] == 4


def test_a_request_over_the_daily_limit_says_what_is_left_and_when(member, media):
    Membership.objects.filter(pk=member.pk).update(images_per_day=3)
    member.refresh_from_db()
    create_job(membership=member, now=NOON, **T2I)
    with pytest.raises(JobRefused) as refused:
        create_job(membership=member, now=NOON, **T2I)
    assert "You have 1 of 3 images left today" in str(refused.value)
    assert "renews at 00:00 UTC tomorrow" in str(refused.value)
    assert Job.objects.count() == 1
    assert counters(member)["person-day"] == (0, 2)  # the refusal reserved nothing


def test_the_team_limit_applies_to_everyone_together(member, media):
    Team.objects.filter(pk=member.team_id).update(images_per_month=3)
    colleague = another_member(member.team, "colin")
    create_job(membership=member, now=NOON, **T2I)
    with pytest.raises(JobRefused, match="Your team has 1 of 3 images left this month"):
        create_job(membership=colleague, now=NOON, **T2I)


def test_a_person_falls_back_to_the_team_default(member, media):
    Team.objects.filter(pk=member.team_id).update(member_images_per_day=2)
    member.refresh_from_db()
    create_job(membership=member, now=NOON, **T2I)
    with pytest.raises(JobRefused, match="0 of 2 images left today"):
        create_job(membership=member, now=NOON, **(T2I | {"parameters": {"n": 1}}))


def test_jobs_in_flight_are_capped_per_person(member, media):
    Membership.objects.filter(pk=member.pk).update(jobs_in_flight=2)
    member.refresh_from_db()
    create_job(membership=member, now=NOON, **T2I)
    create_job(membership=member, now=NOON, **T2I)
    with pytest.raises(JobRefused, match="2 jobs queued or running"):
        create_job(membership=member, now=NOON, **T2I)


def test_a_request_the_provider_would_refuse_is_refused_before_anything_is_reserved(member, media):
    with pytest.raises(JobRefused) as refused:
        create_job(
            membership=member,
            model="wan2.6-t2i",
            prompt="A teapot",
            now=NOON,
            parameters={"size": "100*100", "n": 9},
        )
    assert {p.field for p in refused.value.problems} == {"size", "n"}
    assert not Job.objects.exists() and not QuotaCounter.objects.filter(reserved__gt=0).exists()


def test_viewers_cannot_generate(team, viewer, media):
    membership = Membership.objects.get(team=team, user=viewer)
    with pytest.raises(PermissionDenied):
        create_job(membership=membership, now=NOON, **T2I)


def test_an_edit_stores_its_normalised_inputs_and_boxes(member, media):
    inputs = [upload(900, 600), upload(640, 640, boxes=[(10, 20, 300, 400)])]
    job = create_job(
        membership=member,
        model="wan2.7-image",
        prompt="Swap them",
        now=NOON,
        parameters={"size": "1K", "n": 1},
        inputs=inputs,
    )
    assert job.kind == Job.Kind.EDIT
    stored = list(job.inputs.all())
    assert [i.position for i in stored] == [1, 2]
    assert stored[1].boxes == [[10, 20, 300, 400]]
    assert stored[0].image.name == f"inputs/{job.pk}/1.jpg"
    request = job.to_generation_request()
    assert request.bbox_list == ((), ((10, 20, 300, 400),))
    assert [i.info.width for i in request.images] == [900, 640]


def test_cancelling_a_queued_job_releases_its_images(member, media):
    job = create_job(membership=member, now=NOON, **T2I)
    assert cancel_job(job, membership=member) == "Cancelled. Nothing was charged."
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELED
    assert counters(member)["person-day"] == (0, 0)


def test_only_the_author_or_an_owner_may_cancel_or_retry(member, media):
    job = create_job(membership=member, now=NOON, **T2I)
    colleague = another_member(member.team, "colin")
    with pytest.raises(PermissionDenied):
        cancel_job(job, membership=colleague)
    owner = create_membership(
        team=member.team, user=create_user(username="olga"), role=Membership.Role.OWNER
    )
    assert "Cancelled" in cancel_job(job, membership=owner)
    with pytest.raises(PermissionDenied):
        retry_job(job, membership=colleague)


def test_retry_queues_the_same_request_again(member, media):
    first = create_job(
        membership=member,
        model="wan2.7-image",
        prompt="Swap",
        now=NOON,
        parameters={"size": "1K", "n": 1},
        inputs=[upload(800, 600, boxes=[(1, 2, 30, 40)])],
    )
    cancel_job(first, membership=member)
    second = retry_job(first, membership=member)
    assert second.pk != first.pk and second.status == Job.Status.QUEUED
    assert (second.model, second.prompt, second.parameters) == (
        first.model,
        first.prompt,
        first.parameters,
    )
    assert second.inputs.get().boxes == [[1, 2, 30, 40]]
    assert second.inputs.get().sha256 == first.inputs.get().sha256


def test_variations_keep_the_request_and_change_the_seed(member, media, monkeypatch):
    from studio.dashscope.validation import SEED_MAX
    from studio.generation import services

    # The draw lands on the job's own seed first: a variation must not repeat it.
    draws = iter([7, SEED_MAX])
    monkeypatch.setattr(services.secrets, "randbelow", lambda bound: next(draws) % bound)
    first = create_job(
        membership=member,
        model="wan2.7-image",
        prompt="Swap",
        now=NOON,
        parameters={"size": "1K", "n": 1, "seed": 7},
        inputs=[upload(800, 600, boxes=[(1, 2, 30, 40)])],
    )
    colleague = another_member(member.team, "colin")  # a teammate's image will do
    second = variations_job(first, membership=colleague)
    assert second.pk != first.pk and second.author == colleague.user
    assert (second.model, second.prompt, second.kind) == (first.model, first.prompt, first.kind)
    assert second.parameters["seed"] == SEED_MAX  # the second draw, the top of the range
    assert {k: v for k, v in second.parameters.items() if k != "seed"} == {"size": "1K", "n": 1}
    assert second.inputs.get().boxes == [[1, 2, 30, 40]]
    assert counters(colleague)["person-day"] == (0, 1)  # charged to whoever asked


def test_variations_go_through_the_quota_and_the_roles(member, media):
    first = create_job(membership=member, **T2I)  # today: variations are made now
    Membership.objects.filter(pk=member.pk).update(images_per_day=3)
    member.refresh_from_db()
    with pytest.raises(JobRefused) as refused:
        variations_job(first, membership=member)
    assert "images left today" in str(refused.value)
    assert Job.objects.count() == 1
    looking = create_membership(
        team=member.team, user=create_user(username="vera"), role=Membership.Role.VIEWER
    )
    with pytest.raises(PermissionDenied):
        variations_job(first, membership=looking)
    outsider = create_membership(
        team=create_team(name="Other", slug="other"), user=create_user(username="otto")
    )
    with pytest.raises(PermissionDenied):
        variations_job(first, membership=outsider)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_submissions_with_ten_images_left_accept_exactly_ten(media):
    team = create_team(name="Race", slug="race")
    team.member_jobs_in_flight = 100
    team.save()
    membership = create_membership(team=team, user=create_user(username="racer"))
    Membership.objects.filter(pk=membership.pk).update(images_per_day=10)
    accepted, refused, errors = [], [], []
    start = threading.Barrier(50)

    def submit() -> None:
        try:
            start.wait()
            member = Membership.objects.get(pk=membership.pk)
            create_job(
                membership=member,
                model="wan2.6-t2i",
                prompt="One of fifty",
                parameters={"size": "1280*1280", "n": 1},
                now=NOON,
            )
            accepted.append(1)
        except JobRefused as exc:
            refused.append(str(exc))
        except Exception as exc:  # a lock error here is what the test is for
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(accepted) == 10 and len(refused) == 40
    assert all("0 of 10 images left today" in message for message in refused)
    person_day = QuotaCounter.objects.get(user__username="racer", period="day")
    assert (person_day.used, person_day.reserved) == (0, 10)
    assert Job.objects.count() == 10


@pytest.mark.django_db(transaction=True)
def test_creating_a_job_locks_neither_the_team_nor_the_person(media):
    """The worker's inserts check their foreign keys against these rows; a job being
    created must not hold them, or the two deadlock over the quota counters."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite locks the whole database")
    from django.contrib.auth.models import User
    from django.db import transaction

    member = create_membership(team=create_team(name="Locks"), user=create_user(username="lou"))
    inside, done = threading.Event(), threading.Event()
    errors: list[str] = []

    def create_and_wait() -> None:
        try:
            with transaction.atomic():
                create_job(membership=member, now=NOON, **T2I)
                inside.set()
                done.wait(10)
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            inside.set()
            connection.close()

    thread = threading.Thread(target=create_and_wait)
    thread.start()
    assert inside.wait(10)
    try:
        with transaction.atomic():
            Team.objects.select_for_update(nowait=True).get(pk=member.team_id)
            User.objects.select_for_update(nowait=True).get(pk=member.user_id)
    finally:
        done.set()
        thread.join()
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_jobs_queues_one_dispatcher(media):
    from django_q.models import OrmQ

    from studio.generation.models import WorkerLease
    from studio.generation.tasks import kick
    from studio.generation.worker.leases import KICK_LEASE

    member = create_membership(team=create_team(name="Burst"), user=create_user(username="bo"))
    Team.objects.filter(pk=member.team_id).update(member_jobs_in_flight=50)
    member.refresh_from_db()
    for _ in range(20):
        create_job(membership=member, now=NOON, **T2I)
    assert OrmQ.objects.count() == 1

    # A running dispatcher takes new jobs itself; none is queued for them.
    WorkerLease.objects.filter(name=KICK_LEASE).update(owner="", until=None)
    assert WorkerLease.acquire("dispatcher", "running-one", seconds=30)
    kick()
    assert OrmQ.objects.count() == 1
    # Once it has gone, the next job queues a dispatcher again.
    WorkerLease.release("dispatcher", "running-one")
    kick()
    assert OrmQ.objects.count() == 2


def send_an_edit(member: Membership, images: int) -> Job:
    return create_job(
        membership=member,
        model="wan2.7-image-pro",
        prompt="Put the vase from image 1 on the table",
        parameters={"size": "2K", "n": images},
        inputs=[upload(900, 600)],
    )


def assert_nothing_kept(media) -> None:
    assert not Job.objects.exists()
    assert not [p for p in media.rglob("*") if p.is_file()]


def test_an_edit_refused_for_quota_leaves_no_reference_image_behind(db, media):
    """The reservation comes last in the transaction, after the inputs' files are written:
    a refusal takes the files away with the rows."""
    team = create_team(name="Tight", slug="tight")
    team.images_per_day = 1
    team.save()
    member = create_membership(team=team, user=create_user(username="tia"))
    with pytest.raises(JobRefused, match="1 of 1 images left today"):
        send_an_edit(member, images=2)
    assert_nothing_kept(media)


def test_an_edit_that_fails_after_its_reservation_leaves_no_reference_image_behind(
    db, media, monkeypatch
):
    """Anything failing up to the commit (here the ledger's insert) rolls the rows back
    and takes the inputs' files with them."""
    member = create_membership(
        team=create_team(name="Roomy", slug="roomy"), user=create_user(username="ria")
    )

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(QuotaCharge.objects, "create", broken)
    with pytest.raises(RuntimeError):
        send_an_edit(member, images=1)
    assert_nothing_kept(media)


def test_an_edit_whose_dispatcher_could_not_be_woken_is_kept_and_queued(
    db, media, monkeypatch, django_capture_on_commit_callbacks
):
    """Waking the dispatcher comes after the commit: if it fails, the job that committed
    keeps its images and is sent by the next dispatcher; the designer sees no error."""
    from studio.generation import tasks

    member = create_membership(
        team=create_team(name="Roomy", slug="roomy"), user=create_user(username="ria")
    )

    def locked():
        raise RuntimeError("database is locked")

    monkeypatch.setattr(tasks, "kick", locked)
    with django_capture_on_commit_callbacks(execute=True):
        job = send_an_edit(member, images=1)
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    stored = job.inputs.get()
    assert stored.image.storage.exists(stored.image.name)


@pytest.mark.django_db(transaction=True)
def test_jobs_ended_by_one_poll_do_not_deadlock_a_colleague_creating_a_job(pipeline, member):
    """Two tasks of one team fail and are seen in one poll. Settling both in the poll's
    transaction held the team's counters while waiting for the second person's, which
    that person's new job held while waiting for the team's: a deadlock."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite locks the whole database")
    from tests.support.pipeline import another_member
    from tests.support.waiting import wait_for

    bob = another_member(member.team, "bob")
    t2i = {"model": "wan2.6-t2i", "parameters": {"size": "1280*1280", "n": 1}}
    pipeline.submit(member, prompt="A lamp #fail", **t2i)
    pipeline.submit(bob, prompt="A lamp #fail", **t2i)
    at_provider = (Job.Status.PENDING, Job.Status.RUNNING)
    pipeline.drive(lambda: Job.objects.filter(status__in=at_provider).count() == 2)
    settle = QuotaCounter.settle.__func__
    outcomes: list[str] = []
    threads: list[threading.Thread] = []

    def bob_creates_a_job() -> None:
        try:
            create_job(membership=bob, prompt="Another lamp", now=pipeline.now(), **t2i)
            outcomes.append("created")
        except Exception as exc:  # reported below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    def a_lock_is_awaited() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return cursor.fetchone()[0] > 0

    def settle_then_let_bob_in(cls, counter_ids, **how):
        settle(cls, counter_ids, **how)
        if not threads:
            threads.append(threading.Thread(target=bob_creates_a_job))
            threads[0].start()
            # bob's job takes his counters and waits for the team's
            wait_for(a_lock_is_awaited, 15, interval=0.05)

    QuotaCounter.settle = classmethod(settle_then_let_bob_in)
    try:
        pipeline.drive(lambda: not Job.objects.filter(status__in=at_provider).exists())
    finally:
        QuotaCounter.settle = classmethod(settle)
        for thread in threads:
            thread.join()
    assert outcomes == ["created"]
    failed = Job.objects.filter(status=Job.Status.FAILED)
    assert failed.count() == 2 and all(job.images_charged == 0 for job in failed)
    assert counters(member)["team-day"] == (0, 1)  # bob's new job, reserved
