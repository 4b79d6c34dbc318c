"""The forms walk the catalog: every limit refused next to its field, and nothing they
accept is refused by the emulator.

For every model and every kind of job it does, the test submits what the form offers (each
size, the most images, the longest prompts, the largest seed, a full palette, the most
reference images with the most regions) and sends each job it creates to the emulator,
which must not answer 400. Then it submits one value past each limit and expects a message
next to the field that broke it, and no job.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from studio.accounts.models import QuotaCounter
from studio.dashscope.catalog import MODELS, SEED_MAX, Kind, ModelSpec, Option
from studio.generation.forms import GenerationForm
from studio.generation.models import Job, StagedImage
from studio.generation.sizes import size_choices
from tests.support import prompts
from tests.support.emulation import Emulated, make_image

CASES = [
    (spec, kind)
    for spec in MODELS
    for kind in (Kind.TEXT_TO_IMAGE, Kind.EDIT)
    if kind in spec.kinds
]


def case_id(case: tuple[ModelSpec, Kind]) -> str:
    return f"{case[0].name}-{case[1].value}"


@pytest.fixture
def designer_client(client, member, media):
    member.team.member_jobs_in_flight = 1000
    member.team.save()
    client.force_login(member.user)
    return client


def url(kind: Kind) -> str:
    return reverse("edit" if kind == Kind.EDIT else "generate")


def staged_inputs(client, spec: ModelSpec, count: int) -> list[str]:
    for number in range(count):
        side = 600 + number * 10
        response = client.post(
            reverse("stage-input"),
            {"file": _file(side, side), "model": spec.name},
        )
        assert response.status_code == 200, response.content.decode()[:300]
    rows = StagedImage.objects.order_by("-created_at").values_list("pk", flat=True)[:count]
    return [str(pk) for pk in reversed(rows)]


def _file(width: int, height: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("in.png", make_image(width, height))


def base_data(spec: ModelSpec, kind: Kind, client) -> dict:
    choices = size_choices(spec, kind)
    data = {"model": spec.name, "prompt": "A red chair", "size": choices[0][0], "n": spec.n.min}
    if kind == Kind.EDIT:
        ids = staged_inputs(client, spec, 1)
        data["input"] = ids
    return data


def send_to_emulator(emulator: Emulated, job: Job) -> None:
    spec = job.model
    from studio.dashscope.catalog import get_model

    model = get_model(spec)
    endpoint = model.async_endpoint or model.sync_endpoint
    response = emulator.post_request(job.to_generation_request(), endpoint)
    assert response.status_code == 200, response.text


def accepted(client, kind: Kind, data: dict, emulator: Emulated) -> None:
    response = client.post(url(kind), data)
    page = response.content.decode()
    assert response.status_code == 302, _errors(page) or page[:500]
    job = Job.objects.get()
    send_to_emulator(emulator, job)
    job.delete()
    QuotaCounter.objects.all().delete()


def refused(client, kind: Kind, data: dict, field: str, words: str = "") -> None:
    page = client.post(url(kind), data).content.decode()
    assert not Job.objects.exists(), f"{field}: a job was created"
    marker = f"field-{field} has-error" if not field.startswith("card") else "input-card has-error"
    assert marker in page, f"no error next to {field}: {_errors(page)}"
    if words:
        assert words in page, _errors(page)


def _errors(page: str) -> list[str]:
    import re

    return re.findall(r'class="field-error"[^>]*>([^<]*)<', page)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_everything_the_form_offers_is_accepted_by_the_emulator(case, designer_client, emulated):
    spec, kind = case
    client = designer_client
    for value, _label in size_choices(spec, kind):
        accepted(client, kind, base_data(spec, kind, client) | {"size": value}, emulated)
    accepted(client, kind, base_data(spec, kind, client) | {"n": spec.n.max}, emulated)
    # As the provider counts: an emoji is one character, not the two UTF-16 units a
    # browser's maxlength would count; Qwen prompts in tokens.
    longest = {"prompt": prompts.longest(spec)}
    if spec.supports(Option.NEGATIVE_PROMPT):
        longest["negative_prompt"] = "x" * (spec.negative_prompt_max_chars or 0)
    if spec.supports(Option.SEED):
        longest["seed"] = SEED_MAX
    if spec.supports(Option.COLOR_PALETTE):
        high = spec.color_palette_items[1]
        longest["color_palette"] = "\n".join(f"#{i:02X}{i:02X}{i:02X}" for i in range(high))
    for name in ("prompt_extend", "watermark", "thinking_mode"):
        longest[name] = "on"
    accepted(client, kind, base_data(spec, kind, client) | longest, emulated)
    if not spec.size.fixed:
        rule = spec.size
        low = int(rule.min_pixels**0.5)
        high = int(rule.max_pixels_for(has_images=kind == Kind.EDIT) ** 0.5)
        for custom in (f"{low}×{low}", f"{high}×{high}"):
            data = base_data(spec, kind, client) | {"custom_size": custom}
            accepted(client, kind, data, emulated)
    if kind == Kind.EDIT:
        assert spec.images is not None
        ids = staged_inputs(client, spec, spec.images.count[1])
        data = base_data(spec, kind, client) | {"input": ids}
        if spec.supports(Option.BBOX_LIST):
            boxes = "; ".join(["10,10,200,200", "300,300,500,500"][: spec.max_boxes_per_image])
            data |= {f"boxes-{i}": boxes for i in ids}
        accepted(client, kind, data, emulated)


SET_CASES = [(spec, kind) for spec, kind in CASES if spec.n_sequential is not None]


@pytest.mark.parametrize("case", SET_CASES, ids=case_id)
def test_every_set_the_form_offers_is_accepted_and_its_limits_refused(
    case, designer_client, emulated
):
    spec, kind = case
    client = designer_client
    assert spec.n_sequential is not None
    sizes = GenerationForm(spec, kind=kind, initial={"enable_sequential": True}).fields["size"]
    for value, _label in sizes.choices:  # type: ignore[attr-defined]
        most = spec.n_sequential.max if value == sizes.choices[0][0] else 2  # type: ignore[attr-defined]
        data = base_data(spec, kind, client) | {"enable_sequential": "on", "size": value, "n": most}
        accepted(client, kind, data, emulated)

    def data(**changes) -> dict:
        return base_data(spec, kind, client) | {"enable_sequential": "on"} | changes

    refused(client, kind, data(n=spec.n_sequential.max + 1), "n")
    palette = "#111111\n#222222\n#333333"
    refused(client, kind, data(color_palette=palette), "color_palette", "cannot use a colour")
    for tier in spec.size.text_to_image_only_tiers:
        refused(client, kind, data(size=tier), "size")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_limit_is_refused_next_to_its_field(case, designer_client):
    spec, kind = case
    client = designer_client

    def data(**changes) -> dict:
        return base_data(spec, kind, client) | changes

    refused(client, kind, data(prompt=""), "prompt", "This field is required.")
    over = prompts.one_over(spec)
    words = f"The prompt is {spec.prompt_max + 1:,} {spec.prompt_unit}"
    refused(client, kind, data(prompt=over), "prompt", words)
    if spec.supports(Option.NEGATIVE_PROMPT):
        over = "x" * ((spec.negative_prompt_max_chars or 0) + 1)
        refused(client, kind, data(negative_prompt=over), "negative_prompt")
    refused(client, kind, data(n=spec.n.max + 1), "n")
    refused(client, kind, data(n=0), "n")
    if spec.supports(Option.SEED):
        refused(client, kind, data(seed=SEED_MAX + 1), "seed")
        refused(client, kind, data(seed=-1), "seed")
    refused(client, kind, data(size="999*999"), "size")
    if not spec.size.fixed:
        rule = spec.size
        low = int(rule.min_pixels**0.5)
        high = int(rule.max_pixels_for(has_images=kind == Kind.EDIT) ** 0.5)
        refused(client, kind, data(custom_size=f"{low - 1}×{low}"), "custom_size", "pixels")
        refused(client, kind, data(custom_size=f"{high + 1}×{high}"), "custom_size", "pixels")
        refused(client, kind, data(custom_size="twelve"), "custom_size", "width×height")
        if rule.aspect:
            side = int((rule.max_pixels_for(has_images=kind == Kind.EDIT) // 9) ** 0.5)
            wide = f"{side * rule.aspect.high * 2}×{side // 2}"
            refused(client, kind, data(custom_size=wide), "custom_size")
    if spec.supports(Option.COLOR_PALETTE):
        low, high = spec.color_palette_items
        few = "\n".join(["#111111", "#222222"][: low - 1])
        many = "\n".join(f"#{i:02X}0000" for i in range(high + 1))
        refused(client, kind, data(color_palette=few), "color_palette", f"{low} to {high}")
        refused(client, kind, data(color_palette=many), "color_palette", f"{low} to {high}")
        refused(
            client,
            kind,
            data(color_palette="#111111 60%\n#222222 30%\n#333333 30%"),
            "color_palette",
        )
    if kind == Kind.EDIT:
        assert spec.images is not None
        if spec.supports(Option.BBOX_LIST):
            boxes = "; ".join(["1,1,5,5"] * (spec.max_boxes_per_image + 1))
            for text, words in ((boxes, "per image"), ("0,0,601,100", "outside")):
                form = data()
                (only,) = form["input"]
                refused(client, kind, form | {f"boxes-{only}": text}, "card", words)
        for tier in spec.size.text_to_image_only_tiers:
            refused(client, kind, data(size=tier), "size")
        ids = staged_inputs(client, spec, spec.images.count[1] + 1)
        page = client.post(url(kind), data(input=ids)).content.decode()
        assert f"takes at most {spec.images.count[1]} images" in page
        assert not Job.objects.exists()
