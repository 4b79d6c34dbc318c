"""The real worker (`manage.py qcluster` processes) against the served emulator, killed.

These tests share the test database with the cluster subprocesses, so they run with real
transactions. The reconcile schedule runs once a minute; to keep the tests short they call
the same reconcile function every two seconds, as a faster schedule would.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from django.utils import timezone

from studio.accounts.models import QuotaCounter
from studio.generation.models import Job, LeaseTerm, WorkerLease
from studio.generation.services import create_job
from studio.generation.tasks import reconcile
from tests.support.clusters import (
    CRASHING_QCLUSTER,
    T2I,
    assert_each_job_stored_once,
    make_member,
    wait_until_done,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def assert_all_succeeded_once(count: int, fleet, member, media: Path) -> None:
    """Every job succeeded after one submit each, its image stored once, and the person
    charged for exactly those images, nothing still reserved."""
    outcomes = set(Job.objects.values_list("status", "error_code", "error_message"))
    assert {status for status, _, _ in outcomes} == {Job.Status.SUCCEEDED}, outcomes
    assert fleet.stats()["counts"]["submitted"] == count
    assert_each_job_stored_once(count, media)
    person = QuotaCounter.objects.get(user=member.user, period="day")
    assert (person.used, person.reserved) == (count, 0)


def test_sigkill_of_the_whole_cluster_loses_and_duplicates_nothing(fleet, settings):
    # Long enough that all 20 are seen running however slow the machine.
    fleet.start_emulator(running_seconds=6, max_running=20)
    member = make_member()
    jobs = [create_job(membership=member, **T2I) for _ in range(20)]
    first = fleet.new_cluster()
    first.start()
    wait_for(lambda: fleet.stats()["tasks"].get("RUNNING", 0) == 20, 60)
    first.kill()
    assert Job.objects.filter(status__in=Job.OPEN).count() == 20

    second = fleet.new_cluster()
    second.start()
    wait_until_done(120)
    assert_all_succeeded_once(20, fleet, member, settings.MEDIA_ROOT)
    assert all(job.provider_task_id for job in Job.objects.filter(pk__in=[j.pk for j in jobs]))


def test_a_cluster_killed_while_a_submit_is_in_flight_adopts_the_task(fleet):
    fleet.start_emulator(running_seconds=1, max_running=20)
    member = make_member()
    # The emulator creates the task, then holds its answer: the kill lands in between.
    fleet.emulator.control("faults", {"faults": "submit:slow=30x1"})
    job = create_job(membership=member, **T2I)
    first = fleet.new_cluster()
    first.start()
    wait_for(lambda: fleet.stats()["counts"].get("submitted", 0) == 1, 30)
    first.kill()
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTING and not job.provider_task_id

    second = fleet.new_cluster()
    second.start()
    wait_until_done(120)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert fleet.stats()["counts"]["submitted"] == 1
    assert job.images.count() == 1


def pid_of(owner: str) -> int:
    return int(owner.split(":")[1])  # worker_name(): host:pid:random


def dispatching(exclude: set[int]) -> list[str]:
    """The owners of dispatcher terms still open, other than the processes in `exclude`."""
    owners = LeaseTerm.objects.filter(lease="dispatcher", ended_at__isnull=True)
    return [o for o in owners.values_list("owner", flat=True) if pid_of(o) not in exclude]


def holders_overlapping(dead: set[int], killed_at: datetime) -> list[str]:
    """Every pair of lease terms of one lease whose holders held it at the same time.

    A term ends when its holder let go, or at the latest when its lease ran out. The
    dispatcher renews its lease on every pass and records no expiry, so a dispatcher
    that was killed is taken to have held on until it was killed, and it must have been
    one of the processes killed.
    """
    problems = []
    terms: dict[str, list[LeaseTerm]] = {}
    for term in LeaseTerm.objects.order_by("started_at", "pk"):
        terms.setdefault(term.lease, []).append(term)
    for lease, held in terms.items():
        holder, until = None, None  # who held the lease last, and until when at the latest
        for term in held:
            if holder is not None and term.started_at < until:
                problems.append(
                    f"{lease}: {term.owner} took it at {term.started_at:%H:%M:%S.%f} while "
                    f"{holder.owner} held it until {until:%H:%M:%S.%f}"
                )
            ends = [t for t in (term.ended_at, term.expires_at) if t is not None]
            if not ends:
                if pid_of(term.owner) not in dead:
                    problems.append(f"{lease}: {term.owner} never let go, and was not killed")
                ends = [killed_at]
            if until is None or min(ends) > until:
                holder, until = term, min(ends)
    return problems


def test_two_clusters_one_killed_halfway_finish_every_job_once(fleet, settings):
    """Two worker hosts on one database; the one doing the work is SIGKILLed halfway."""
    # Every job is sent at once (ten running, forty waiting at the provider), so all 50
    # are in flight when the kill lands. A kill in the middle of a submit, whose job may
    # end uncertain, is the subject of its own test above.
    fleet.start_emulator(
        running_seconds=1.5,
        max_running=10,
        STUDIO_STEP_LEASE_SECONDS="10",
        STUDIO_PROVIDER_QUEUE_AHEAD="40",
    )
    member = make_member()
    for i in range(50):
        create_job(membership=member, **(T2I | {"prompt": f"Harbour at night, take {i}"}))
    clusters = [fleet.new_cluster(), fleet.new_cluster()]
    for cluster in clusters:
        cluster.start()

    def halfway() -> bool:
        done = Job.objects.filter(status=Job.Status.SUCCEEDED).count()
        assert done < 40, "the jobs finished before the kill"
        return done >= 15

    wait_for(halfway, 90)
    assert not Job.objects.filter(status__in=(Job.Status.QUEUED, Job.Status.SUBMITTING)).exists()
    # Kill whichever cluster holds the dispatcher lease right now: the one doing the work.
    victim = None
    deadline = time.monotonic() + 10
    while victim is None and time.monotonic() < deadline:
        holder = WorkerLease.objects.filter(name="dispatcher").values_list("owner", flat=True)
        owner = holder.first() or ""
        victim = next((c for c in clusters if owner and pid_of(owner) in c.pids()), None)
        time.sleep(0.05)
    assert victim is not None, "neither cluster was dispatching"
    dead = victim.pids()
    victim.kill()
    killed_at = timezone.now()
    assert Job.objects.filter(status__in=Job.OPEN).exists(), "nothing was left in flight"

    wait_until_done(150)
    assert_all_succeeded_once(50, fleet, member, settings.MEDIA_ROOT)
    # The survivor's dispatcher lets go on its first pass that finds nothing open, up to a
    # pass after the last job ended. Its term is audited once it has ended; one still open
    # after that is reported by the audit below.
    deadline = time.monotonic() + 30
    while dispatching(exclude=dead) and time.monotonic() < deadline:
        time.sleep(0.2)

    # The audit of lease holders: both clusters dispatched, every job's step was held by
    # one worker at a time, and so was the dispatcher's duty.
    dispatchers = LeaseTerm.objects.filter(lease="dispatcher")
    survivor = next(c for c in clusters if c is not victim)
    survivors = survivor.pids()
    assert {pid_of(o) for o in dispatchers.values_list("owner", flat=True)} & dead
    assert {pid_of(o) for o in dispatchers.values_list("owner", flat=True)} & survivors
    steps = LeaseTerm.objects.filter(lease__startswith="job:")
    assert steps.values("lease").distinct().count() == 50
    assert holders_overlapping(dead, killed_at) == []


def test_a_job_that_kills_its_worker_every_time_is_held_after_k_attempts(fleet, settings):
    """The poison job's step kills its worker process each time; the cluster survives. Its
    images are made, so after K deaths it is held (an operator may fix what kills it) and
    ends, charged nothing, only when its URLs have expired."""
    fleet.start_emulator(
        running_seconds=0.5,
        max_running=10,
        STUDIO_STEP_LEASE_SECONDS="3",
        STUDIO_DOWNLOAD_HOLD_FIRST_SECONDS="5",
        STUDIO_DOWNLOAD_HOLD_LONGEST_SECONDS="5",
        STUDIO_DOWNLOAD_HOLD_CHECK_SECONDS="1",
    )
    member = make_member()
    healthy = [
        create_job(membership=member, **(T2I | {"prompt": f"A healthy job {i}"})) for i in range(3)
    ]
    poison = create_job(membership=member, **(T2I | {"prompt": "A poison pill #crash-worker"}))
    cluster = fleet.new_cluster(CRASHING_QCLUSTER)
    cluster.start()
    wait_for(
        lambda: (
            not Job.objects.filter(status__in=Job.WATCHED).exists()
            and Job.objects.get(pk=poison.pk).status == Job.Status.DOWNLOAD_HELD
        ),
        150,
        every=reconcile,
    )

    poison.refresh_from_db()
    assert poison.error_code == "WorkerCrashed" and not poison.images.exists()
    # Each of the K steps died holding the job's lease; the next one held the job.
    crashed = LeaseTerm.objects.filter(lease=LeaseTerm.of_job(poison.pk), ended_at__isnull=True)
    assert crashed.count() >= settings.STUDIO_STEP_ATTEMPTS
    for job in healthy:
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error_message
    person = QuotaCounter.objects.get(user=member.user, period="day")
    assert (person.used, person.reserved) == (3, 1)  # the held job's image stays reserved

    fleet.emulator.control("clock", {"advance": 86400})  # the provider's URLs expire
    wait_until_done(60)
    poison.refresh_from_db()
    assert poison.status == Job.Status.FAILED and poison.images_charged == 0
    assert_each_job_stored_once(3, settings.MEDIA_ROOT)
    person.refresh_from_db()
    assert (person.used, person.reserved) == (3, 0)
    assert fleet.stats()["counts"]["submitted"] == 4
    assert cluster.process.poll() is None, "the cluster itself must survive its workers"
