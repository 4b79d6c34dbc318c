"""Zero loss: once the provider made an image, the studio stores it exactly once and charges
exactly what it stored.

What the studio refuses itself (a result host it does not allow, a certificate it does not
trust, a result over its byte cap, a body it cannot decode) and what an operator can fix
(storage unavailable or full, a fault that outlasts the download retries) hold the job: the
images stored so far stay, the reservation stays, and the download is tried again with
growing pauses. Only the provider's URLs expiring ends it, charged for what was stored.

The first tests drive the pipeline in one process on the emulator's fake clock; the last
ones run real worker clusters (`manage.py qcluster`) against the served emulator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils.html import escape

from studio.accounts.models import Membership, QuotaCounter
from studio.audit.models import Entry
from studio.dashscope.catalog import get_model
from studio.dashscope.errors import DashScopeError
from studio.generation import messages
from studio.generation.admin import jobs as generation_admin
from studio.generation.models import GeneratedImage, Job, QuotaCharge
from studio.generation.services import create_job
from studio.generation.worker.downloads import DOWNLOAD_RETRIES
from studio.generation.worker.steps import run_step
from tests.support.factories import create_membership, create_team, create_user
from tests.support.flaky_storage import FLAG_VARIABLE
from tests.support.pipeline import Pipeline, counters, inject
from tests.support.waiting import wait_for

T2I = {
    "model": "wan2.6-t2i",
    "prompt": "A lighthouse at dusk",
    "parameters": {"size": "1280*1280", "n": 2},
}
# Narrower than the hosts the emulator's results come from: an operator's mistake, or the
# provider moving its results to a bucket the setting does not name yet.
NARROW_HOSTS = "dashscope-result-*.oss-cn-beijing.aliyuncs.com"
FLAKY_STORAGE = {
    "BACKEND": "tests.support.flaky_storage.FlakyStorage",
    "OPTIONS": {"allow_overwrite": True},
}


def stored_files(media: Path) -> list[Path]:
    results = media / "results"
    return sorted(p for p in results.rglob("*") if p.is_file()) if results.exists() else []


def settled(job: Job) -> int:
    return QuotaCharge.objects.filter(job=job, kind=QuotaCharge.Kind.SETTLE).count()


def held_by_refusing_host(pipeline: Pipeline, member: Membership) -> Job:
    """A job whose step ran with a client that does not allow the emulator's result hosts."""
    job = pipeline.submit(member, **T2I)
    step = pipeline.until_handed_over(job)
    refusing = pipeline.make_client(result_hosts=[NARROW_HOSTS])
    try:
        run_step(step, refusing, limits=pipeline.limits, now=pipeline.now)
    finally:
        refusing.close()
    job.refresh_from_db()
    return job


def superuser() -> User:
    return User.objects.create_superuser("root", password="unused-password")


@pytest.fixture
def flaky_storage(settings, monkeypatch, tmp_path) -> Path:
    """The media storage fails to save while the returned flag file exists (it does at
    first); text in it limits the failure to names containing that text."""
    flag = tmp_path / "storage-fault"
    flag.write_text("")
    monkeypatch.setenv(FLAG_VARIABLE, str(flag))
    settings.STORAGES = {**settings.STORAGES, "default": FLAKY_STORAGE}
    return flag


# -- the state machine, in one process -------------------------------------------------------


def test_a_result_host_not_allowed_holds_the_job_with_its_urls_and_reservation(
    pipeline, member, media
):
    member.team.member_jobs_in_flight = 1
    member.team.save()
    job = held_by_refusing_host(pipeline, member)

    assert job.status == Job.Status.DOWNLOAD_HELD and job.error_code == "ResultURLRefused"
    assert job.error_message == ""  # nothing for the designer to read as an error
    # Still the worker's (open), no longer the designer's in flight (active).
    assert job.is_open and job.status not in Job.ACTIVE
    pipeline.submit(member, **T2I)  # the one job in flight allowed is free again
    # Kept for the retry; reserved, not charged; nothing stored.
    assert len(job.result_urls) == 2 and all("Signature=" in url for url in job.result_urls)
    assert counters(member)["person-day"] == (0, 4)
    assert settled(job) == 0 and not GeneratedImage.objects.exists()
    assert stored_files(media) == []
    # Valid until the URLs' own Expires; tried again in a minute.
    expires = max(int(parse_qs(urlsplit(url).query)["Expires"][0]) for url in job.result_urls)
    assert job.results_valid_until == datetime.fromtimestamp(expires, UTC)
    assert job.download_held_at == pipeline.now()
    assert job.download_retry_at == job.download_held_at + timedelta(seconds=60)


