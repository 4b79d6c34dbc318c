"""A job's admin page as support staff read it: its pictures, its request as sent, and
its times to the second, also for teams the staff member is not in."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from studio.generation.models import GeneratedImage, Job
from tests.support.factories import create_job_row, create_membership, create_team, create_user


@pytest.fixture
def job(db, settings, tmp_path) -> Job:
    settings.MEDIA_ROOT = tmp_path / "media"
    member = create_membership(team=create_team(name="Pixel"), user=create_user(username="dana"))
    job = create_job_row(
        member,
        prompt="A brass lamp",
        parameters={"size": "1280*1280", "n": 1, "seed": 42},
        status=Job.Status.SUCCEEDED,
        provider_started_at=datetime(2026, 12, 7, 14, 0, 1, tzinfo=UTC),
        provider_finished_at=datetime(2026, 12, 7, 14, 0, 9, tzinfo=UTC),
        usage={"image_count": 1},
    )
    webp = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 160, 60)).save(webp, format="WEBP")
    image = GeneratedImage(
        job=job, team=job.team, index=0, width=1280, height=1280, bytes=9, sha256="0" * 64
    )
    image.image.save("0.png", ContentFile(b"not read here"), save=False)
    image.thumbnail.save("0.webp", ContentFile(webp.getvalue()), save=False)
    image.save()
    return job


@pytest.fixture
def support(db):
    user = create_user(username="support", is_staff=True)  # in no team
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    return user


def test_the_job_page_shows_its_pictures_request_and_times(client, job, support):
    client.force_login(support)
    page = client.get(reverse("admin:generation_job_change", args=[job.pk])).content.decode()
    picture = reverse("admin:generation_job_file", args=[job.pk, "result", 0])
    assert f'src="{picture}"' in page and 'alt="Result 1"' in page
    assert "&quot;seed&quot;: 42" in page and '<pre class="admin-json">' in page
    assert "2026-12-07 14:00:01" in page and "2026-12-07 14:00:09" in page
    assert f'href="/jobs/{job.pk}/"' in page  # view on site
    served = client.get(picture)
    assert served.status_code == 200 and served["Content-Type"] == "image/webp"


def test_the_pictures_are_for_staff_who_may_view_jobs(client, job):
    picture = reverse("admin:generation_job_file", args=[job.pk, "result", 0])
    assert client.get(picture).status_code == 302  # to the admin's sign-in
    client.force_login(create_user(username="clerk", is_staff=True))  # no view_job
    assert client.get(picture).status_code == 403
    admin = create_user(username="support2", is_staff=True)
    admin.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(admin)
    assert (
        client.get(reverse("admin:generation_job_file", args=[job.pk, "input", 1])).status_code
        == 404
    )
