"""`manage.py media_check`: the media store against the database, with real files."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from PIL import Image

from studio.dashscope.catalog import CATALOG
from studio.generation.models import GeneratedImage, Job
from studio.generation.services import create_job, stage_image
from studio.generation.worker.results import store_result
from tests.support.emulation import make_image
from tests.support.pipeline import upload
from tests.support.s3 import no_local_files

EDIT = {
    "model": "wan2.7-image-pro",
    "prompt": "Put the vase from image 1 on the table",
    "parameters": {"size": "2K", "n": 2},
}


def media_check(*args: str) -> tuple[int, str]:
    """The command's exit status and what it printed."""
    out = io.StringIO()
    try:
        call_command("media_check", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def studio(member, media) -> dict:
    """An edit job with one reference image and two stored results, and a staged image."""
    job = create_job(membership=member, inputs=[upload(900, 600)], **EDIT)
    images = [store_result(job, index, make_image(640, 480)) for index in range(2)]
    staged = stage_image(
        member, make_image(700, 700), name="chair.png", rule=CATALOG["wan2.7-image-pro"].images
    )
    return {"job": job, "images": images, "staged": staged, "root": Path(media)}


def age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_a_clean_store_passes(studio):
    status, out = media_check()

    assert status == 0, out
    assert "No problems." in out
    assert "Rows: images 2, inputs 1, staged 1." in out


def test_a_missing_original_is_reported_and_its_row_kept(studio):
    image = studio["images"][0]
    (studio["root"] / image.image.name).unlink()

    status, out = media_check("--repair")

    assert status == 1
    assert f"missing image: {image.image.name} (GeneratedImage {image.pk})" in out
    assert GeneratedImage.objects.filter(pk=image.pk).exists()
    # Its thumbnail still has a row that refers to it: not an orphan, not deleted.
    assert (studio["root"] / image.thumbnail.name).exists()


def test_a_missing_thumbnail_is_rebuilt_from_the_original(studio):
    image = studio["images"][1]
    thumbnail = studio["root"] / image.thumbnail.name
    thumbnail.unlink()

    assert media_check()[0] == 1
    status, out = media_check("--repair")

    assert status == 0, out
    assert f"missing thumbnail: {image.thumbnail.name}" in out and "rebuilt" in out
    with Image.open(thumbnail) as rebuilt:
        assert rebuilt.format == "WEBP"
        assert rebuilt.size == (512, 384)
    assert media_check()[0] == 0


def test_an_orphan_is_deleted_only_once_it_is_old_enough(studio):
    orphan = studio["root"] / "results" / "0b7c0d56-0000-4000-8000-000000000000" / "0.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(make_image(64, 64))

    # Just written: perhaps a result whose row is being committed right now.
    status, out = media_check("--repair")
    assert status == 0, out
    assert orphan.exists()
    assert "left: too recent" in out

    age(orphan, 30)
    assert media_check("--repair", "--older-than", "48")[0] == 0
    assert orphan.exists()
    status, out = media_check()
    assert status == 1
    assert "orphan file: results/0b7c0d56-0000-4000-8000-000000000000/0.png" in out

    status, out = media_check("--repair")
    assert status == 0, out
    assert not orphan.exists()
    # Files that rows refer to are never orphans, however old.
    for image in studio["images"]:
        assert (studio["root"] / image.image.name).exists()


def test_an_old_file_with_a_row_is_never_deleted(studio):
    image = studio["images"][0]
    for name in (image.image.name, image.thumbnail.name, studio["staged"].image.name):
        age(studio["root"] / name, 1000)

    assert media_check("--repair")[0] == 0

    for name in (image.image.name, image.thumbnail.name, studio["staged"].image.name):
        assert (studio["root"] / name).exists()


def test_changed_bytes_are_reported_and_left_alone(studio):
    flipped, cut = studio["images"]
    original = studio["root"] / flipped.image.name
    data = bytearray(original.read_bytes())
    data[-20] ^= 0xFF  # same size, different content
    original.write_bytes(bytes(data))
    (studio["root"] / cut.image.name).write_bytes(bytes(data[:100]))

    status, out = media_check("--repair")

    assert status == 1
    assert f"changed image: {flipped.image.name} (GeneratedImage {flipped.pk})" in out
    assert "sha256 differs from the database" in out
    assert f"100 bytes, the database says {cut.bytes}" in out
    assert original.read_bytes() == bytes(data)  # evidence is kept


def test_missing_reference_and_staged_files_are_reported(studio):
    job: Job = studio["job"]
    (reference,) = job.inputs.all()
    (studio["root"] / reference.image.name).unlink()
    (studio["root"] / studio["staged"].image.name).unlink()

    status, out = media_check()

    assert status == 1
    assert f"missing input: {reference.image.name} (JobInput {reference.pk})" in out
    assert f"missing staged: {studio['staged'].image.name}" in out


def test_the_json_report_lists_each_finding(studio):
    (studio["root"] / studio["images"][0].thumbnail.name).unlink()

    status, out = media_check("--json")

    assert status == 1
    report = json.loads(out)
    assert report["problems"] == 1
    assert report["dirs"] == ["results", "thumbs", "inputs", "staged"]
    (finding,) = report["findings"]
    assert finding["problem"] == "missing" and finding["what"] == "thumbnail"
    assert finding["resolved"] is False


def test_it_works_on_a_storage_without_local_paths(member, settings):
    """Only the storage API, never a path: what an S3 bucket offers."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    from django.core.files.storage import default_storage

    job = create_job(membership=member, inputs=[upload(900, 600)], **EDIT)
    image = store_result(job, 0, make_image(640, 480))
    default_storage.delete(image.thumbnail.name)
    default_storage.save("thumbs/elsewhere/9.webp", ContentFile(b"stray"))

    status, out = media_check("--repair")

    assert status == 0, out
    assert default_storage.exists(image.thumbnail.name)
    assert "orphan file: thumbs/elsewhere/9.webp" in out
    assert "rebuilt" in out


def test_it_checks_and_repairs_a_bucket(bucket, member, media):
    job = create_job(membership=member, inputs=[upload(900, 600)], **EDIT)
    kept, changed = (store_result(job, index, make_image(640, 480)) for index in range(2))
    bucket.client.delete_object(Bucket=bucket.name, Key=kept.thumbnail.name)
    bucket.client.put_object(Bucket=bucket.name, Key="results/stray/0.png", Body=b"stray")

    status, out = media_check("--repair", "--older-than", "0")

    assert status == 0, out
    keys = bucket.object_keys()
    assert kept.thumbnail.name in keys  # rebuilt
    assert "results/stray/0.png" not in keys  # deleted
    assert kept.image.name in keys and changed.image.name in keys
    assert no_local_files(media)

    bucket.client.put_object(Bucket=bucket.name, Key=changed.image.name, Body=b"not the image")
    status, out = media_check("--repair")
    assert status == 1
    assert f"changed image: {changed.image.name}" in out
    assert bucket.read(changed.image.name) == b"not the image"
