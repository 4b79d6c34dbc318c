"""Email digests: at most one per ten minutes per person, everything waiting in it, and
none for a person without an address or who wants the studio only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from studio.notifications import digest
from studio.notifications.models import EmailDigest, Kind, Notification, Preference
from studio.notifications.services import notify


@pytest.fixture
def dan(designer):
    designer.email = "dan@example.com"
    designer.save()
    return designer


def mention(user, text: str) -> Notification | None:
    return notify(user.pk, Kind.MENTION, text, "/gallery/")


def test_two_notifications_within_ten_minutes_make_one_email_and_the_next_waits(dan, committed):
    with committed():
        mention(dan, "First")
    assert [email.body.count("- ") for email in mail.outbox] == [1]
    sent_at = EmailDigest.objects.get(user=dan).last_sent_at

    with committed():
        mention(dan, "Second")
        mention(dan, "Third")
    assert len(mail.outbox) == 1  # within ten minutes of the first: it waits
    [planned] = Schedule.objects.filter(name=digest.schedule_name(dan.pk))
    assert planned.func == digest.TASK and planned.args == str(dan.pk)
    assert planned.schedule_type == Schedule.ONCE
    assert planned.next_run == sent_at + digest.DIGEST_GAP

    # The schedule runs when the ten minutes are up: one email carries both.
    assert digest.send_digest(dan.pk, now=sent_at + digest.DIGEST_GAP) == 2
    assert len(mail.outbox) == 2
    later = mail.outbox[1].body
    assert "- Second" in later and "- Third" in later and "First" not in later
    assert not Notification.objects.waiting_for_email().exists()


def test_a_digest_task_run_too_soon_sends_nothing_and_plans_the_next(dan, committed):
    with committed():
        mention(dan, "First")
    mention(dan, "Second")
    sent_at = EmailDigest.objects.get(user=dan).last_sent_at

    with committed():
        assert digest.send_digest(dan.pk, now=sent_at + timedelta(minutes=3)) == 0
    assert len(mail.outbox) == 1
    assert Schedule.objects.get(name=digest.schedule_name(dan.pk)).next_run == (
        sent_at + digest.DIGEST_GAP
    )


def test_after_ten_minutes_the_next_notification_is_sent_at_once(dan, committed):
    long_ago = timezone.now() - timedelta(minutes=11)
    EmailDigest.objects.create(user=dan, last_sent_at=long_ago)
    with committed():
        mention(dan, "Hello again")
    assert len(mail.outbox) == 1
    assert not Schedule.objects.filter(name=digest.schedule_name(dan.pk)).exists()


def test_studio_only_kinds_are_never_emailed(dan, committed):
    Preference.choose(dan.pk, {Kind.MENTION: False})
    with committed():
        notice = mention(dan, "Quietly")
    assert notice is not None and not notice.by_email
    assert mail.outbox == []


def test_the_defaults_email_mentions_and_review_requests_only(dan):
    assert Preference.email_choices(dan.pk) == {
        Kind.MENTION: True,
        Kind.REVIEW_REQUEST: True,
        Kind.REVIEW: False,
        Kind.JOB: False,
        Kind.QUOTA: False,
    }


def test_a_person_without_an_email_address_gets_none(designer, committed):
    assert designer.email == ""
    with committed():
        mention(designer, "Hello")
    assert mail.outbox == []
    notice = Notification.objects.get(recipient=designer)
    assert notice.is_unread and not notice.by_email  # in the studio only


def test_a_lost_plan_is_replaced_by_the_next_notification(dan, committed):
    EmailDigest.objects.create(user=dan, due_at=timezone.now() - timedelta(hours=1))
    with committed():
        mention(dan, "Still there?")
    assert len(mail.outbox) == 1
