"""Brand kits on the server: kept by owners with every value checked against the kit's
model, applied on Generate and Edit, remembered by the jobs that used them, audited."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from studio.accounts.models import Membership
from studio.audit.models import Entry
from studio.dashscope.catalog import Kind, get_model
from studio.generation.kits import applied_values
from studio.generation.models import BrandKit, Job, KitImage, StagedImage
from studio.generation.reports import usage
from tests.support.emulation import make_image
from tests.support.factories import create_generated_image, create_membership, create_user

pytestmark = pytest.mark.django_db

PALETTE = "#1F6FEB 40%\n#F5F1E8 35%\n#222222"


@pytest.fixture
def owner_client(client, owner, media):
    client.force_login(owner)
    return client


def kit_data(**fields) -> dict[str, object]:
    return {
        "name": "Harbour Coffee",
        "prompt_template": "A poster of {subject} on a plain background",
        "prompt_suffix": ", flat colours, no text",
        "negative_prompt": "blurry, watermark",
        "model": "wan2.7-image-pro",
        "size": "2K",
        "color_palette": PALETTE,
        **fields,
    }


def photo(name: str, width: int = 900, height: int = 700) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, make_image(width, height), content_type="image/png")


def make_kit(client, **fields) -> BrandKit:
    images = fields.pop("images", [photo("cup.png"), photo("logo.png", 800, 800)])
    response = client.post(reverse("kit-new"), kit_data(**fields) | {"images": images})
    assert response.status_code == 302, response.content.decode()[:3000]
    return BrandKit.objects.get(name=fields.get("name", "Harbour Coffee"))


def errors(response) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(r'class="field-error"[^>]*>([^<]+)<', response.content.decode())
    ]


def test_an_owner_keeps_a_kit_with_its_images_normalised_once_and_audited(owner_client, team):
    kit = make_kit(owner_client)
    assert kit.team == team
    assert kit.color_palette == [
        {"hex": "#1F6FEB", "ratio": "40.00%"},
        {"hex": "#F5F1E8", "ratio": "35.00%"},
        {"hex": "#222222", "ratio": "25.00%"},
    ]
    images = list(kit.images.all())
    assert [image.name for image in images] == ["cup.png", "logo.png"]
    assert all(image.image.storage.exists(image.image.name) for image in images)
    entry = Entry.objects.get(action=Entry.Action.KIT)
    assert entry.target == "Brand kit Harbour Coffee"
    assert entry.changes["name"] == [None, "Harbour Coffee"]
    assert entry.changes["images"] == [None, ["cup.png", "logo.png"]]
    page = owner_client.get(reverse("kits")).content.decode()
    assert "Harbour Coffee" in page and "Wan 2.7 Image Pro" in page


def test_only_owners_keep_kits_and_everyone_sees_them(client, owner, designer, media):
    client.force_login(owner)
    kit = make_kit(client)
    client.force_login(designer)
    assert client.get(reverse("kit-new")).status_code == 403
    assert client.post(reverse("kit-edit", args=[kit.pk]), kit_data()).status_code == 403
    assert client.post(reverse("kit-delete", args=[kit.pk])).status_code == 403
    page = client.get(reverse("kits")).content.decode()
    edit_link = f'href="{reverse("kit-edit", args=[kit.pk])}"'
    assert "Harbour Coffee" in page and edit_link not in page
    image = kit.images.first()
    assert client.get(reverse("kit-image", args=[kit.pk, image.pk])).status_code == 200


def test_another_teams_kit_is_neither_shown_nor_applied(client, owner, outsider, media):
    client.force_login(owner)
    kit = make_kit(client)
    client.force_login(outsider)
    assert client.get(reverse("kit-edit", args=[kit.pk])).status_code == 404
    image = kit.images.first()
    assert client.get(reverse("kit-image", args=[kit.pk, image.pk])).status_code == 404
    page = client.get(reverse("generate"), {"kit": kit.pk}).content.decode()
    assert 'name="apply_kit"' not in page and 'name="kit"' not in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt_template": "A poster on a plain background"}, "prompt_template", "{subject}"),
        ({"model": "qwen-image-2.0-pro"}, "color_palette", "takes no colour palette"),
        ({"color_palette": "#111111\n#222222"}, "color_palette", "3 to 10 colours"),
        ({"size": "2K", "model": "qwen-image-2.0-pro", "color_palette": ""}, "size", "not a size"),
        ({"size": "huge"}, "size", "width×height"),
    ],
)
def test_a_kit_is_held_to_its_models_rules(owner_client, fields, field, message):
    response = owner_client.post(reverse("kit-new"), kit_data(**fields))
    assert response.status_code == 422
    assert any(message in error for error in errors(response)), errors(response)
    assert not BrandKit.objects.exists()


def test_two_kits_of_one_name_are_refused(owner_client):
    make_kit(owner_client, images=[])
    response = owner_client.post(reverse("kit-new"), kit_data(name="harbour coffee"))
    assert "already has a kit named" in " ".join(errors(response))


def test_a_file_that_is_no_image_saves_nothing(owner_client):
    bad = SimpleUploadedFile("notes.png", b"not a picture", content_type="image/png")
    response = owner_client.post(reverse("kit-new"), kit_data() | {"images": [photo("a.png"), bad]})
    assert response.status_code == 422
    assert any(error.startswith("notes.png: ") for error in errors(response)), errors(response)
    assert not BrandKit.objects.exists() and not KitImage.objects.exists()


def test_applied_on_generate_the_kit_fills_the_form_and_the_job_remembers_it(
    client, owner, designer, media
):
    client.force_login(owner)
    kit = make_kit(client)
    client.force_login(designer)
    page = client.post(
        reverse("generate"),
        {"model": "wan2.6-t2i", "prompt": "a lighthouse", "apply_kit": kit.pk},
        headers={"HX-Request": "true"},
    ).content.decode()
    # The kit's model, its prompt around what was written, its palette, all editable.
    assert re.search(r'value="wan2.7-image-pro"[^>]*checked', page)
    prompt = re.search(r'<textarea name="prompt"[^>]*>([^<]*)<', page)[1]
    assert html.unescape(prompt).strip() == (
        "A poster of a lighthouse on a plain background, flat colours, no text"
    )
    assert "#1F6FEB 40.00%" in page
    assert f'<input type="hidden" name="kit" value="{kit.pk}">' in page
    sent = client.post(
        reverse("generate"),
        {
            "model": "wan2.7-image-pro",
            "prompt": "A poster of a lighthouse, flat colours",
            "size": "2K",
            "n": "1",
            "kit": kit.pk,
        },
    )
    job = Job.objects.get()
    assert sent.status_code == 302
    assert (job.kit, job.kit_name) == (kit, "Harbour Coffee")


def test_the_slot_left_unfilled_is_refused_next_to_the_prompt(client, owner, media):
    client.force_login(owner)
    kit = make_kit(client, images=[])
    response = client.post(
        reverse("generate"),
        {
            "model": "wan2.7-image-pro",
            "prompt": kit.prompt_for(""),
            "size": "2K",
            "n": "1",
            "kit": kit.pk,
        },
    )
    assert "in place of {subject}" in " ".join(errors(response))
    assert not Job.objects.exists()


def test_applied_on_edit_the_kit_adds_its_images_once_marked_from_kit(client, owner, media):
    client.force_login(owner)
    kit = make_kit(client)
    data = {"model": "wan2.7-image-pro", "prompt": "", "apply_kit": kit.pk}
    page = client.post(reverse("edit"), data, headers={"HX-Request": "true"}).content.decode()
    staged = list(StagedImage.objects.order_by("position"))
    assert [s.kit_image.name for s in staged] == ["cup.png", "logo.png"]
    assert page.count(">From kit<") == 2
    # Applied again: the same images stay, not two more.
    ids = {"input": [str(s.pk) for s in staged]}
    client.post(reverse("edit"), data | ids, headers={"HX-Request": "true"})
    assert StagedImage.objects.filter(position__isnull=False).count() == 2
    sent = client.post(
        reverse("edit"),
        {
            "model": "wan2.7-image-pro",
            "prompt": "A poster of the cup in image 1 with the logo of image 2",
            "size": "2K",
            "n": "1",
            "kit": kit.pk,
            **ids,
        },
    )
    assert sent.status_code == 302, errors(sent)
    job = Job.objects.get()
    assert job.kit_name == "Harbour Coffee" and job.inputs.count() == 2
    assert [i.sha256 for i in job.inputs.all()] == [i.sha256 for i in kit.images.all()]


def test_a_kit_changed_or_removed_leaves_past_jobs_as_they_were(client, owner, media):
    client.force_login(owner)
    kit = make_kit(client, images=[])
    membership = Membership.objects.get(user=owner)
    image = create_generated_image(membership, prompt="A poster of a kite, flat colours")
    Job.objects.filter(pk=image.job_id).update(kit=kit, kit_name=kit.name)
    changed = kit_data(name="Harbour Coffee 2027", prompt_suffix=", pastel", color_palette="")
    assert client.post(reverse("kit-edit", args=[kit.pk]), changed).status_code == 302
    job = Job.objects.get(pk=image.job_id)
    assert (job.prompt, job.kit_name) == ("A poster of a kite, flat colours", "Harbour Coffee")
    entry = Entry.objects.filter(action=Entry.Action.KIT).latest("at")
    assert entry.changes["name"] == ["Harbour Coffee", "Harbour Coffee 2027"]
    assert entry.changes["prompt_suffix"] == [", flat colours, no text", ", pastel"]
    client.post(reverse("kit-delete", args=[kit.pk]))
    job.refresh_from_db()
    assert (job.kit, job.kit_name) == (None, "Harbour Coffee")
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Harbour Coffee" in page and "removed since" in page
    removed = Entry.objects.filter(action=Entry.Action.KIT).latest("at")
    assert removed.changes["name"] == ["Harbour Coffee 2027", None]


def test_the_gallery_filters_by_kit_and_usage_groups_by_it(client, owner, media):
    client.force_login(owner)
    kit = make_kit(client, images=[])
    membership = Membership.objects.get(user=owner)
    with_kit = create_generated_image(membership, prompt="A kite with the kit")
    create_generated_image(membership, prompt="A kite without")
    Job.objects.filter(pk=with_kit.job_id).update(kit=kit, kit_name=kit.name, images_charged=1)
    page = client.get(reverse("gallery"), {"kit": kit.pk}).content.decode()
    assert "A kite with the kit" in page and "A kite without" not in page
    assert re.search(rf'<option value="{kit.pk}" selected>Harbour Coffee</option>', page)
    today = date.today()
    rows = {row.key: row for row in usage(today, today, "kit").rows}
    assert rows["Harbour Coffee (acme)"].images == 1 and rows["Harbour Coffee (acme)"].jobs == 1
    assert rows["No kit"].jobs == 1


def test_a_kits_prompt_wraps_the_designers_words_once():
    kit = BrandKit(prompt_template="A poster of {subject}", prompt_suffix=", flat")
    assert kit.prompt_for("a kite") == "A poster of a kite, flat"
    assert kit.prompt_for("") == "A poster of {subject}, flat"
    assert BrandKit(prompt_suffix="in blue").prompt_for("a kite, in blue") == "a kite, in blue"
    assert BrandKit().prompt_for("a kite") == "a kite"


def test_a_viewer_sees_kits_but_cannot_apply_them(client, team, media):
    viewer = create_user(username="val")
    create_membership(team=team, user=viewer, role=Membership.Role.VIEWER)
    client.force_login(viewer)
    assert client.get(reverse("kits")).status_code == 200
    assert client.get(reverse("edit")).status_code == 403


def test_applied_again_or_after_another_kit_the_prompt_wraps_her_words_once():
    poster = BrandKit(
        pk=1, prompt_template="A poster of {subject} on a plain background", prompt_suffix=", flat"
    )
    sticker = BrandKit(pk=2, prompt_template="A die-cut sticker of {subject}", prompt_suffix="")
    once = poster.prompt_for("a lighthouse")
    assert once == "A poster of a lighthouse on a plain background, flat"
    assert poster.prompt_for(once) == once
    assert (
        poster.prompt_for(poster.prompt_for(""))
        == "A poster of {subject} on a plain background, flat"
    )
    spec = get_model("wan2.7-image-pro")
    values = applied_values(sticker, spec, Kind.TEXT_TO_IMAGE, once, previous=poster)
    assert values["prompt"] == "A die-cut sticker of a lighthouse"
    # Words she wrote around the kit's are hers: kept whole inside the new slot.
    edited = "Two boats; " + once
    assert sticker.prompt_for(poster.subject_of(edited)) == f"A die-cut sticker of {edited}"


def test_an_image_replaced_in_one_save_keeps_its_file(
    owner_client, django_capture_on_commit_callbacks
):
    kit = make_kit(owner_client)
    last = kit.images.order_by("position").last()
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("kit-edit", args=[kit.pk]),
            kit_data() | {"remove_image": [str(last.pk)], "images": [photo("new.png", 700, 900)]},
        )
    assert response.status_code == 302
    names = [image.name for image in kit.images.order_by("position")]
    assert names == ["cup.png", "new.png"]
    new = kit.images.get(name="new.png")
    assert new.image.storage.exists(new.image.name)
    assert not last.image.storage.exists(last.image.name)
    assert new.read()[:4] == b"\x89PNG"


def test_no_kit_gives_back_her_words_and_takes_the_kits_images_off_the_form(client, owner, media):
    client.force_login(owner)
    kit = make_kit(client)
    htmx = {"HX-Request": "true"}
    applied = {"model": "wan2.7-image-pro", "prompt": "a lighthouse", "apply_kit": kit.pk}
    client.post(reverse("edit"), applied, headers=htmx)
    staged = [
        str(pk) for pk in StagedImage.objects.order_by("position").values_list("pk", flat=True)
    ]
    form = {
        "model": "wan2.7-image-pro",
        "prompt": kit.prompt_for("a lighthouse"),
        "color_palette": PALETTE,
        "negative_prompt": "blurry, watermark",
        "kit": kit.pk,
        "input": staged,
    }
    # A reload keeps the kit, as it keeps the prompt and the images.
    page = client.get(reverse("edit")).content.decode()
    assert f'<input type="hidden" name="kit" value="{kit.pk}">' in page
    page = client.post(reverse("edit"), form | {"drop_kit": "1"}, headers=htmx).content.decode()
    prompt = re.search(r'<textarea name="prompt"[^>]*>([^<]*)<', page)[1]
    assert html.unescape(prompt).strip() == "a lighthouse"
    assert 'name="kit"' not in page and ">From kit<" not in page
    assert not StagedImage.objects.filter(position__isnull=False).exists()
    assert 'name="kit"' not in client.get(reverse("edit")).content.decode()


def test_a_new_kits_form_starts_empty(owner_client):
    page = owner_client.get(reverse("kit-new")).content.decode()
    assert "[]" not in page and "field-error" not in page


def test_a_designer_is_told_why_not_on_a_page_of_the_studio(client, designer, media):
    client.force_login(designer)
    response = client.get(reverse("kit-new"))
    page = response.content.decode()
    assert response.status_code == 403
    assert "Only the team&#x27;s owners keep its brand kits." in page
    assert 'class="topbar"' in page and "Back to the studio" in page
