"""Uploads and the files the studio serves: what is not an accepted image is refused, an
image is stored as its pixels only, and nothing served is something a browser would run."""

from __future__ import annotations

import itertools

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from studio.generation.models import GeneratedImage, StagedImage
from tests.support.emulation import make_image
from tests.support.factories import named_patterns
from tests.support.pages import body_of, url_arguments

pytestmark = pytest.mark.django_db

NOT_IMAGES = {
    "page.png": b"<!doctype html><html><body><script>alert(document.cookie)</script>",
    "logo.png": b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    # PNG's magic bytes in front of a page: sniffed as PNG, read as nothing.
    "polyglot.png": b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",
    "animation.png": b"GIF89a\x01\x00\x01\x00<script>alert(1)</script>",
}


@pytest.mark.parametrize("name", NOT_IMAGES)
def test_a_file_that_is_not_an_accepted_image_is_refused_whatever_its_name(
    client, designer, settings, tmp_path, name
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(designer)
    response = client.post(
        reverse("stage-input"),
        {
            "file": SimpleUploadedFile(name, NOT_IMAGES[name], "image/png"),
            "model": "wan2.7-image-pro",
        },
        HTTP_HX_REQUEST="true",
    )
    card = response.content.decode()
    assert response.status_code == 422 and "data-refused" in card
    assert "<script>" not in card and "onload=" not in card
    assert not StagedImage.objects.exists()
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.*"))


def test_an_image_with_a_script_behind_it_is_stored_as_its_pixels_only(
    client, designer, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(designer)
    polyglot = make_image(600, 600) + b"<script>alert(1)</script>"
    response = client.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("x.png", polyglot), "model": "wan2.7-image-pro"},
    )
    assert response.status_code == 200
    served = client.get(reverse("staged-image", args=[StagedImage.objects.get().pk]))
    body = body_of(served)
    assert served["Content-Type"] == "image/png" and b"<script>" not in body
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"].startswith("default-src 'none'")


def test_every_file_the_studio_serves_is_an_image_the_browser_will_not_run(
    pipeline, member, client
):
    from tests.support.pipeline import upload

    client.force_login(member.user)
    pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    pipeline.submit(
        member,
        model="wan2.7-image-pro",
        prompt="The boat in image 1, at night",
        parameters={"size": "2K", "n": 1},
        inputs=[upload(800, 600)],
    )
    pipeline.drive()
    client.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("cup.png", make_image(800, 600)), "model": "wan2.7-image-pro"},
    )
    samples = url_arguments(indexes=[0])
    files = {}
    for name, pattern in named_patterns().items():
        converters = list(pattern.pattern.converters)
        for values in itertools.product(*(samples[c] for c in converters)):
            url = reverse(name, kwargs=dict(zip(converters, values, strict=True)))
            for query in ("", "?download=1"):
                response = client.get(url + query)
                kind = response.get("Content-Type", "").split(";")[0]
                if response.status_code == 200 and kind not in ("text/html", "application/json"):
                    files[(name, url + query)] = response
    image = GeneratedImage.objects.first()
    files[("gallery-bulk", "zip")] = client.post(
        reverse("gallery-bulk"), {"action": "zip", "image": [image.pk]}
    )

    for (_name, url), response in files.items():
        assert response["X-Content-Type-Options"] == "nosniff", url
        if response["Content-Type"] in ("image/png", "image/jpeg", "image/webp"):
            assert response["Content-Security-Policy"].startswith("default-src 'none'"), url
        else:
            assert response["Content-Disposition"].startswith("attachment;"), url
    assert {name for name, _ in files} == {"staged-image", "job-input", "job-image", "gallery-bulk"}
    downloads = [r for (n, url), r in files.items() if n == "job-image" and "download" in url]
    assert downloads and all(r["Content-Disposition"].startswith("attachment;") for r in downloads)
