"""A piece of mixed text and images on wan2.6-image, as the forms ask for it: offered on
Generate for that mode only, a switch on Edit; the mode's limits (no n, at most 5 pictures,
its sizes, 0 or 1 reference image); what is sent; and every refusal next to its field."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from studio.dashscope.catalog import Kind, get_model
from studio.generation.forms import GenerationForm
from studio.generation.models import Job, StagedImage
from tests.support.emulation import make_image

WAN26 = get_model("wan2.6-image")
PIECE = "Text and images: a short illustrated piece"


@pytest.fixture
def designer_client(client, member, media):
    client.force_login(member.user)
    return client


def piece_form(kind: Kind = Kind.TEXT_TO_IMAGE, **data: object) -> GenerationForm:
    values: dict[str, object] = {"model": WAN26.name, "prompt": "A bread recipe", "size": ""}
    values |= {"max_images": "3", "enable_interleave": "on"} | data
    return GenerationForm(WAN26, values, kind=kind)


def field(page: str, name: str) -> str:
    """The markup of one field of the page's form."""
    match = re.search(rf'<div class="field field-{name}[ "].*?\n</div>', page, re.S)
    assert match, f"no field {name}"
    return match[0]


def selected(page: str, name: str) -> str:
    return re.search(r'<option value="([^"]*)" selected>', field(page, name))[1]


def stage(client, width: int, height: int) -> str:
    upload = SimpleUploadedFile("photo.png", make_image(width, height))
    client.post(reverse("stage-input"), {"file": upload, "model": WAN26.name})
    return str(StagedImage.objects.order_by("-created_at").values_list("pk", flat=True)[0])


def test_on_generate_the_model_is_offered_for_pieces_only_and_says_so(designer_client):
    page = designer_client.get(reverse("generate") + "?model=wan2.6-image").content.decode()
    # The picker's hint says what the model does here.
    assert "A short text illustrated with up to 5 pictures." in page
    switch = field(page, "enable_interleave")
    assert PIECE in switch and "checked" in switch and "disabled" in switch
    assert "From a prompt alone this model writes only this" in switch
    # The mode's limits: no number of images, at most 5 pictures (5 first), W×H sizes.
    assert 'name="n"' not in page and 'name="prompt_extend"' not in page
    assert selected(page, "max_images") == "5"
    assert "The most pictures the piece may hold" in field(page, "max_images")
    assert selected(page, "size") == "1280*1280"
    assert "1K" not in field(page, "size")
    assert "Between 768×768 and 1280×1280 pixels in total." in field(page, "custom_size")
    cost = re.sub(r"\s+", " ", page[page.index("data-cost>") :][:400])
    assert "at most <strong data-cost-images>5 images</strong>" in cost
    assert "Only the pictures the piece holds are charged" in cost


def test_the_other_models_on_generate_are_unchanged(designer_client):
    page = designer_client.get(reverse("generate") + "?model=wan2.6-t2i").content.decode()
    assert 'name="enable_interleave"' not in page and 'name="max_images"' not in page
    assert 'name="n"' in page


def test_a_piece_sends_one_answer_of_at_most_k_pictures():
    form = piece_form(seed="7", negative_prompt="no text")
    assert form.makes_piece and form.limits.label == "Wan 2.6 Image (text and images)"
    assert form.is_valid(), form.errors
    assert form.parameters() == {
        "enable_interleave": True,
        "max_images": 3,
        "n": 1,
        "size": "1280*1280",
        "seed": 7,
        "watermark": False,
    }
    # On Generate the mode cannot be turned off: not sending the switch changes nothing.
    unticked = piece_form(enable_interleave="")
    assert unticked.is_valid() and unticked.parameters()["enable_interleave"] is True


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        ({"max_images": "6"}, "max_images", "Select a valid choice"),
        ({"size": "1K"}, "size", "Select a valid choice"),
        ({"custom_size": "big"}, "custom_size", "Write the size as width×height"),
    ],
)
def test_the_forms_own_refusals_are_next_to_their_field(data, name, words):
    form = piece_form(**data)
    assert not form.is_valid()
    assert words in " ".join(form.errors[name])


def test_a_size_past_the_modes_range_is_refused_next_to_it(designer_client):
    data = {"model": WAN26.name, "prompt": "A bread recipe", "max_images": "2"}
    page = designer_client.post(reverse("generate"), data | {"custom_size": "1600×1600"})
    body = page.content.decode()
    error = field(body, "custom_size")
    assert "field-error" in error and "1280×1280" in error
    assert not Job.objects.exists()


def test_a_piece_sent_from_generate_reserves_its_most_pictures(designer_client, member):
    data = {"model": WAN26.name, "prompt": "A bread recipe", "max_images": "4", "size": ""}
    response = designer_client.post(reverse("generate"), data)
    job = Job.objects.get()
    assert response.status_code == 302
    assert job.kind == Job.Kind.TEXT_TO_IMAGE and job.is_streamed
    assert job.parameters["enable_interleave"] is True and job.parameters["max_images"] == 4
    assert job.parameters["n"] == 1 and job.images_requested == 4


