"""The edit form on the server: staged reference images, regions, and every refusal.

Most of this is also what a designer without JavaScript gets: files sent with the form,
regions typed as numbers, cards moved and removed by buttons that submit.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from studio.accounts.models import Membership
from studio.generation.models import Job, StagedImage
from studio.generation.parsers import parse_palette
from tests.support.emulation import make_image
from tests.support.factories import create_membership, create_user
from tests.support.pipeline import Pipeline


@pytest.fixture
def designer_client(client, member, media):
    client.force_login(member.user)
    return client


def upload_file(name: str, width: int, height: int, **kwargs) -> SimpleUploadedFile:
    fmt = kwargs.pop("fmt", "PNG")
    return SimpleUploadedFile(name, make_image(width, height, fmt=fmt, **kwargs))


def stage(client, width: int, height: int, *, model: str = "wan2.7-image-pro", **kwargs):
    return client.post(
        reverse("stage-input"),
        {"file": upload_file("photo.png", width, height, **kwargs), "model": model},
    )


def staged_ids() -> list[str]:
    return [
        str(pk) for pk in StagedImage.objects.order_by("created_at").values_list("pk", flat=True)
    ]


def edit_post(client, ids: list[str], boxes: dict[str, str] | None = None, **fields):
    data = {
        "model": "wan2.7-image-pro",
        "prompt": "Replace the cup in image 2 with the vase from image 1",
        "size": "2K",
        "n": "1",
        "input": ids,
        **{f"boxes-{i}": text for i, text in (boxes or {}).items()},
        **fields,
    }
    return client.post(reverse("edit"), data)


def test_an_image_is_checked_and_normalised_the_moment_it_arrives(designer_client):
    response = stage(designer_client, 900, 700, alpha=True)
    card = response.content.decode()
    assert response.status_code == 200
    staged = StagedImage.objects.get()
    assert (staged.width, staged.height, staged.mime) == (900, 700, "image/png")
    assert f'data-input="{staged.pk}"' in card and 'name="boxes-' in card
    assert "Transparency flattened onto white." in card
    with staged.image.open("rb") as file:
        assert Image.open(io.BytesIO(file.read())).mode == "RGB"


@pytest.mark.parametrize(
    ("width", "height", "words"),
    [
        (200, 600, "each side must be at least 240 pixels"),
        (2500, 250, "aspect ratio must be between 1:8 to 8:1"),
    ],
)
def test_an_image_the_model_cannot_take_is_refused_on_its_card(
    designer_client, width, height, words
):
    response = stage(designer_client, width, height)
    assert response.status_code == 422
    assert words in response.content.decode() and "data-refused" in response.content.decode()
    assert not StagedImage.objects.exists()


def test_a_file_that_is_not_an_image_is_refused(designer_client):
    response = designer_client.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("notes.txt", b"hello"), "model": "wan2.7-image-pro"},
    )
    assert response.status_code == 422 and "cannot be used" in response.content.decode()


def test_staged_images_are_private_to_who_staged_them(designer_client, client, member):
    stage(designer_client, 800, 600)
    staged = StagedImage.objects.get()
    assert designer_client.get(reverse("staged-image", args=[staged.pk])).status_code == 200
    colleague = create_membership(team=member.team, user=create_user(username="cole"))
    client.force_login(colleague.user)
    assert client.get(reverse("staged-image", args=[staged.pk])).status_code == 404
    # Nor can a colleague send it in their own job.
    edit_post(client, [str(staged.pk)])
    assert not Job.objects.exists()


def test_viewers_cannot_stage_or_edit(client, member, media):
    viewer = create_membership(
        team=member.team, user=create_user(username="vic"), role=Membership.Role.VIEWER
    )
    client.force_login(viewer.user)
    assert stage(client, 800, 600).status_code == 403
    assert client.get(reverse("edit")).status_code == 403


def test_an_edit_with_regions_becomes_a_job_with_them(designer_client):
    stage(designer_client, 1600, 1000)
    stage(designer_client, 800, 1200)
    first, second = staged_ids()
    response = edit_post(
        designer_client, [first, second], {first: "10,20,300,400", second: "0,0,800,600; 5,5,50,50"}
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    inputs = list(job.inputs.all())
    assert [(i.position, i.width, i.height) for i in inputs] == [(1, 1600, 1000), (2, 800, 1200)]
    assert inputs[0].boxes == [[10, 20, 300, 400]]
    assert inputs[1].boxes == [[0, 0, 800, 600], [5, 5, 50, 50]]
    assert job.kind == Job.Kind.EDIT and job.parameters["size"] == "2K"
    request = job.to_generation_request()
    assert request.bbox_list == (((10, 20, 300, 400),), ((0, 0, 800, 600), (5, 5, 50, 50)))


@pytest.mark.parametrize(
    ("boxes", "words"),
    [
        ("10,20,300", "four whole numbers"),
        ("1,1,10,10; 20,20,30,30; 40,40,50,50", "at most 2 per image"),
        ("10,10,900,100", "reaches outside the 800×600 image"),
        ("300,300,100,100", "below and to the right"),
    ],
)
def test_a_bad_region_is_refused_on_its_image_and_nothing_is_created(designer_client, boxes, words):
    stage(designer_client, 800, 600)
    (staged,) = staged_ids()
    page = edit_post(designer_client, [staged], {staged: boxes}).content.decode()
    card = page[page.index(f'data-input="{staged}"') :]
    assert words in card[: card.index("</li>")]
    assert not Job.objects.exists()


def test_an_edit_needs_an_image_and_at_most_the_models_number(designer_client):
    page = edit_post(designer_client, []).content.decode()
    assert "Add at least one reference image to edit." in page
    for _ in range(5):
        stage(designer_client, 600, 600, model="wan2.6-image")
    page = edit_post(
        designer_client, staged_ids(), model="wan2.6-image", size="1K"
    ).content.decode()
    assert "Wan 2.6 Image takes at most 4 images; remove 1." in page
    assert not Job.objects.exists()


def test_switching_model_rechecks_every_image_against_the_new_limits(designer_client):
    stage(designer_client, 300, 900)  # fine for wan2.7 (240 px), too small for wan2.5 (384 px)
    (staged,) = staged_ids()
    page = edit_post(
        designer_client,
        [staged],
        {staged: "10,10,100,100"},
        model="wan2.5-i2i-preview",
        switch_model="1",
    ).content.decode()
    assert "each side must be at least 384 pixels" in page
    assert "does not take regions" in page
    page = edit_post(
        designer_client, [staged], model="wan2.5-i2i-preview", size=""
    ).content.decode()
    assert "each side must be at least 384 pixels" in page
    assert not Job.objects.exists()


def test_an_image_too_large_for_the_chosen_model_is_scaled_with_its_regions(designer_client):
    stage(designer_client, 6000, 3000)  # within wan2.7's 8000 px, over wan2.5's 5000
    (staged,) = staged_ids()
    edit_post(
        designer_client, [staged], {staged: "600,300,3000,1500"}, model="wan2.7-image", size="2K"
    )
    wan27 = Job.objects.get()
    assert (wan27.inputs.get().width, wan27.inputs.get().boxes) == (6000, [[600, 300, 3000, 1500]])
    wan27.delete()
    page = edit_post(designer_client, [staged], model="wan2.5-i2i-preview", switch_model="1")
    assert "Will be scaled down to fit Wan 2.5 Edit (preview)" in page.content.decode()
    edit_post(designer_client, [staged], model="wan2.5-i2i-preview", size="")
    item = Job.objects.get().inputs.get()
    assert (item.width, item.height) == (5000, 2500)


def test_cards_move_and_go_without_javascript(designer_client):
    for side in (500, 600, 700):
        stage(designer_client, side, side)
    a, b, c = staged_ids()
    page = edit_post(
        designer_client, [a, b, c], {a: "1,1,50,50"}, move_input=f"{a}:1"
    ).content.decode()
    order = re.findall(r'data-input="([0-9a-f-]+)"', page)
    assert order == [b, a, c]
    assert 'value="1,1,50,50"' in page  # the region went with its image
    page = edit_post(designer_client, [b, a, c], remove_input=b).content.decode()
    assert re.findall(r'data-input="([0-9a-f-]+)"', page) == [a, c]
    assert not Job.objects.exists()
    # The switches stay as set: "Improve my prompt" left unticked, the watermark ticked.
    moved = edit_post(
        designer_client, [a, c], move_input=f"{c}:-1", watermark="on", model="wan2.6-image"
    ).content.decode()
    boxes = dict(re.findall(r'<input type="checkbox" name="(\w+)"([^>]*)>', moved))
    assert "checked" in boxes["watermark"] and "checked" not in boxes["prompt_extend"]


def test_files_sent_with_the_form_are_staged_without_javascript(designer_client):
    response = designer_client.post(
        reverse("edit"),
        {
            "model": "wan2.7-image-pro",
            "prompt": "Brighter",
            "size": "2K",
            "n": "1",
            "add_files": "1",
            "files": [upload_file("a.png", 800, 600), upload_file("tiny.png", 100, 100)],
        },
    )
    page = response.content.decode()
    assert len(staged_ids()) == 1 and "tiny.png: This image is 100×100" in page
    assert "Brighter</textarea>" in page
    (staged,) = staged_ids()
    edit_post(designer_client, [staged], {staged: "0,0,400,300"})
    assert Job.objects.get().inputs.get().boxes == [[0, 0, 400, 300]]


def test_more_files_than_the_model_takes_are_named_and_never_read(designer_client, monkeypatch):
    from studio.generation.views import inputs as views

    read: list[str] = []
    real = views.stage_image

    def counting(membership, data, *, name, rule):
        read.append(name)
        return real(membership, data, name=name, rule=rule)

    monkeypatch.setattr(views, "stage_image", counting)
    files = [upload_file(f"photo-{n}.png", 320, 240) for n in range(1, 31)]
    response = designer_client.post(
        reverse("edit"),
        {"model": "wan2.7-image-pro", "prompt": "Brighter", "add_files": "1", "files": files},
    )
    page = response.content.decode()
    assert read == [f"photo-{n}.png" for n in range(1, 10)]
    assert len(staged_ids()) == 9
    extra = ", ".join(f"photo-{n}.png" for n in range(10, 31))
    assert response.status_code == 200
    assert f"Wan 2.7 Image Pro takes at most 9 images; not added: {extra}." in page


def test_use_as_input_and_remix_start_an_edit_from_a_job(pipeline: Pipeline, member, client, media):
    client.force_login(member.user)
    made = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A vase", parameters={"size": "1280*1280", "n": 1}
    )
    pipeline.drive()
    response = client.post(reverse("use-as-input", args=[made.pk, 0]))
    staged = StagedImage.objects.get()
    assert response["Location"] == f"/edit/?model=wan2.7-image-pro&input={staged.pk}"
    # The image joins the form, and the address names it no more: a reload shows the form.
    shown = client.get(response["Location"])
    assert shown["Location"] == "/edit/?model=wan2.7-image-pro"
    page = client.get(shown["Location"]).content.decode()
    assert f'data-input="{staged.pk}"' in page and 'data-width="1280"' in page

    edit_post(client, [str(staged.pk)], {str(staged.pk): "100,100,600,600"}, prompt="Bluer")
    edited = Job.objects.get(kind=Job.Kind.EDIT)
    remix = client.get(reverse("edit") + f"?remix={edited.pk}")
    assert StagedImage.objects.count() == 2  # the remix has its own copy
    copy = StagedImage.objects.latest("created_at")
    assert "restaged=1" in remix["Location"]
    for _ in range(2):  # a reload shows the same copy rather than staging another
        page = client.get(remix["Location"]).content.decode()
        assert "Bluer</textarea>" in page and 'value="100,100,600,600"' in page
        assert f'data-input="{copy.pk}"' in page
    assert StagedImage.objects.count() == 2


def test_a_remix_leaves_out_an_image_the_model_now_used_cannot_take(designer_client, member):
    stage(designer_client, 1250, 250)  # 5:1, which wan2.7 takes and wan2.5 does not
    edit_post(designer_client, staged_ids(), prompt="Wider")
    edited = Job.objects.get()
    # The team may no longer use wan2.7: the remix falls to the model it may use.
    member.team.allowed_models = ["wan2.5-i2i-preview", "wan2.6-t2i"]
    member.team.save()

    response = designer_client.get(reverse("edit") + f"?remix={edited.pk}", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Image 1 of the job cannot be used with" in page
    assert "data-input=" not in page


def test_the_job_page_shows_each_reference_image_with_its_regions(designer_client):
    stage(designer_client, 1000, 500)
    (staged,) = staged_ids()
    edit_post(designer_client, [staged], {staged: "100,50,600,300"})
    job = Job.objects.get()
    page = designer_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "left: 10.0%; top: 10.0%; width: 50.0%; height: 50.0%" in page
    assert designer_client.get(reverse("job-input", args=[job.pk, 1])).status_code == 200


def test_old_staged_images_are_purged_with_their_files(designer_client, media):
    from datetime import timedelta

    from django.utils import timezone

    stage(designer_client, 800, 600)
    staged = StagedImage.objects.get()
    path = staged.image.path
    assert StagedImage.purge(timezone.now()) == 0
    assert StagedImage.purge(timezone.now() + timedelta(days=1, minutes=1)) == 1
    assert not StagedImage.objects.exists()
    import os

    assert not os.path.exists(path)


def test_an_edit_naming_an_image_no_longer_kept_says_so_and_is_not_sent(designer_client):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(2):
        assert stage(designer_client, 800, 600).status_code == 200
    first, second = staged_ids()
    StagedImage.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(hours=25))
    StagedImage.purge()

    response = edit_post(designer_client, [first, second])
    assert response.status_code == 200
    page = response.content.decode()
    assert "Image 1 of this form is no longer kept" in page and "add it again" in page
    assert not Job.objects.exists()
    # An address naming it (a remix link, an old tab) says the same.
    response = designer_client.get(reverse("edit"), {"input": [first, second]}, follow=True)
    assert "Image 1 of this form is no longer kept" in response.content.decode()


def test_a_palette_is_written_as_colours_with_optional_shares():
    assert parse_palette("#112233\n#445566\n#778899") == [
        {"hex": "#112233", "ratio": "33.33%"},
        {"hex": "#445566", "ratio": "33.33%"},
        {"hex": "#778899", "ratio": "33.34%"},
    ]
    assert parse_palette("#1f6feb 40%, #F5F1E8 35, #222222") == [
        {"hex": "#1F6FEB", "ratio": "40.00%"},
        {"hex": "#F5F1E8", "ratio": "35.00%"},
        {"hex": "#222222", "ratio": "25.00%"},
    ]
    from django import forms

    with pytest.raises(forms.ValidationError, match="must be written #RRGGBB"):
        parse_palette("red")


def test_line_breaks_count_once_against_the_prompt_limit(designer_client):
    stage(designer_client, 800, 600)
    (staged,) = staged_ids()
    prompt = ("a" * 99 + "\r\n") * 50  # 5,000 characters as the browser counts them
    response = edit_post(designer_client, [staged], prompt=prompt)
    assert response.status_code == 302
    # Sent as typed, the last line break too: the count shown is the count checked.
    assert len(Job.objects.get().prompt) == 5000


def test_regions_survive_a_trip_through_a_model_that_does_not_take_them(designer_client):
    stage(designer_client, 800, 600)
    (staged,) = staged_ids()
    page = edit_post(
        designer_client,
        [staged],
        {staged: "10,10,100,100"},
        model="wan2.6-image",
        switch_model="1",
    ).content.decode()
    assert f'type="hidden" name="boxes-{staged}" value="10,10,100,100"' in page
    edit_post(designer_client, [staged], {staged: "10,10,100,100"}, model="wan2.6-image", size="1K")
    assert Job.objects.get().inputs.get().boxes == []  # not sent to a model without regions


def shown_ids(page: str) -> list[str]:
    return re.findall(r'data-input="([0-9a-f-]+)"', page)


def test_the_form_is_kept_for_its_owner_until_used_or_a_day_old(designer_client, member):
    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    for side in (500, 600, 700):
        stage(designer_client, side, side)
    a, b, c = staged_ids()
    assert shown_ids(designer_client.get(reverse("edit")).content.decode()) == [a, b, c]
    # What the page changes by itself (order, regions, an image taken off) is kept.
    remembered = designer_client.post(
        reverse("edit"), {"remember": "1", "input": [c, a, b], f"boxes-{a}": "1,2,30,40"}
    )
    assert remembered.status_code == 204
    page = designer_client.get(reverse("edit")).content.decode()
    assert shown_ids(page) == [c, a, b] and 'value="1,2,30,40"' in page
    designer_client.post(reverse("edit"), {"remember": "1", "input": [c, a], "remove_input": b})
    assert shown_ids(designer_client.get(reverse("edit")).content.decode()) == [c, a]

    # Never anyone else's.
    colleague = create_membership(team=member.team, user=create_user(username="cole"))
    other = Client()
    other.force_login(colleague.user)
    assert shown_ids(other.get(reverse("edit")).content.decode()) == []
    other.post(reverse("edit"), {"remember": "1", "input": [c, a], "remove_input": a})
    assert shown_ids(designer_client.get(reverse("edit")).content.decode()) == [c, a]

    # A day old, it is gone even before the purge runs.
    StagedImage.objects.filter(pk=c).update(created_at=timezone.now() - timedelta(hours=25))
    assert shown_ids(designer_client.get(reverse("edit")).content.decode()) == [a]

    # Used in a job, it leaves the form.
    assert edit_post(designer_client, [a], {a: ""}).status_code == 302
    assert shown_ids(designer_client.get(reverse("edit")).content.decode()) == []


def test_a_switch_sets_aside_what_the_model_cannot_take_and_sending_leaves_it_out(
    designer_client,
):
    for width, height in ((800, 600), (300, 900), (600, 800), (700, 700), (900, 600)):
        stage(designer_client, width, height)
    ids = staged_ids()
    page = edit_post(
        designer_client, ids, model="wan2.5-i2i-preview", switch_model="1"
    ).content.decode()
    assert shown_ids(page) == ids  # every image kept, in its order
    assert page.count('name="aside"') == 2
    assert "Not sent with Wan 2.5 Edit (preview): this image is 300×900" in page
    assert "Not sent with Wan 2.5 Edit (preview), which takes at most 3 images." in page
    aside = [ids[1], ids[4]]
    assert re.findall(r'name="aside" value="([0-9a-f-]+)"', page) == aside

    # Sent as shown: the images set aside stay behind, and stay on the form.
    response = edit_post(designer_client, ids, model="wan2.5-i2i-preview", size="", aside=aside)
    job = Job.objects.get()
    assert response.status_code == 302
    assert [i.width for i in job.inputs.all()] == [800, 600, 700]
    assert shown_ids(designer_client.get(reverse("edit")).content.decode()) == aside
    # Back with a model that takes them, they are sent again.
    page = edit_post(designer_client, aside, switch_model="1").content.decode()
    assert 'name="aside"' not in page and "Not sent" not in page


def test_a_model_picked_without_redrawing_never_leaves_an_image_out(designer_client):
    # Without scripts the model can be picked and the form sent at once: what the page
    # showed as sent is sent, or refused, never quietly cut down.
    for width, height in ((800, 600), (300, 900)):
        stage(designer_client, width, height)
    page = edit_post(designer_client, staged_ids(), model="wan2.5-i2i-preview", size="")
    assert "each side must be at least 384 pixels" in page.content.decode()
    assert not Job.objects.exists()


def test_a_switch_keeps_the_number_of_images_or_says_why_it_changed(designer_client):
    def switch(url: str, model: str, n: str) -> str:
        data = {"model": model, "prompt": "A vase", "n": n, "switch_model": "1"}
        return designer_client.post(url, data, HTTP_HX_REQUEST="true").content.decode()

    def chosen(page: str) -> str:
        return re.search(r'<option value="(\d+)" selected>', page[page.index('name="n"') :])[1]

    page = switch(reverse("generate"), "qwen-image-2.0-pro", "3")
    assert chosen(page) == "3" and "data-n-note" not in page
    page = switch(reverse("generate"), "qwen-image-max", "3")
    assert chosen(page) == "1"
    assert "Qwen-Image Max makes at most 1 image a request; you chose 3." in page
    assert 'aria-describedby="id_n_note"' in page
    page = switch(reverse("edit"), "wan2.6-image", "6")
    assert chosen(page) == "4" and "Wan 2.6 Image makes at most 4 images" in page


def test_an_edit_sent_from_the_page_keeps_the_designer_there(designer_client):
    stage(designer_client, 800, 600)
    stage(designer_client, 640, 640)
    ids = staged_ids()
    data = {
        "model": "wan2.7-image-pro",
        "prompt": "Replace the cup in image 2 with the vase from image 1",
        "size": "2K",
        "n": "2",
        "input": ids,
    }
    page = designer_client.post(reverse("edit"), data, HTTP_HX_REQUEST="true")
    assert page.status_code == 200  # no redirect: the page stays
    html = page.content.decode()
    job = Job.objects.get()
    # The form for the next edit (the images used, the prompt kept) and the results, with
    # this job's two places first, swapped in beside it.
    assert '<form id="edit-form"' in html and "data-input=" not in html
    assert "Replace the cup in image 2" in html
    assert 'hx-swap-oob="outerHTML"' in html
    assert f'data-job="{job.pk}"' in html and html.count('data-tile="waiting"') == 2
    assert "Sent: its 2 images appear under" in html
