"""A set of images in the gallery: one stacked card that opens to its images, selected,
reviewed, starred, put on a board, zipped and compared as a unit or one image at a time,
and stepped through in the viewer."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from studio.accounts.models import Membership
from studio.gallery.models import Board, Star
from studio.generation.models import GeneratedImage, Job
from tests.support.factories import (
    create_generated_image,
    create_job_row,
    create_membership,
    create_team,
    create_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    team = create_team(name="Pixel Works", slug="pixel")
    found = {
        name: create_membership(team=team, user=create_user(username=name), role=role)
        for name, role in (
            ("reviewer", Membership.Role.REVIEWER),
            ("designer", Membership.Role.DESIGNER),
        )
    }
    other = create_team(name="Elsewhere", slug="elsewhere")
    found["outsider"] = create_membership(
        team=other, user=create_user(username="outsider"), role=Membership.Role.OWNER
    )
    return found


def a_set(member: Membership, count: int = 3, *, prompt: str = "A fox, three views") -> Job:
    """A finished set of `count` images, asked for as a set of up to six."""
    job = create_job_row(
        member,
        model="wan2.7-image-pro",
        prompt=prompt,
        status=Job.Status.SUCCEEDED,
        parameters={"size": "1K", "n": 6, "enable_sequential": True},
        images_requested=6,
        created_at=timezone.now() - timedelta(minutes=1),
    )
    for index in range(count):
        create_generated_image(member, job=job, index=index, at=job.created_at)
    return job


def cards(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-image="(\d+)"', page)]


def test_a_set_is_one_stacked_card_that_opens_to_its_images(client, people):
    designer = people["designer"]
    job = a_set(designer)
    single = create_generated_image(designer, prompt="A lamp")
    client.force_login(designer.user)
    page = client.get(reverse("gallery")).content.decode()
    first = job.images.get(index=0)
    assert cards(page) == [single.pk, first.pk]
    assert "Set of 3" in page
    opened = f"?job={job.pk}"
    assert opened in page
    inside = client.get(reverse("gallery") + opened).content.decode()
    # In the set's own order.
    assert cards(inside) == list(job.images.order_by("index").values_list("pk", flat=True))
    assert "A set of 3: the model made 3 of up to 6" in inside
    assert "Set of 3" not in inside  # opened: no card stands for the others


def test_a_filter_shows_the_set_by_its_first_image_that_matches(client, people):
    designer = people["designer"]
    job = a_set(designer)
    third = job.images.get(index=2)
    third.review_state = GeneratedImage.Review.APPROVED
    third.save()
    client.force_login(designer.user)
    page = client.get(reverse("gallery"), {"state": "approved"}).content.decode()
    assert cards(page) == [third.pk]


def test_another_teams_set_opens_to_nothing(client, people):
    theirs = a_set(people["outsider"], prompt="Their set")
    client.force_login(people["designer"].user)
    page = client.get(reverse("gallery"), {"job": str(theirs.pk)}).content.decode()
    assert cards(page) == []
    assert "Their set" not in page


def test_a_ticked_set_is_reviewed_starred_and_boarded_as_a_unit(client, people):
    job = a_set(people["designer"])
    single = create_generated_image(people["designer"], prompt="A lamp")
    theirs = a_set(people["outsider"])
    client.force_login(people["reviewer"].user)
    sets = [str(job.pk), str(theirs.pk)]  # another team's set is quietly left out
    client.post(reverse("gallery-bulk"), {"action": "state", "state": "approved", "set": sets})
    states = set(job.images.values_list("review_state", flat=True))
    assert states == {GeneratedImage.Review.APPROVED}
    assert set(theirs.images.values_list("review_state", flat=True)) != states
    client.post(reverse("gallery-bulk"), {"action": "star", "set": sets, "image": [single.pk]})
    starred = set(Star.objects.filter(user=people["reviewer"].user).values_list("image", flat=True))
    assert starred == {*job.images.values_list("pk", flat=True), single.pk}
    board = Board.objects.create(team=job.team, name="Mascots", created_by=people["designer"].user)
    client.post(reverse("gallery-bulk"), {"action": "board", "board": board.pk, "set": sets})
    assert board.images.count() == 3


def test_one_image_of_a_set_is_reviewed_on_its_own(client, people):
    job = a_set(people["designer"])
    second = job.images.get(index=1)
    client.force_login(people["reviewer"].user)
    client.post(
        reverse("gallery-bulk"), {"action": "state", "state": "approved", "image": [second.pk]}
    )
    approved = job.images.filter(review_state=GeneratedImage.Review.APPROVED)
    assert list(approved) == [second]


def test_a_zip_of_a_set_holds_each_of_its_images(client, people, media):
    job = a_set(people["designer"])
    for image in job.images.all():
        image.image.save(f"{image.index}.png", ContentFile(f"png-{image.index}".encode()))
    client.force_login(people["designer"].user)
    response = client.post(reverse("gallery-bulk"), {"action": "zip", "set": [str(job.pk)]})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert [archive.read(m["file"]) for m in manifest] == [b"png-0", b"png-1", b"png-2"]


def test_a_set_of_two_is_compared_side_by_side(client, people):
    job = a_set(people["designer"], count=2)
    client.force_login(people["designer"].user)
    page = client.post(reverse("gallery-compare"), {"set": [str(job.pk)]}).content.decode()
    for image in job.images.all():
        assert f"/jobs/{job.pk}/images/{image.index}/original" in page


def test_the_viewer_steps_through_the_set(client, people):
    job = a_set(people["designer"])
    second = job.images.get(index=1)
    client.force_login(people["designer"].user)
    page = client.get(reverse("gallery-image", args=[second.pk])).content.decode()
    assert "2 of 3 in this set" in page
    for image in job.images.all():
        assert reverse("gallery-image", args=[image.pk]) in page
    assert "Set of images" in page and "up to 6" in page


def test_a_set_with_images_in_the_trash_counts_what_is_left(client, people):
    job = a_set(people["designer"])
    client.force_login(people["designer"].user)
    job.images.filter(index=0).update(deleted_at=timezone.now())
    page = client.get(reverse("gallery")).content.decode()
    assert cards(page) == [job.images.get(index=1).pk]
    assert "Set of 2" in page
    job.images.filter(index=1).update(deleted_at=timezone.now())
    page = client.get(reverse("gallery")).content.decode()
    assert cards(page) == [job.images.get(index=2).pk]
    assert "Set of" not in page  # one image left is shown as one


def test_the_viewer_over_an_opened_set_browses_it_in_order(client, people):
    job = a_set(people["designer"], count=4)
    # Stored in another order than the set's, as downloads may finish.
    for image, minutes in zip(job.images.order_by("index"), (3, 1, 4, 2), strict=True):
        image.created_at = timezone.now() - timedelta(minutes=minutes)
        image.save()
    client.force_login(people["designer"].user)
    third = job.images.get(index=2)
    page = client.get(reverse("gallery-image", args=[third.pk]), {"job": str(job.pk)})
    text = page.content.decode()
    newer = job.images.get(index=1).pk
    older = job.images.get(index=3).pk
    assert f'data-nav="newer" href="/gallery/images/{newer}/' in text
    assert f'data-nav="older" href="/gallery/images/{older}/' in text
