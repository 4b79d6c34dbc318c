"""The media store on S3-compatible storage, against a real S3 endpoint on localhost.

moto's server answers the S3 API over HTTP on 127.0.0.1, and the studio reaches it through
django-storages and boto3 as it would reach AWS S3 or Alibaba OSS. moto leaves out two
rules of a private bucket that these tests rely on, so a thin layer in front of it applies
them as S3 does: a request must be signed, and a presigned URL holds only as it was
signed and only until it lapses.

Without moto the tests that need the endpoint are skipped, unless STUDIO_REQUIRE_S3=1
(CI), where a missing moto is a failure.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from studio.audit.models import Entry
from studio.generation.models import GeneratedImage, Job, StagedImage
from studio.generation.worker.results import store_result
from studio.settings import s3_origins, s3_storage
from tests.support.emulation import ROOT, make_image
from tests.support.factories import create_membership, create_team, create_user
from tests.support.pipeline import Pipeline, upload
from tests.support.s3 import no_local_files
from tests.support.waiting import wait_for

T2I = {"model": "wan2.6-t2i", "prompt": "A lighthouse", "parameters": {"size": "1280*1280", "n": 1}}


def follow(response) -> httpx.Response:
    """What the browser does with the studio's redirect: fetch the signed URL itself."""
    assert response.status_code == 302, response.status_code
    return httpx.get(response["Location"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inline_image_hashes(body: Any) -> list[str]:
    """The sha256 of each inline image in a request body as the emulator logged it."""
    if isinstance(body, dict):
        if "inline_image" in body:
            return [body["sha256"]]
        return [h for value in body.values() for h in inline_image_hashes(value)]
    if isinstance(body, list):
        return [h for value in body for h in inline_image_hashes(value)]
    return []


def finished_job(pipeline: Pipeline, member, **overrides) -> Job:
    job = pipeline.submit(member, **(T2I | overrides))
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    return job


# -- The worker stores results in the bucket ----------------------------------------------


def test_the_worker_stores_each_image_and_its_thumbnail_in_the_bucket(
    bucket, pipeline, member, media
):
    job = finished_job(pipeline, member, parameters={"size": "1280*1280", "n": 2})

    assert bucket.object_keys() == [
        f"results/{job.pk}/0.png",
        f"results/{job.pk}/1.png",
        f"thumbs/{job.pk}/0.webp",
        f"thumbs/{job.pk}/1.webp",
    ]
    for image in job.images.all():
        original = bucket.read(image.image.name)
        assert sha256(original) == image.sha256 and len(original) == image.bytes
        with Image.open(io.BytesIO(bucket.read(image.thumbnail.name))) as thumb:
            assert thumb.format == "WEBP" and max(thumb.size) == 512
        # Private: the studio grants nobody but the bucket's owner anything.
        grants = bucket.client.get_object_acl(Bucket=bucket.name, Key=image.image.name)
        assert all("URI" not in g["Grantee"] for g in grants["Grants"]), grants["Grants"]
    assert no_local_files(media)


def test_a_retried_store_replaces_its_own_objects_instead_of_adding_beside_them(
    bucket, pipeline, member
):
    job = finished_job(pipeline, member)
    again = make_image(640, 640, color=(10, 200, 30))

    stored = store_result(job, 0, again)

    assert (stored.image.name, stored.thumbnail.name) == (
        f"results/{job.pk}/0.png",
        f"thumbs/{job.pk}/0.webp",
    )
    assert bucket.object_keys() == [f"results/{job.pk}/0.png", f"thumbs/{job.pk}/0.webp"]
    assert bucket.read(f"results/{job.pk}/0.png") == again
    assert GeneratedImage.objects.get(job=job).sha256 == sha256(again)


# -- Serving: access first, then a short-lived signed URL ---------------------------------


def test_a_team_member_is_sent_to_a_signed_url_that_gives_the_exact_image(
    bucket, pipeline, member, client
):
    job = finished_job(pipeline, member)
    image = job.images.get()
    client.force_login(create_membership(team=member.team, user=create_user()).user)

    response = client.get(reverse("job-image", args=[job.pk, 0, "original"]))

    assert response.status_code == 302
    # Kept by the browser for half the URL's 300 s, so it never follows a lapsed one.
    assert response["Cache-Control"] == "private, max-age=150"
    location = response["Location"]
    assert location.startswith(f"{bucket.endpoint}/{bucket.name}/results/{job.pk}/0.png?")
    signed = parse_qs(urlsplit(location).query)
    assert signed["X-Amz-Expires"] == ["300"] and signed["X-Amz-Signature"]
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert sha256(fetched.content) == image.sha256
    assert fetched.headers["Content-Type"] == "image/png"
    # The image is kept as long as the redirect to it: opening the gallery again fetches
    # neither.
    assert fetched.headers["Cache-Control"] == "private, max-age=150"

    thumb = follow(client.get(reverse("job-image", args=[job.pk, 0, "thumb"])))
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    assert thumb.content == bucket.read(image.thumbnail.name)
    # The object itself, unsigned, is refused: only the studio's URLs open it.
    assert httpx.get(location.split("?")[0]).status_code == 403


def test_a_signed_url_stops_working_when_its_lifetime_runs_out(
    bucket, pipeline, member, client, settings
):
    job = finished_job(pipeline, member)
    bucket.use(settings, url_seconds=2)
    client.force_login(member.user)

    location = client.get(reverse("job-image", args=[job.pk, 0, "original"]))["Location"]

    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["2"]
    assert httpx.get(location).status_code == 200
    # The lifetime is part of what was signed: lengthening it breaks the signature.
    stretched = httpx.get(location.replace("X-Amz-Expires=2", "X-Amz-Expires=3600"))
    assert stretched.status_code == 403 and b"SignatureDoesNotMatch" in stretched.content
    # Signed for 2 s: asked again until its lifetime has run out.
    wait_for(lambda: httpx.get(location).status_code == 403, 15, interval=0.2)
    expired = httpx.get(location)
    assert expired.status_code == 403 and b"Request has expired" in expired.content


def test_outsiders_and_anonymous_visitors_get_no_signed_url(bucket, pipeline, member, client):
    job = finished_job(pipeline, member)
    url = reverse("job-image", args=[job.pk, 0, "original"])

    anonymous = client.get(url)
    client.force_login(
        create_membership(team=create_team(name="Far"), user=create_user(username="far")).user
    )
    outsider = client.get(url)

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("login"))
    assert bucket.endpoint not in anonymous["Location"]
    assert outsider.status_code == 404
    assert "Location" not in outsider and b"X-Amz-" not in outsider.content


def test_a_download_is_saved_under_its_name_and_audited(bucket, pipeline, member, client):
    job = finished_job(pipeline, member)
    client.force_login(member.user)
    name = f"wan2.6-t2i-{str(job.pk)[:8]}-1.png"

    saved = follow(client.get(reverse("job-image", args=[job.pk, 0, "original"]) + "?download=1"))
    shown = follow(client.get(reverse("job-image", args=[job.pk, 0, "original"])))

    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert shown.headers["Content-Disposition"] == f'inline; filename="{name}"'
    assert Entry.objects.filter(action=Entry.Action.DOWNLOAD).count() == 1


# -- Reference images of an edit ----------------------------------------------------------


def test_staged_images_and_a_jobs_inputs_live_in_the_bucket_and_are_served_from_it(
    bucket, member, client, media
):
    client.force_login(member.user)
    photo = SimpleUploadedFile("photo.png", make_image(800, 600, color=(40, 90, 160)))
    card = client.post(reverse("stage-input"), {"file": photo, "model": "wan2.7-image-pro"})
    assert card.status_code == 200
    staged = StagedImage.objects.get()
    key = f"staged/{member.user_id}/{staged.pk}.png"
    assert bucket.object_keys() == [key] and sha256(bucket.read(key)) == staged.sha256

    shown = follow(client.get(reverse("staged-image", args=[staged.pk])))
    assert shown.status_code == 200 and sha256(shown.content) == staged.sha256
    assert shown.headers["Content-Type"] == "image/png"
    other = create_membership(team=member.team, user=create_user(username="eve"))
    client.force_login(other.user)
    assert client.get(reverse("staged-image", args=[staged.pk])).status_code == 404

    client.force_login(member.user)
    sent = client.post(
        reverse("edit"),
        {
            "model": "wan2.7-image-pro",
            "prompt": "Make image 1 warmer",
            "size": "2K",
            "n": "1",
            "input": [str(staged.pk)],
            f"boxes-{staged.pk}": "100,100,400,300",
        },
    )
    job = Job.objects.get()
    assert sent["Location"] == reverse("job-detail", args=[job.pk])
    item = job.inputs.get()
    assert f"inputs/{job.pk}/1.png" in bucket.object_keys()
    served = follow(client.get(reverse("job-input", args=[job.pk, 1])))
    assert sha256(served.content) == item.sha256
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "X-Amz-" not in page and bucket.endpoint not in page
    assert no_local_files(media)

    StagedImage.purge(staged.created_at + StagedImage.KEEP_FOR * 2)
    assert key not in bucket.object_keys()


def test_an_edit_reads_its_inputs_from_the_bucket_and_results_feed_new_edits(
    bucket, pipeline, member, client
):
    job = finished_job(
        pipeline,
        member,
        model="wan2.7-image-pro",
        prompt="Put the vase from image 1 on a table",
        parameters={"size": "1K", "n": 1},
        inputs=[upload(900, 600, color=(30, 30, 30))],
    )
    # What the provider received is the input as stored in the bucket.
    submitted = next(e for e in pipeline.emulator.requests if e["method"] == "POST")
    original = job.inputs.get()
    assert original.image.name.startswith(f"inputs/{job.pk}/1.")
    assert sha256(bucket.read(original.image.name)) == original.sha256
    assert inline_image_hashes(submitted["body"]) == [original.sha256]

    client.force_login(member.user)
    used = client.post(reverse("use-as-input", args=[job.pk, 0]))
    staged = StagedImage.objects.get()
    assert used.status_code == 302 and str(staged.pk) in used["Location"]
    assert f"staged/{member.user_id}/{staged.pk}.png" in bucket.object_keys()

    remix = client.get(reverse("edit") + f"?remix={job.pk}", follow=True)
    assert remix.status_code == 200 and StagedImage.objects.count() == 2
    retried = client.post(reverse("job-retry", args=[job.pk]))
    again = Job.objects.exclude(pk=job.pk).get()
    assert retried["Location"] == reverse("job-detail", args=[again.pk])
    copy = again.inputs.get()
    assert copy.image.name.startswith(f"inputs/{again.pk}/1.")
    assert bucket.read(copy.image.name) == bucket.read(original.image.name)


# -- The gallery ----------------------------------------------------------------------------


def test_the_gallery_zip_holds_the_originals_from_the_bucket(bucket, pipeline, member, client):
    job = finished_job(pipeline, member, parameters={"size": "1280*1280", "n": 2})
    images = list(job.images.all())
    client.force_login(member.user)

    response = client.post(
        reverse("gallery-bulk"), {"action": "zip", "image": [i.pk for i in images]}
    )

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    manifest = json.loads(archive.read("manifest.json"))
    assert [m["missing"] for m in manifest] == [False, False]
    assert [sha256(archive.read(m["file"])) for m in manifest] == [i.sha256 for i in images]


def test_pages_allow_images_from_the_bucket_and_never_carry_a_signed_url(
    bucket, pipeline, member, client
):
    job = finished_job(pipeline, member)
    image = job.images.get()
    client.force_login(member.user)

    for url in (
        reverse("gallery"),
        reverse("gallery-image", args=[image.pk]),
        reverse("job-detail", args=[job.pk]),
        reverse("gallery-compare") + f"?image={image.pk}&image={image.pk}",
    ):
        response = client.get(url)
        html = response.content.decode()
        img_src = next(
            part.split()[1:]
            for part in response["Content-Security-Policy"].split(";")
            if part.split()[0] == "img-src"
        )
        assert bucket.endpoint in img_src, (url, img_src)
        assert "X-Amz-" not in html and "Signature=" not in html, url
        assert bucket.endpoint not in html, url

    member.user.is_staff = member.user.is_superuser = True
    member.user.save()
    admin_page = client.get(reverse("admin:generation_job_change", args=[job.pk]))
    assert admin_page.status_code == 200
    html = admin_page.content.decode()
    assert image.image.name in html  # where it is stored, as text
    assert "X-Amz-" not in html and "Signature=" not in html


@pytest.mark.django_db(transaction=True)
def test_a_browser_follows_the_redirects_to_the_bucket_within_the_policy(bucket, page, worker):
    """Chromium loads the results of a job made in the form from the bucket; the page
    fixture fails the test if the Content-Security-Policy blocked anything."""
    from tests.support.browser import screenshot

    fetched: list[tuple[str, int]] = []
    page.on("response", lambda response: fetched.append((response.url, response.status)))
    page.goto("/generate/")
    page.get_by_label("Wan 2.6", exact=False).first.check()
    page.get_by_text("Between 1280×1280 and 1440×1440").wait_for()
    page.fill("textarea[name=prompt]", "A lighthouse kept in a bucket")
    page.select_option("select[name=n]", "1")
    page.get_by_role("button", name="Generate").click()
    # In place, among the results: the thumbnail comes from the bucket.
    image = page.locator(".result-entry img[data-tile=image]").first
    image.wait_for(timeout=30_000)
    image.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    screenshot(page, "s3-finished-job")

    job = Job.objects.get()
    thumb_key = f"{bucket.endpoint}/{bucket.name}/thumbs/{job.pk}/0.webp?"
    assert any(url.startswith(thumb_key) and status == 200 for url, status in fetched), fetched
    assert f"thumbs/{job.pk}/0.webp" in bucket.object_keys()


# -- Settings: from the environment to the store and the policy ---------------------------


def load_media_settings(**env: str) -> dict[str, Any]:
    """The media store and img-src that the settings make from these variables, read in a
    fresh interpreter."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DASHSCOPE_", "STUDIO_", "AWS_"))
    }
    script = (
        "import json, studio.settings as s; print(json.dumps({'storage': s.STORAGES['default'],"
        " 'img_src': s.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']},"
        # botocore's Config, by its public attributes
        " default=lambda o: {k: v for k, v in vars(o).items() if not k.startswith('_')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_a_bucket_media_stay_on_the_filesystem_and_the_policy_is_unchanged():
    loaded = load_media_settings()

    assert loaded["storage"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert loaded["img_src"] == ["'self'", "data:", "blob:"]


def test_a_bucket_in_the_environment_puts_media_on_s3_with_private_short_urls():
    loaded = load_media_settings(
        STUDIO_S3_BUCKET="studio-media",
        STUDIO_S3_ENDPOINT_URL="https://oss-cn-hangzhou.aliyuncs.com",
        STUDIO_S3_REGION="cn-hangzhou",
        STUDIO_S3_ACCESS_KEY_ID="LTAIexample",
        STUDIO_S3_SECRET_ACCESS_KEY="example-secret",
        STUDIO_S3_URL_SECONDS="120",
        STUDIO_S3_ADDRESSING_STYLE="virtual",
    )

    assert loaded["storage"]["BACKEND"] == "storages.backends.s3.S3Storage"
    options = loaded["storage"]["OPTIONS"]
    assert options["bucket_name"] == "studio-media"
    assert options["endpoint_url"] == "https://oss-cn-hangzhou.aliyuncs.com"
    assert options["region_name"] == "cn-hangzhou"
    client = options["client_config"]
    assert client["s3"] == {"addressing_style": "virtual"} and client["signature_version"] == "s3v4"
    # A bucket that does not answer fails a save in about a minute, inside the task timeout.
    assert (client["connect_timeout"], client["read_timeout"]) == (5, 30)
    assert client["retries"]["max_attempts"] == 3
    assert (options["access_key"], options["secret_key"]) == ("LTAIexample", "example-secret")
    assert options["querystring_auth"] is True and options["querystring_expire"] == 120
    assert options["default_acl"] is None and options["file_overwrite"] is True
    assert loaded["img_src"] == [
        "'self'",
        "data:",
        "blob:",
        "https://studio-media.oss-cn-hangzhou.aliyuncs.com",
    ]


def test_keys_may_be_left_to_the_machines_role_and_the_lifetime_defaults_to_five_minutes():
    options = load_media_settings(STUDIO_S3_BUCKET="studio-media", STUDIO_S3_REGION="eu-west-1")[
        "storage"
    ]["OPTIONS"]

    assert options["access_key"] is None and options["secret_key"] is None
    assert options["endpoint_url"] is None and options["querystring_expire"] == 300


@pytest.mark.parametrize(
    "config",
    [
        {"endpoint_url": "https://oss-cn-hangzhou.aliyuncs.com", "addressing_style": "virtual"},
        {"endpoint_url": "https://oss-cn-hangzhou.aliyuncs.com", "addressing_style": "auto"},
        {"endpoint_url": "http://127.0.0.1:9000", "addressing_style": "auto"},
        {"endpoint_url": "https://minio.example.com", "addressing_style": "path"},
        {"region": "eu-west-1", "addressing_style": "auto"},
        {"region": "eu-west-1", "addressing_style": "virtual"},
        {"region": "eu-west-1", "addressing_style": "path"},
        {"region": "us-east-1", "addressing_style": "auto"},
        {"addressing_style": "auto"},
    ],
)
def test_the_policy_allows_the_origin_that_signed_urls_point_at(config):
    from storages.backends.s3 import S3Storage

    options = s3_storage(
        bucket="studio-media", access_key_id="AKIAEXAMPLE", secret_access_key="x", **config
    )["OPTIONS"]
    url = urlsplit(S3Storage(**options).url("results/job/0.png"))

    assert f"{url.scheme}://{url.netloc}" in s3_origins(bucket="studio-media", **config)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("STUDIO_S3_ADDRESSING_STYLE", "sideways"), ("STUDIO_S3_URL_SECONDS", "0")],
)
def test_a_bad_s3_setting_stops_the_studio_with_its_name(variable, value):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STUDIO_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import studio.settings"],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "true", "STUDIO_S3_BUCKET": "b", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and variable in result.stderr
