"""A set of images on wan2.7: the form's set mode (its number as an upper bound, the sizes
and options a set may have, the palette refused), and a set run through the pipeline
against the emulator, charged for the images the model made."""

from __future__ import annotations

from django.urls import reverse

from studio.dashscope.catalog import Kind, get_model
from studio.generation.forms import PALETTE_WITH_SET, GenerationForm
from studio.generation.models import Job, QuotaCharge

PRO = get_model("wan2.7-image-pro")


def form_for(kind: Kind = Kind.TEXT_TO_IMAGE, **data: object) -> GenerationForm:
    values = {"model": PRO.name, "prompt": "A fox mascot", "size": "1K", "n": 6}
    return GenerationForm(PRO, values | data, kind=kind)


def test_a_set_asks_for_up_to_twelve_and_sends_enable_sequential():
    single = GenerationForm(PRO)
    assert [v for v, _ in single.fields["n"].choices] == [1, 2, 3, 4]
    assert "thinking_mode" in single.fields and "4K" in dict(single.fields["size"].choices)
    form = form_for(enable_sequential="on")
    assert form.makes_set
    assert [v for v, _ in form.fields["n"].choices] == list(range(1, 13))
    # Thinking and 4K are for one image from a prompt alone, as the provider says.
    assert "thinking_mode" not in form.fields
    assert "4K" not in dict(form.fields["size"].choices)
    assert form.is_valid(), form.errors
    assert form.parameters() == {
        "n": 6,
        "size": "1K",
        "enable_sequential": True,
        "watermark": False,
    }
    assert not form_for(enable_sequential="on", n=13).is_valid()
    assert not form_for(n=6).is_valid()  # six is for a set only


def test_a_palette_with_a_set_is_refused_next_to_the_palette():
    form = form_for(enable_sequential="on", color_palette="#111111\n#222222\n#333333")
    assert not form.is_valid()
    assert form.errors["color_palette"] == [PALETTE_WITH_SET]


def test_turning_a_set_on_starts_at_four_and_off_keeps_what_fits(client, member):
    client.force_login(member.user)
    data = {"model": PRO.name, "prompt": "A fox", "n": "1", "size": "1K"}
    page = client.post(
        reverse("generate"), data | {"enable_sequential": "on", "redraw": "enable_sequential"}
    ).content.decode()
    assert '<option value="4" selected>' in page
    assert "at most" in page and 'name="thinking_mode"' not in page
    # The size chosen stays; so does the prompt.
    assert '<option value="1K" selected>' in page and "A fox" in page
    page = client.post(
        reverse("generate"), data | {"n": "9", "redraw": "enable_sequential"}
    ).content.decode()
    assert '<option value="4" selected>' in page
    assert "makes at most 4 images a request without a set; you chose 9" in page
    assert not Job.objects.exists()


def test_a_set_is_charged_for_the_images_the_model_made(pipeline, member):
    # The emulator's model stops a set short at half when the prompt says #fewer.
    job = pipeline.submit(
        member,
        model=PRO.name,
        prompt="A fox mascot, front, side and back #fewer",
        parameters={"n": 6, "size": "1K", "enable_sequential": True},
    )
    reserved = {c.kind: c.images for c in job.quota_charges.all()}
    assert reserved == {QuotaCharge.Kind.RESERVE: 6}
    pipeline.drive()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.images.count() == 3 and job.images_charged == 3
    assert job.set_text == "A set of 3: the model made 3 of up to 6"
    assert [image.index for image in job.result_tiles()] == [0, 1, 2]


def test_a_full_set_fills_its_places(pipeline, member):
    job = pipeline.submit(
        member,
        model=PRO.name,
        prompt="A product series",
        parameters={"n": 5, "size": "1K", "enable_sequential": True},
    )
    pipeline.drive()
    job.refresh_from_db()
    assert job.images.count() == 5 and job.images_charged == 5
    assert job.set_text == "A set of 5"
