"""Reading through the API: the team's models with their limits, a job with its history
and images, and the images' files; each as every role, and nothing of another team."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from studio.accounts.models import Membership, ModelPrice, Team
from studio.api.models import AccessToken
from studio.generation.models import GeneratedImage, Job
from tests.support.factories import create_generated_image

pytestmark = pytest.mark.django_db

ROLES = ["owner", "reviewer", "designer", "viewer"]


@pytest.fixture
def people(team, owner, designer, viewer):
    from tests.support.factories import create_membership, create_user

    reviewer = create_user(username="rita")
    create_membership(team=team, user=reviewer, role=Membership.Role.REVIEWER)
    return {"owner": owner, "reviewer": reviewer, "designer": designer, "viewer": viewer}


def secret_of(user, team, scope: str = "read") -> str:
    return AccessToken.issue(user, team, name="script", scope=scope)[1]


def get(client, path: str, secret: str):
    return client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {secret}"})


def stored(image: GeneratedImage) -> GeneratedImage:
    """The image with an original and a thumbnail on disk."""
    png, webp = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(png, format="PNG")
    Image.new("RGB", (4, 4)).save(webp, format="WEBP")
    image.image.save("x.png", ContentFile(png.getvalue()), save=False)
    image.thumbnail.save("x.webp", ContentFile(webp.getvalue()), save=False)
    image.save()
    return image


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_its_teams_job_with_history_and_images(client, team, people, media, role):
    image = stored(create_generated_image(Membership.objects.get(user=people["designer"])))
    job = image.job
    job.log("Queued: 1 image reserved.")
    secret = secret_of(people[role], team)
    answer = get(client, f"/jobs/{job.pk}", secret)
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == str(job.pk) and body["model_label"] == "Wan 2.6"
    assert body["history"][-1]["message"] == "Queued: 1 image reserved."
    [shown] = body["images"]
    assert shown["id"] == image.pk and shown["original"].endswith(
        f"/api/v1/images/{image.pk}/files/original"
    )
    original = get(client, f"/images/{image.pk}/files/original", secret)
    assert original.status_code == 200 and original["Content-Type"] == "image/png"
    assert b"".join(original.streaming_content)[:4] == b"\x89PNG"
    thumb = get(client, f"/images/{image.pk}/files/thumbnail", secret)
    assert thumb["Content-Type"] == "image/webp"


def test_nothing_of_another_team_by_id_or_by_guessing(client, team, people, outsider, media):
    image = stored(create_generated_image(Membership.objects.get(user=people["designer"])))
    other_team = Team.objects.get(slug="other")
    secret = secret_of(outsider, other_team)
    for path in (
        f"/jobs/{image.job_id}",
        f"/jobs/{uuid.uuid4()}",
        f"/images/{image.pk}/files/original",
        f"/images/{image.pk}/files/thumbnail",
        f"/images/{image.pk + 1000}/files/original",
    ):
        answer = get(client, path, secret)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "not_found"
    # The same person with a token of this team would see it: the token names the team.
    Membership.objects.create(team=team, user=outsider, role=Membership.Role.VIEWER)
    assert get(client, f"/jobs/{image.job_id}", secret).status_code == 404
    assert get(client, f"/jobs/{image.job_id}", secret_of(outsider, team)).status_code == 200


def test_an_image_in_the_trash_is_for_owners_only(client, team, people, media):
    image = stored(create_generated_image(Membership.objects.get(user=people["designer"])))
    from django.utils import timezone

    GeneratedImage.objects.filter(pk=image.pk).update(deleted_at=timezone.now())
    path = f"/images/{image.pk}/files/original"
    assert get(client, path, secret_of(people["designer"], team)).status_code == 404
    assert get(client, path, secret_of(people["owner"], team)).status_code == 200
    job = get(client, f"/jobs/{image.job_id}", secret_of(people["owner"], team)).json()
    assert job["images"] == []  # the job's images as the pages list them: not the trash


def test_the_models_are_the_teams_with_their_limits_and_prices(client, team, people):
    Team.objects.filter(pk=team.pk).update(allowed_models=["wan2.7-image-pro", "qwen-image-plus"])
    ModelPrice.objects.create(model="wan2.7-image-pro", price_per_image="0.05")
    body = get(client, "/models", secret_of(people["viewer"], team)).json()
    assert [m["name"] for m in body] == ["qwen-image-plus", "wan2.7-image-pro"]
    pro = body[1]
    assert pro["label"] == "Wan 2.7 Image Pro"
    assert pro["kinds"] == ["edit", "text-to-image"]
    assert (pro["images_min"], pro["images_max"], pro["regions_per_image"]) == (0, 9, 2)
    assert pro["prompt_max"] == 5000 and pro["prompt_unit"] == "characters"
    assert {"1K", "2K", "4K"} <= {size["value"] for size in pro["sizes"]}
    assert pro["price_per_image"] == "0.0500" and pro["currency"] == "USD"
    assert body[0]["images_max"] is None and body[0]["price_per_image"] is None


def test_the_openapi_description_names_every_operation(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Studio API"
    assert {"/api/v1/me", "/api/v1/models", "/api/v1/jobs/{job_id}"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert client.get("/api/v1/docs").status_code == 200


def test_a_job_of_another_kind_is_read_the_same(client, team, people):
    job = Job.objects.create(
        team=team,
        author=people["designer"],
        kind=Job.Kind.EDIT,
        model="wan2.7-image-pro",
        prompt="Warmer light",
        parameters={"n": 1},
        images_requested=1,
    )
    body = get(client, f"/jobs/{job.pk}", secret_of(people["viewer"], team)).json()
    assert (body["kind"], body["status"], body["images"]) == ("edit", "queued", [])