def test_switching_models_keeps_what_was_typed(designer_client):
    data = {"model": WAN26.name, "prompt": "A bread recipe", "negative_prompt": "no text"}
    data |= {"seed": "11", "max_images": "2", "switch_model": "1"}
    page = designer_client.post(reverse("generate"), data, HTTP_HX_REQUEST="true")
    body = page.content.decode()
    assert selected(body, "max_images") == "2" and "A bread recipe" in body
    away = designer_client.post(
        reverse("generate"), data | {"model": "wan2.6-t2i"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'name="max_images"' not in away and "A bread recipe" in away
    assert "no text" in away and 'value="11"' in away


def test_on_edit_the_switch_redraws_the_form_for_a_piece_and_back(designer_client):
    base = {"model": WAN26.name, "prompt": "A bread recipe", "size": "2K", "n": "3"}
    page = designer_client.post(
        reverse("edit"), base | {"enable_interleave": "on", "redraw": "enable_interleave"}
    ).content.decode()
    assert "checked" in field(page, "enable_interleave")
    assert "disabled" not in field(page, "enable_interleave")
    assert 'name="n"' not in page and selected(page, "max_images") == "5"
    # The size chosen for an edit is not one of a piece's: the piece's default instead.
    assert selected(page, "size") == "" and "Like the image, or 1280×1280" in page
    assert "Optional: up to 1 image for Wan 2.6 Image (text and images)" in page
    assert "A bread recipe" in page and "at most" in page
    back = designer_client.post(
        reverse("edit"), base | {"max_images": "2", "redraw": "enable_interleave"}
    ).content.decode()
    assert 'name="max_images"' not in back and 'name="n"' in back
    assert "A bread recipe" in back and "Up to 4 images for Wan 2.6 Image:" in back


def test_on_edit_a_second_image_is_set_aside_with_why(designer_client):
    first, second = stage(designer_client, 800, 600), stage(designer_client, 640, 640)
    data = {"model": WAN26.name, "prompt": "A recipe with this bread", "input": [first, second]}
    page = designer_client.post(
        reverse("edit"), data | {"enable_interleave": "on", "redraw": "enable_interleave"}
    ).content.decode()
    assert re.findall(r'name="aside" value="([0-9a-f-]+)"', page) == [second]
    assert "Not sent with Wan 2.6 Image (text and images), which takes at most 1 image." in page
    # Sent as shown: the first image alone goes with the piece.
    response = designer_client.post(
        reverse("edit"), data | {"enable_interleave": "on", "max_images": "2", "aside": second}
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.kind == Job.Kind.EDIT and job.inputs.count() == 1
    assert job.parameters["enable_interleave"] is True and job.parameters["max_images"] == 2


def test_on_edit_two_images_sent_at_once_are_refused_next_to_the_images(designer_client):
    ids = [stage(designer_client, 800, 600), stage(designer_client, 640, 640)]
    data = {"model": WAN26.name, "prompt": "A recipe", "input": ids, "max_images": "2"}
    page = designer_client.post(reverse("edit"), data | {"enable_interleave": "on"})
    body = page.content.decode()
    assert "Wan 2.6 Image (text and images) takes at most 1 image; remove 1." in body
    assert not Job.objects.exists()


def test_on_edit_a_piece_needs_no_image(designer_client):
    data = {"model": WAN26.name, "prompt": "A recipe", "enable_interleave": "on"}
    response = designer_client.post(reverse("edit"), data | {"max_images": "1", "size": ""})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.is_streamed and not job.inputs.exists() and job.images_requested == 1
    # Without the mode, an edit still needs an image.
    page = designer_client.post(reverse("edit"), {"model": WAN26.name, "prompt": "A", "n": "1"})
    assert "Add at least one reference image to edit." in page.content.decode()


def test_a_remixed_piece_opens_in_its_mode(designer_client, member):
    data = {"model": WAN26.name, "prompt": "A bread recipe", "max_images": "3"}
    designer_client.post(reverse("generate"), data | {"custom_size": "1024×1024"})
    job = Job.objects.get()
    page = designer_client.get(reverse("generate") + f"?remix={job.pk}").content.decode()
    assert selected(page, "max_images") == "3" and "A bread recipe" in page
    assert 'value="1024×1024"' in field(page, "custom_size")


def test_after_a_piece_is_sent_from_edit_the_form_stays_a_piece(designer_client):
    data = {"model": WAN26.name, "prompt": "A recipe", "enable_interleave": "on"}
    page = designer_client.post(
        reverse("edit"), data | {"max_images": "2", "size": ""}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert Job.objects.get().is_streamed
    assert "checked" in field(page, "enable_interleave") and selected(page, "max_images") == "2"
    assert "Sent: the piece appears under" in page and "A recipe" in page
