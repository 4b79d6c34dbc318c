"""Each kind of notification, from where it happens to the bell's list and the email:
mentions, review states, review requests (the job's end and quotas are in
test_notices.py, from the worker)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from studio.accounts.models import Membership
from studio.gallery.models import ReviewRequest
from studio.generation.models import GeneratedImage
from studio.notifications.models import Kind, Notification, Preference
from studio.notifications.services import plain
from tests.support.factories import create_generated_image, create_membership, create_user

SIGNED = (
    "https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/1/a.png"
    "?Expires=1700000000&OSSAccessKeyId=LTAI5tExample&Signature=abc%2Bdef"
)
KEY = "sk-test-0123456789abcdef"  # the emulator's key, as the tests' settings use it


@pytest.fixture
def people(owner, designer, viewer):
    for user, address in ((owner, "olivia@example.com"), (designer, "dan@example.com")):
        user.email = address
        user.save()
    return owner, designer


@pytest.fixture
def dans_image(team, designer):
    member = Membership.objects.get(team=team, user=designer)
    return create_generated_image(member, prompt="A red chair")


def told(user, kind=None) -> list[Notification]:
    rows = Notification.objects.filter(recipient=user)
    return list(rows.filter(kind=kind) if kind else rows)


def test_a_mention_tells_the_person_in_the_studio_and_by_email(
    client, people, dans_image, committed, emails
):
    owner, designer = people
    client.force_login(owner)
    with committed():
        client.post(
            reverse("gallery-comment", args=[dans_image.pk]), {"body": "@dan the legs, please"}
        )

    [notice] = told(designer)
    assert notice.kind == Kind.MENTION and notice.is_unread
    assert notice.text == "olivia mentioned you on “A red chair”: @dan the legs, please"
    assert notice.link == f"/gallery/images/{dans_image.pk}/"
    assert notice.actor == owner
    assert told(owner) == []  # the author of the comment is not told about it
    [email] = mail.outbox
    assert email.to == ["dan@example.com"]
    assert "olivia mentioned you" in email.body
    assert f"https://studio.example.com/gallery/images/{dans_image.pk}/" in email.body


def test_mentioning_oneself_or_a_stranger_tells_nobody(
    client, people, outsider, dans_image, committed
):
    _owner, designer = people
    client.force_login(designer)
    with committed():
        client.post(reverse("gallery-comment", args=[dans_image.pk]), {"body": "@dan @oscar hi"})

    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_a_review_tells_the_images_author_not_the_reviewer(
    client, people, dans_image, committed, emails
):
    owner, designer = people
    Preference.choose(designer.pk, {Kind.REVIEW: True})
    client.force_login(owner)
    with committed():
        client.post(reverse("gallery-review", args=[dans_image.pk]), {"state": "approved"})

    [notice] = told(designer)
    assert notice.kind == Kind.REVIEW
    assert notice.text == "olivia marked your image “A red chair” Approved."
    assert notice.link == f"/gallery/images/{dans_image.pk}/"
    assert told(owner) == []
    [email] = mail.outbox
    assert "marked your image" in email.body and email.to == ["dan@example.com"]


def test_a_review_of_ones_own_image_tells_nobody(client, team, owner, committed):
    member = Membership.objects.get(team=team, user=owner)
    image = create_generated_image(member)
    client.force_login(owner)
    with committed():
        client.post(reverse("gallery-review", args=[image.pk]), {"state": "approved"})

    assert Notification.objects.count() == 0


def test_reviewing_several_images_at_once_tells_each_author_once(
    client, team, people, dans_image, committed
):
    owner, designer = people
    member = Membership.objects.get(team=team, user=designer)
    second = create_generated_image(member, prompt="A blue chair")
    client.force_login(owner)
    with committed():
        client.post(
            reverse("gallery-bulk"),
            {"action": "state", "state": "rejected", "image": [dans_image.pk, second.pk]},
        )

    assert GeneratedImage.objects.filter(review_state="rejected").count() == 2
    [notice] = told(designer)
    assert notice.text == "olivia marked 2 of your images Rejected."
    assert notice.link == f"/gallery/?author={designer.pk}&state=rejected"


def test_asking_for_a_review_tells_the_reviewer_once(client, people, dans_image, committed, emails):
    owner, designer = people
    client.force_login(designer)
    url = reverse("gallery-review-request", args=[dans_image.pk])
    with committed():
        first = client.post(url, {"reviewer": owner.pk}, HTTP_HX_REQUEST="true")
        again = client.post(url, {"reviewer": owner.pk}, HTTP_HX_REQUEST="true")

    assert "olivia is asked to review it." in first.content.decode()
    assert "olivia was asked already." in again.content.decode()
    assert ReviewRequest.objects.filter(image=dans_image, reviewer=owner).count() == 1
    [notice] = told(owner)
    assert notice.kind == Kind.REVIEW_REQUEST
    assert notice.text == "dan asked you to review “A red chair”."
    [email] = mail.outbox  # on by default: someone is waiting for an answer
    assert email.to == ["olivia@example.com"] and "asked you to review" in email.body


def test_a_review_answers_the_request_and_a_new_round_may_ask_again(
    client, people, dans_image, committed
):
    owner, designer = people
    client.force_login(designer)
    url = reverse("gallery-review-request", args=[dans_image.pk])
    client.post(url, {"reviewer": owner.pk})
    page = client.get(reverse("gallery-image", args=[dans_image.pk])).content.decode()
    assert "Review asked of olivia (by dan)" in page

    client.force_login(owner)
    client.post(reverse("gallery-review", args=[dans_image.pk]), {"state": "approved"})
    client.force_login(designer)
    page = client.get(reverse("gallery-image", args=[dans_image.pk])).content.decode()
    assert "Review asked of" not in page
    client.post(url, {"reviewer": owner.pk})
    assert told(owner, Kind.REVIEW_REQUEST).__len__() == 2


def test_only_owners_and_reviewers_can_be_asked(client, team, people, viewer, dans_image):
    _owner, designer = people
    reviewer = create_user(username="rita")
    create_membership(team=team, user=reviewer, role=Membership.Role.REVIEWER)
    client.force_login(designer)
    page = client.get(reverse("gallery-image", args=[dans_image.pk])).content.decode()
    assert "olivia (owner)" in page and "rita (reviewer)" in page
    assert "vera (" not in page and "dan (" not in page

    answer = client.post(
        reverse("gallery-review-request", args=[dans_image.pk]),
        {"reviewer": viewer.pk},
        HTTP_HX_REQUEST="true",
    )
    assert "Choose an owner or a reviewer" in answer.content.decode()
    assert not ReviewRequest.objects.exists()


def test_a_viewer_may_not_ask_for_reviews(client, people, viewer, dans_image):
    owner, _designer = people
    client.force_login(viewer)
    answer = client.post(
        reverse("gallery-review-request", args=[dans_image.pk]), {"reviewer": owner.pk}
    )
    assert answer.status_code == 403


def test_no_notification_or_email_repeats_a_signed_url_or_the_key(
    client, settings, team, people, committed, emails
):
    settings.DASHSCOPE_API_KEY = KEY
    owner, designer = people
    member = Membership.objects.get(team=team, user=designer)
    image = create_generated_image(member, prompt=f"Like {SIGNED} with {KEY}")
    client.force_login(owner)
    body = f"@dan compare {SIGNED} and {SIGNED.split('://')[1]} key {KEY}"
    with committed():
        client.post(reverse("gallery-comment", args=[image.pk]), {"body": body})
        client.force_login(designer)
        client.post(reverse("gallery-review-request", args=[image.pk]), {"reviewer": owner.pk})

    texts = [n.text for n in Notification.objects.all()]
    assert len(texts) == 2 and len(mail.outbox) == 2
    for text in texts + [email.body for email in mail.outbox]:
        for secret in ("Signature=", "Expires=", "OSSAccessKeyId", "aliyuncs.com", KEY):
            assert secret not in text, (secret, text)


def test_plain_text_is_one_line_cut_to_its_length():
    assert plain("A  chair\non a\tfloor", 100) == "A chair on a floor"
    assert plain("x" * 50, 10) == "xxxxxxxxx…"