def test_retry_now_after_the_hosts_are_fixed_stores_and_charges_once_however_often_pressed(
    pipeline, member, media, client, monkeypatch, django_capture_on_commit_callbacks
):
    job = held_by_refusing_host(pipeline, member)
    monkeypatch.setattr(generation_admin, "enqueue_job_step", pipeline.enqueue)
    client.force_login(superuser())
    retry = reverse("admin:generation_job_retry_download", args=[job.pk])

    # Pressed twice before any worker got to it.
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            answer = client.post(retry, {"next": reverse("admin-health")})
            assert answer.status_code == 302 and answer["Location"] == reverse("admin-health")
    assert pipeline.steps == [str(job.pk), str(job.pk)]
    assert Entry.objects.filter(action="retry_download", team=member.team).count() == 2
    pipeline.run_steps()  # the steps' client allows the emulator's hosts, as fixed

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.error_code == ""
    assert job.images.count() == 2 and len(stored_files(media)) == 2
    assert settled(job) == 1 and job.images_charged == 2
    assert counters(member)["person-day"] == (2, 0)
    assert job.result_urls == []  # the secrets go once the job ends

    # Pressed again once stored: nothing to retry, nothing handed out.
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(retry, follow=True)
    assert "is no longer held" in answer.content.decode()
    assert pipeline.steps == [] and counters(member)["person-day"] == (2, 0)


def test_the_changelist_action_retries_the_held_jobs_it_is_given(
    pipeline, member, client, monkeypatch, django_capture_on_commit_callbacks
):
    held = held_by_refusing_host(pipeline, member)
    other = pipeline.submit(member, **(T2I | {"prompt": "Not held"}))
    monkeypatch.setattr(generation_admin, "enqueue_job_step", pipeline.enqueue)
    client.force_login(superuser())
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            reverse("admin:generation_job_changelist"),
            {"action": "retry_download_now", "_selected_action": [held.pk, other.pk]},
            follow=True,
        )
    assert "Download retried now for 1 held job." in answer.content.decode()
    assert pipeline.steps == [str(held.pk)]
    held.refresh_from_db()
    assert held.download_retry_at <= datetime.now(UTC)


def test_the_health_page_lists_held_jobs_and_the_job_page_offers_the_retry(
    pipeline, member, client
):
    job = held_by_refusing_host(pipeline, member)
    client.force_login(superuser())
    page = client.get(reverse("admin-health")).content.decode()
    retry = reverse("admin:generation_job_retry_download", args=[job.pk])
    assert f'data-held-job="{job.pk}"' in page
    assert get_model(job.model).label in page and member.team.name in page
    assert "ResultURLRefused" in page and escape(messages.hold_reason("ResultURLRefused")) in page
    assert "0 / 2" in page  # images stored / made
    assert f'action="{retry}"' in page and "Retry download now" in page
    change = client.get(reverse("admin:generation_job_change", args=[job.pk])).content.decode()
    assert f'formaction="{retry}"' in change
    for shown in (page, change):
        assert "Signature=" not in shown and urlsplit(job.result_urls[0]).hostname not in shown


