"""What the worker tells people at a job's end: its author, when she was not watching it,
and whoever its charge took past 80 % or 100 % of a quota or budget, once per crossing.
Telling never fails a job."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.urls import reverse

from studio.accounts.models import Membership, ModelPrice
from studio.generation.models import Job
from studio.generation.worker import notices
from studio.notifications.models import Kind, Notification
from studio.notifications.watching import mark_watching
from tests.support.factories import create_membership, create_user

T2I = {"model": "wan2.6-t2i", "prompt": "A lighthouse at dusk", "parameters": {"size": "1280*1280"}}


def run(pipeline, member, committed, images: int = 1, prompt: str = "A lighthouse at dusk"):
    job = pipeline.submit(
        member, **(T2I | {"prompt": prompt, "parameters": {"size": "1280*1280", "n": images}})
    )
    with committed():
        pipeline.drive()
    job.refresh_from_db()
    return job


def told(user, kind: str) -> list[str]:
    return list(
        Notification.objects.filter(recipient=user, kind=kind)
        .order_by("created_at", "id")
        .values_list("text", flat=True)
    )


def test_a_job_that_ends_while_its_author_is_away_tells_her(pipeline, member, committed):
    job = run(pipeline, member, committed, images=2)

    assert job.status == Job.Status.SUCCEEDED
    [notice] = Notification.objects.filter(recipient=member.user, kind=Kind.JOB)
    assert notice.text == "Your job “A lighthouse at dusk” finished with 2 images."
    assert notice.link == reverse("job-detail", args=[job.pk])


def test_a_job_its_author_is_watching_tells_her_nothing(pipeline, member, committed):
    job = pipeline.submit(member, **T2I)
    mark_watching(member.user.pk, [job.pk])
    with committed():
        pipeline.drive()

    assert told(member.user, Kind.JOB) == []


def test_watching_one_job_does_not_count_for_another(pipeline, member, committed):
    mark_watching(member.user.pk, ["another-job"])
    run(pipeline, member, committed)

    assert len(told(member.user, Kind.JOB)) == 1


def test_a_failed_job_tells_its_author_without_the_providers_words(pipeline, member, committed):
    job = run(pipeline, member, committed, prompt="A cat #unsafe")

    assert job.status == Job.Status.FAILED
    assert told(member.user, Kind.JOB) == ["Your job “A cat #unsafe” failed; its page says why."]


def test_a_fault_in_telling_never_fails_the_job_or_loses_its_images(
    pipeline, member, committed, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("the notifications table is gone")

    monkeypatch.setattr(notices.services, "job_ended", broken)
    with caplog.at_level(logging.ERROR, logger="studio.notifications"):
        job = run(pipeline, member, committed, images=2)

    assert job.status == Job.Status.SUCCEEDED
    assert job.images.count() == 2 and job.images_charged == 2
    assert "Could not make a notification" in caplog.text


def test_a_persons_quota_is_told_at_80_and_100_percent_once_each(pipeline, member, committed):
    Membership.objects.filter(pk=member.pk).update(images_per_day=10)
    for images in (4, 4, 1, 1):
        run(pipeline, member, committed, images=images)

    assert told(member.user, Kind.QUOTA) == [
        "You have used 80 % of today's images in Pixel Works: 8 of 10.",
        "You have used 100 % of today's images in Pixel Works: 10 of 10.",
    ]


def test_the_teams_budget_is_told_to_its_owners(pipeline, member, committed):
    owner = create_user(username="olga")
    create_membership(team=member.team, user=owner, role=Membership.Role.OWNER)
    member.team.monthly_budget = Decimal("1.00")
    member.team.save()
    ModelPrice.objects.create(model="wan2.6-t2i", price_per_image=Decimal("0.20"))
    for images in (2, 2, 1):
        run(pipeline, member, committed, images=images)

    assert told(owner, Kind.QUOTA) == [
        "Pixel Works has spent 80 % of this month's budget: 0.80 of 1.00.",
        "Pixel Works has spent 100 % of this month's budget: 1.00 of 1.00.",
    ]
    assert told(member.user, Kind.QUOTA) == []  # a designer's own quota has no limit here


def test_a_jump_past_both_thresholds_is_told_once_as_100(pipeline, member, committed):
    Membership.objects.filter(pk=member.pk).update(images_per_day=3)
    run(pipeline, member, committed, images=3)

    assert told(member.user, Kind.QUOTA) == [
        "You have used 100 % of today's images in Pixel Works: 3 of 3."
    ]


def test_a_job_end_and_a_quota_crossing_come_by_email_when_she_chose_it(
    pipeline, member, committed, settings
):
    from django.core import mail

    from studio.notifications.models import Preference

    settings.STUDIO_BASE_URL = "https://studio.example.com"
    member.user.email = "dana@example.com"
    member.user.save()
    Membership.objects.filter(pk=member.pk).update(images_per_day=2)
    Preference.choose(member.user.pk, {Kind.JOB: True, Kind.QUOTA: True})
    job = run(pipeline, member, committed, images=2)
    [email] = mail.outbox
    assert email.to == ["dana@example.com"]
    assert "Your job “A lighthouse at dusk” finished with 2 images." in email.body
    assert f"https://studio.example.com{reverse('job-detail', args=[job.pk])}" in email.body
    assert "100 %" in email.body or "100%" in email.body
    assert "Signature=" not in email.body and "sk-" not in email.body
