"""The gallery through the API: the team's images under the pages' filters, a page at a
time; and review, for reviewers and owners with a token that may change things."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from studio.accounts.models import Membership, Team
from studio.api.models import AccessToken
from studio.audit.models import Entry
from studio.generation.models import GeneratedImage
from tests.support.factories import create_generated_image, create_membership, create_user

pytestmark = pytest.mark.django_db


def secret_of(user, team, scope: str = "read") -> str:
    return AccessToken.issue(user, team, name="script", scope=scope)[1]


def call(client, method: str, path: str, secret: str, **data):
    send = getattr(client, method)
    kwargs = {"content_type": "application/json"} if method == "post" else {}
    return send(f"/api/v1{path}", data, headers={"Authorization": f"Bearer {secret}"}, **kwargs)


def test_the_teams_images_newest_first_filtered_and_a_page_at_a_time(
    client, team, designer, outsider
):
    member = Membership.objects.get(user=designer)
    now = timezone.now()
    made = [
        create_generated_image(member, prompt=f"Kite {i}", at=now - timedelta(minutes=i))
        for i in range(50)
    ]
    create_generated_image(Membership.objects.get(user=outsider), prompt="Not theirs", at=now)
    GeneratedImage.objects.filter(pk=made[3].pk).update(review_state="approved")
    secret = secret_of(designer, team)
    first = call(client, "get", "/gallery", secret).json()
    assert [image["prompt"] for image in first["images"][:2]] == ["Kite 0", "Kite 1"]
    assert len(first["images"]) == 48 and first["next"]
    second = call(client, "get", "/gallery", secret, after=first["next"]).json()
    assert [image["prompt"] for image in second["images"]] == ["Kite 48", "Kite 49"]
    assert second["next"] is None
    approved = call(client, "get", "/gallery", secret, state="approved").json()
    assert [image["id"] for image in approved["images"]] == [made[3].pk]
    words = call(client, "get", "/gallery", secret, q="Kite 4").json()["images"]
    assert {image["prompt"] for image in words} >= {"Kite 4", "Kite 40", "Kite 49"}
    assert all(image["prompt"] != "Not theirs" for image in first["images"] + second["images"])
    assert first["images"][0]["author"] == "dan" and first["images"][0]["model_label"]


def test_review_needs_a_reviewer_and_a_token_that_may_change_things(client, team, designer):
    reviewer = create_user(username="rita")
    create_membership(team=team, user=reviewer, role=Membership.Role.REVIEWER)
    image = create_generated_image(Membership.objects.get(user=designer))
    path = f"/images/{image.pk}/review"

    read_only = call(client, "post", path, secret_of(reviewer, team), state="approved")
    assert read_only.status_code == 403
    assert read_only.json()["message"].startswith("This token may only read")
    designer_token = secret_of(designer, team, "generate")
    refused = call(client, "post", path, designer_token, state="approved")
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "forbidden",
        "message": "Only reviewers and owners set review states.",
        "field": None,
    }
    writer = secret_of(reviewer, team, "generate")
    wrong = call(client, "post", path, writer, state="lovely")
    assert wrong.status_code == 422 and wrong.json()["field"] == "state"
    done = call(client, "post", path, writer, state="approved")
    assert done.status_code == 200 and done.json()["review_state"] == "approved"
    image.refresh_from_db()
    assert image.review_state == "approved" and image.reviewed_by == reviewer
    entry = Entry.objects.get(action=Entry.Action.REVIEW)
    assert entry.changes["review_state"] == ["in_review", "approved"]


def test_nobody_reviews_another_teams_image(client, team, designer, outsider):
    image = create_generated_image(Membership.objects.get(user=designer))
    other = Team.objects.get(slug="other")
    answer = call(
        client,
        "post",
        f"/images/{image.pk}/review",
        secret_of(outsider, other, "generate"),
        state="rejected",
    )
    assert answer.status_code == 404
    image.refresh_from_db()
    assert image.review_state == "in_review"