def test_staff_who_may_only_read_jobs_see_held_jobs_but_cannot_retry_them(pipeline, member, client):
    job = held_by_refusing_host(pipeline, member)
    reader = create_user(username="rita", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(reader)
    page = client.get(reverse("admin-health")).content.decode()
    assert f'data-held-job="{job.pk}"' in page and "Retry download now" not in page
    retry = reverse("admin:generation_job_retry_download", args=[job.pk])
    assert client.post(retry).status_code == 403
    assert client.get(retry).status_code == 405
    assert not Entry.objects.filter(action="retry_download").exists()


def test_the_designer_reads_made_and_being_fetched_never_the_reason_or_a_url(
    pipeline, member, client
):
    job = held_by_refusing_host(pipeline, member)
    client.force_login(member.user)
    pages = [
        client.get(reverse("job-detail", args=[job.pk])).content.decode(),
        client.get(reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode(),
        client.get(reverse("recent-jobs")).content.decode(),
    ]
    for page in pages:
        assert messages.DOWNLOAD_HELD_LABEL in page
        assert "ResultURLRefused" not in page and "download held" not in page.lower()
        assert "Signature=" not in page and "aliyuncs.com" not in page
        assert 'role="alert"' not in page
    assert messages.DOWNLOAD_HELD in pages[0] and 'hx-trigger="every 10s"' in pages[0]
    assert 'hx-trigger="jobs-changed from:body, every 10s"' in pages[2]


def test_storage_failing_holds_the_job_then_its_due_retry_stores_it(
    pipeline, member, media, flaky_storage
):
    job = pipeline.submit(member, **T2I)
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status not in Job.ACTIVE)
    job.refresh_from_db()
    # Held, not crashed: no attempt was spent on it.
    assert job.status == Job.Status.DOWNLOAD_HELD and job.error_code == "StorageUnavailable"
    assert job.attempts == 0 and not GeneratedImage.objects.exists()

    flaky_storage.unlink()  # the disk has room again
    # Tried again once its pause is over, not before.
    pause_over = job.download_held_at + timedelta(seconds=60)
    pipeline.drive(lambda: pipeline.now() >= pause_over - timedelta(seconds=1))
    assert Job.objects.get(pk=job.pk).status == Job.Status.DOWNLOAD_HELD
    pipeline.drive(lambda: not Job.objects.get(pk=job.pk).is_open)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images.count() == 2
    assert len(stored_files(media)) == 2
    assert counters(member)["person-day"] == (2, 0)


@pytest.mark.parametrize(
    ("code", "retryable"), [("ResultTLSFailed", True), ("ResultTooLarge", False)]
)
def test_a_fault_an_operator_must_fix_holds_the_job_at_once(
    pipeline, member, monkeypatch, code, retryable
):
    def refused(url: str, **limits) -> bytes:
        raise DashScopeError(status=None, code=code, message="refused", retryable=retryable)

    job = pipeline.submit(member, **T2I)
    step = pipeline.until_handed_over(job)
    monkeypatch.setattr(pipeline.client, "download", refused)
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.DOWNLOAD_HELD and job.error_code == code
    assert job.download_failures == 0  # no hour of quick retries first


def test_a_passing_fault_that_outlasts_the_download_retries_holds_the_job(pipeline, member):
    job = pipeline.submit(member, **T2I)
    step = pipeline.until_handed_over(job)
    inject(pipeline, "result:503x*")
    # As if the hour of quick retries were spent.
    Job.objects.filter(pk=job.pk).update(download_failures=DOWNLOAD_RETRIES)
    run_step(step, pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.DOWNLOAD_HELD and job.error_code
    assert counters(member)["person-day"] == (0, 2)

    inject(pipeline)  # the host answers again
    pipeline.drive(lambda: not Job.objects.get(pk=job.pk).is_open)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.images.count() == 2
    assert counters(member)["person-day"] == (2, 0)


def test_a_held_download_is_retried_with_growing_pauses_until_its_urls_expire(
    pipeline_with, member, flaky_storage
):
    pipeline = pipeline_with(hold_check_seconds=0)  # due jobs looked for on every pass
    job = pipeline.submit(member, **T2I)
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status == Job.Status.DOWNLOAD_HELD)
    job.refresh_from_db()
    valid_until = job.results_valid_until
    tried_at, pauses = job.download_held_at, []
    while job.is_open:
        pauses.append((job.download_retry_at - tried_at).total_seconds())
        # To the moment the retry is due, and one pass: it is handed out and tried then.
        pipeline.clock.advance((job.download_retry_at - pipeline.now()).total_seconds())
        tried_at = pipeline.now()
        pipeline.tick(0)
        job.refresh_from_db()
    assert pauses[:8] == [60, 60, 120, 240, 480, 960, 1800, 1800]
    assert set(pauses[8:-1]) == {1800} and 0 < pauses[-1] <= 1800
    # The last try was when the URLs expired; the storage never came back.
    assert pipeline.now() == valid_until
    assert job.status == Job.Status.FAILED and job.error_code == "ResultExpired"
    assert counters(member)["person-day"] == (0, 0)
    # One line of history for the hold, not one per try.
    assert job.events.filter(status=Job.Status.DOWNLOAD_HELD).count() == 1


@pytest.mark.parametrize("failing", ["/1.", ""])
def test_urls_expiring_while_held_end_the_job_charged_only_for_what_was_stored(
    pipeline, member, media, flaky_storage, failing
):
    flaky_storage.write_text(failing)  # "/1.": only the second image cannot be saved
    job = pipeline.submit(member, **T2I)
    pipeline.drive(lambda: Job.objects.get(pk=job.pk).status == Job.Status.DOWNLOAD_HELD)
    stored = 1 if failing else 0
    assert GeneratedImage.objects.filter(job=job).count() == stored
    assert counters(member)["person-day"] == (0, 2)

    # A day later the provider's URLs answer 403; the storage is still failing.
    pipeline.clock.advance(24 * 3600)
    pipeline.drive(lambda: not Job.objects.get(pk=job.pk).is_open)
    job.refresh_from_db()
    if stored:
        assert job.status == Job.Status.PARTIAL
        assert job.events.filter(message=messages.partial(1, 2)).exists()
    else:
        assert job.status == Job.Status.FAILED and job.error_code == "ResultExpired"
        assert job.error_message == messages.RESULTS_EXPIRED
    assert job.images_charged == stored and settled(job) == 1
    assert counters(member)["person-day"] == (stored, 0)
    assert len(stored_files(media)) == stored and job.result_urls == []


def test_an_object_the_host_no_longer_has_is_given_up_and_the_rest_stored(
    pipeline, member, monkeypatch
):
    real_download = pipeline.client.download

    def second_gone(url: str, **limits) -> bytes:
        if url == Job.objects.get(pk=job.pk).result_urls[1]:
            raise DashScopeError(status=404, code="NoSuchKey", message="gone", retryable=False)
        return real_download(url, **limits)

    job = pipeline.submit(member, **T2I)
    monkeypatch.setattr(pipeline.client, "download", second_gone)
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL and job.images_charged == 1
    assert counters(member)["person-day"] == (1, 0)


# -- real worker clusters against the served emulator ---------------------------------------

# Short pauses and looks, so a test takes seconds; the step lease as the other cluster tests.
FAST_HOLDS = {
    "STUDIO_DOWNLOAD_HOLD_FIRST_SECONDS": "1",
    "STUDIO_DOWNLOAD_HOLD_LONGEST_SECONDS": "2",
    "STUDIO_DOWNLOAD_HOLD_CHECK_SECONDS": "1",
    "STUDIO_STEP_LEASE_SECONDS": "10",
}


def cluster_member() -> Membership:
    team = create_team(name="Night Shift", slug="night")
    return create_membership(team=team, user=create_user(username="nora"))


def wait_until_held(job: Job, seconds: float = 60) -> Job:
    def held() -> bool:
        job.refresh_from_db()
        assert job.status not in (Job.Status.FAILED, Job.Status.PARTIAL), job.error_message
        return job.status == Job.Status.DOWNLOAD_HELD

    wait_for(held, seconds)
    return job


def wait_until_ended(job: Job, seconds: float = 60) -> Job:
    wait_for(lambda: not Job.objects.get(pk=job.pk).is_open, seconds)
    job.refresh_from_db()
    return job


def person_day(member: Membership) -> tuple[int, int]:
    counter = QuotaCounter.objects.get(user=member.user, period="day")
    return counter.used, counter.reserved


@pytest.mark.django_db(transaction=True)
def test_cluster_a_host_not_allowed_is_held_then_fixed_and_retried_now(fleet, client):
    # Retries left to the button: the first automatic one is an hour away.
    fleet.start_emulator(
        running_seconds=0.5,
        max_running=5,
        **(FAST_HOLDS | {"STUDIO_DOWNLOAD_HOLD_FIRST_SECONDS": "3600"}),
        STUDIO_RESULT_HOSTS=NARROW_HOSTS,
    )
    member = cluster_member()
    job = create_job(membership=member, **T2I)
    first = fleet.new_cluster()
    first.start()
    wait_until_held(job)
    assert job.error_code == "ResultURLRefused" and person_day(member) == (0, 2)
    client.force_login(superuser())
    health = client.get(reverse("admin-health")).content.decode()
    assert f'data-held-job="{job.pk}"' in health and "ResultURLRefused" in health

    # The operator widens the setting and restarts the worker, then presses the button
    # (twice: an impatient press must not store or charge twice).
    first.stop()
    fleet.env = {name: value for name, value in fleet.env.items() if name != "STUDIO_RESULT_HOSTS"}
    second = fleet.new_cluster()
    second.start()
    retry = reverse("admin:generation_job_retry_download", args=[job.pk])
    for _ in range(2):
        assert client.post(retry, {"next": reverse("admin-health")}).status_code == 302

    wait_until_ended(job)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.images.count() == 2 and len(stored_files(fleet.media)) == 2
    assert settled(job) == 1 and person_day(member) == (2, 0)
    assert fleet.stats()["counts"]["submitted"] == 1


def job_on_flaky_storage(fleet, flag: Path, *, failing: str) -> tuple[Membership, Job]:
    """A job made by a real cluster whose storage refuses to save, while `flag` exists,
    every file whose name contains `failing` (empty: every file)."""
    flag.write_text(failing)
    fleet.start_emulator(
        running_seconds=0.5,
        max_running=5,
        **FAST_HOLDS,
        DJANGO_SETTINGS_MODULE="tests.support.flaky_storage_settings",
        **{FLAG_VARIABLE: str(flag)},
    )
    member = cluster_member()
    job = create_job(membership=member, **T2I)
    fleet.new_cluster().start()
    return member, job


@pytest.mark.django_db(transaction=True)
def test_cluster_storage_failing_for_a_while_holds_the_job_then_stores_it(fleet, tmp_path):
    flag = tmp_path / "disk-full"
    member, job = job_on_flaky_storage(fleet, flag, failing="")
    wait_until_held(job)
    assert job.error_code == "StorageUnavailable" and not job.images.exists()
    # Still failing on its next try: held again, never crashed or failed.
    first_retry = job.download_retry_at
    wait_until_held(job)
    wait_for(lambda: Job.objects.get(pk=job.pk).download_retry_at > first_retry, 30)
    wait_until_held(job)

    flag.unlink()  # the storage is back
    wait_until_ended(job)
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert job.images.count() == 2 and len(stored_files(fleet.media)) == 2
    assert settled(job) == 1 and person_day(member) == (2, 0)


@pytest.mark.django_db(transaction=True)
def test_cluster_urls_expiring_while_held_charge_only_what_was_stored(fleet, tmp_path):
    flag = tmp_path / "disk-full"
    # The second image cannot be saved.
    member, job = job_on_flaky_storage(fleet, flag, failing="/1.")
    wait_until_held(job)
    assert job.images.count() == 1 and person_day(member) == (0, 2)

    fleet.emulator.control("clock", {"advance": 86400})  # the provider's URLs expire
    wait_until_ended(job)
    assert job.status == Job.Status.PARTIAL and job.images_charged == 1
    assert settled(job) == 1 and person_day(member) == (1, 0)
    assert len(stored_files(fleet.media)) == 1 and job.result_urls == []


def test_a_dispatcher_does_not_pass_for_hours_over_a_held_download(pipeline, member):
    """A held job's next try is a minute or more away: the dispatcher ends its slice rather
    than querying ten times a second for the day a download may be held, and the reconcile
    schedule's dispatcher hands the job over when it is due."""
    job = held_by_refusing_host(pipeline, member)
    assert job.status == Job.Status.DOWNLOAD_HELD
    assert job.download_retry_at - pipeline.now() >= timedelta(seconds=60)
    assert pipeline.dispatcher.step() is False  # nothing else open: the slice may end
    pipeline.clock.advance(45)
    assert pipeline.dispatcher.step() is True  # its try is near: keep passing until then


def test_a_step_sent_before_a_held_jobs_try_is_due_leaves_it_alone(pipeline, member, media):
    """A duplicate or late step must not shorten the pause a held job waits."""
    job = held_by_refusing_host(pipeline, member)
    later = datetime.now(UTC) + timedelta(hours=1)  # claims read the database's clock
    Job.objects.filter(pk=job.pk).update(download_retry_at=later)
    run_step(str(job.pk), pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.DOWNLOAD_HELD and job.attempts == 0
    assert not GeneratedImage.objects.exists()


def test_a_download_that_keeps_stopping_its_worker_is_held_not_failed(pipeline, member, media):
    """A step that dies each time (storage hanging past the task timeout, say) is an
    operator's to fix while the URLs are valid; after that the job ends, charged nothing."""
    job = held_by_refusing_host(pipeline, member)
    crashed = pipeline.limits.step_attempts  # the next claim is one more than allowed
    Job.objects.filter(pk=job.pk).update(attempts=crashed)
    run_step(str(job.pk), pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.DOWNLOAD_HELD and job.error_code == "WorkerCrashed"
    assert settled(job) == 0 and len(job.result_urls) == 2

    Job.objects.filter(pk=job.pk).update(attempts=crashed)
    pipeline.clock.advance(25 * 3600)
    run_step(str(job.pk), pipeline.client, limits=pipeline.limits, now=pipeline.now)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error_code == "WorkerCrashed"
    assert job.images_charged == 0 and job.result_urls == []


def test_an_expires_years_ahead_does_not_hold_a_job_for_years(pipeline, member):
    job = held_by_refusing_host(pipeline, member)
    job.result_urls = [
        "https://dashscope-1.oss-x.aliyuncs.com/a.png?Expires=4102444800&Signature=x"
    ]
    moment = pipeline.now()
    assert job.result_urls_valid_until(moment) <= moment + timedelta(hours=48)
