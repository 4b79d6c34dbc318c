"""Every documented limit of every model, refused twice: by the client before sending, and
by the emulator with the provider's error shape (HTTP 400 InvalidParameter).

Cases are built per model from its catalog entry, which test_catalog.py checks
against the documents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from studio.dashscope.catalog import MODELS, BodyStyle, ModelSpec, Option
from studio.dashscope.emulator import rules
from studio.dashscope.errors import RequestRefused
from studio.dashscope.types import GenerationRequest, InputImage
from studio.dashscope.validation import check_request
from tests.support import prompts
from tests.support.emulation import Emulated, make_image

_IMAGES: dict[tuple, InputImage] = {}


def image(width: int, height: int, **kwargs) -> InputImage:
    key = (width, height, tuple(sorted(kwargs.items())))
    if key not in _IMAGES:
        _IMAGES[key] = InputImage.from_bytes(make_image(width, height, **kwargs))
    return _IMAGES[key]


def large_bmp(min_bytes: int) -> InputImage:
    # BMP is uncompressed: a plain canvas becomes as many bytes as we need, instantly.
    side = math.isqrt(min_bytes // 3) + 8
    return image(side, side, fmt="BMP")


def emulator_size(spec: ModelSpec) -> rules.SizeRule:
    """Where the emulator's own table (its default reading) starts refusing sizes: read
    from the emulator, not from the client's catalog."""
    model = rules.model_rules(spec.name)
    assert model is not None
    return model.size


def emulator_images(spec: ModelSpec) -> rules.ImageRule:
    model = rules.model_rules(spec.name)
    assert model is not None and model.images is not None
    return model.images


def _endpoint(spec: ModelSpec):
    return spec.async_endpoint or spec.sync_endpoint


def valid_request(spec: ModelSpec) -> GenerationRequest:
    images = (image(1024, 768),) if spec.requires_images else ()
    size = "*".join(map(str, spec.size.fixed[0])) if spec.size.fixed else spec.size.default
    return GenerationRequest(
        model=spec.name,
        prompt="A red chair in a white room",
        images=images,
        size=size,
        n=spec.n.min,
    )


@dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[GenerationRequest], GenerationRequest]
    field: str  # the client's Problem.field
    words: tuple[str, ...]  # what the emulator's message must mention
    emulator_accepts: bool = False  # the emulator is lenient here (unknown or uncertain)


def _square(pixels: int) -> str:
    side = math.isqrt(pixels)
    return f"{side}*{side}"


def cases_for(spec: ModelSpec) -> list[Case]:
    change = replace
    cases = [
        Case("empty prompt", lambda r: change(r, prompt="  "), "prompt", ("prompt",)),
        Case(
            "prompt too long",
            lambda r: change(r, prompt=prompts.one_over(spec)),
            "prompt",
            (f"{spec.prompt_max + 1:,} {spec.prompt_unit}", f"{spec.prompt_max:,}"),
        ),
        Case("n below range", lambda r: change(r, n=0), "n", ("image",)),
        Case("n above range", lambda r: change(r, n=spec.n.max + 1), "n", ("image",)),
        Case("size not W*H", lambda r: change(r, size="1024x1024"), "size", ("size",)),
    ]
    if spec.negative_prompt_max_chars:
        limit = spec.negative_prompt_max_chars
        cases.append(
            Case(
                "negative prompt too long",
                lambda r: change(r, negative_prompt="y" * (limit + 1)),
                "negative_prompt",
                ("negative prompt", str(limit)),
            )
        )
    rule = spec.size
    if rule.fixed:
        cases.append(
            Case(
                "size outside the fixed list",
                lambda r: change(r, size="1024*1024"),
                "size",
                ("1664*928",),
            )
        )
    else:
        has_images = spec.requires_images
        high = rule.max_pixels_for(has_images=has_images)
        cases.append(
            Case(
                "too few pixels",
                lambda r: change(r, size=_square(emulator_size(spec).min_pixels - 4000)),
                "size",
                ("pixels",),
            )
        )
        cases.append(
            Case(
                "too many pixels",
                lambda r: change(r, size=_square(high + 10000)),
                "size",
                ("pixels",),
            )
        )
        if rule.min_pixels > emulator_size(spec).min_pixels:
            cases.append(
                Case(
                    "below the studio's stricter minimum",
                    lambda r: change(r, size=_square(rule.min_pixels - 4000)),
                    "size",
                    (),
                    emulator_accepts=True,
                )
            )
        if rule.aspect is not None:
            ratio = rule.aspect.high / rule.aspect.low + 1
            pixels = (max(rule.min_pixels, 1) + high) // 2
            w, h = round(math.sqrt(pixels * ratio)), round(math.sqrt(pixels / ratio))
            cases.append(
                Case(
                    "aspect out of range", lambda r: change(r, size=f"{w}*{h}"), "size", ("aspect",)
                )
            )
    if "4K" in rule.tiers and spec.images is not None:
        cases.append(
            Case(
                "4K with input images",
                lambda r: change(r, size="4K", images=(image(1024, 768),)),
                "size",
                ("4k",),
            )
        )
    if rule.max_pixels_text_to_image and spec.supports(Option.ENABLE_SEQUENTIAL):
        # A sequence is limited as editing is, by tier (above) and by custom size.
        over = _square(rule.max_pixels + 10000)
        cases.append(
            Case(
                "over 2K in a sequence",
                lambda r: change(r, size=over, enable_sequential=True, n=2),
                "size",
                ("pixels",),
            )
        )
    if spec.images is not None:
        cases += _image_cases(spec)
    else:
        # The legacy text2image body has no place for images at all.
        no_place = _endpoint(spec).body_style is BodyStyle.PROMPT
        cases.append(
            Case(
                "input images to a text-only model",
                lambda r: change(r, images=(image(1024, 768),)),
                "images",
                ("image",),
                emulator_accepts=no_place,
            )
        )
    if spec.supports(Option.BBOX_LIST):
        cases += _box_cases(spec)
    else:
        cases.append(
            Case(
                "regions to a model without them",
                lambda r: change(r, bbox_list=tuple(() for _ in r.images)),
                "bbox_list",
                (),
                emulator_accepts=True,
            )
        )
    if not spec.supports(Option.NEGATIVE_PROMPT):
        cases.append(
            Case(
                "negative prompt to a model without it",
                lambda r: change(r, negative_prompt="blurry"),
                "negative_prompt",
                (),
                emulator_accepts=True,
            )
        )
    return cases


def _image_cases(spec: ModelSpec) -> list[Case]:
    rule = spec.images
    assert rule is not None
    low, high = rule.count
    ok = image(1024, 768)
    cases = [
        Case(
            "too many images",
            lambda r: replace(r, images=(ok,) * (high + 1), size=None),
            "images",
            ("at most", str(high)),
        ),
        Case(
            "side too short",
            lambda r: replace(r, images=(image(rule.min_side - 1, rule.min_side + 40),)),
            "images[1]",
            ("image 1", str(rule.min_side)),
        ),
        Case(
            "side too long",
            lambda r: replace(r, images=(image(rule.max_side + 1, rule.max_side // 2),)),
            "images[1]",
            ("image 1", str(rule.max_side)),
        ),
        Case(
            "transparency",
            lambda r: replace(r, images=(image(800, 600, alpha=True),)),
            "images[1]",
            ("transparency",),
        ),
        Case(
            "file too large for the emulator",
            lambda r: replace(r, images=(large_bmp(emulator_images(spec).max_bytes + 1),)),
            "images[1]",
            ("mb",),
        ),
    ]
    if low > 0:
        cases.append(Case("no input image", lambda r: replace(r, images=()), "images", ("image",)))
    if rule.aspect is not None:
        tall = rule.min_side * rule.aspect.high + 1
        cases.append(
            Case(
                "image aspect out of range",
                lambda r: replace(r, images=(image(rule.min_side, tall),)),
                "images[1]",
                ("aspect",),
            )
        )
    if rule.max_bytes < emulator_images(spec).max_bytes:
        cases.append(
            Case(
                "file over the studio's stricter size",
                lambda r: replace(r, images=(large_bmp(rule.max_bytes + 1),)),
                "images[1]",
                (),
                emulator_accepts=True,
            )
        )
    return cases


def _box_cases(spec: ModelSpec) -> list[Case]:
    two = (image(1024, 768), image(800, 800))
    box = (10, 10, 200, 200)
    return [
        Case(
            "regions for fewer images than given",
            lambda r: replace(r, images=two, bbox_list=((box,),)),
            "bbox_list",
            ("regions",),
        ),
        Case(
            "three regions on one image",
            lambda r: replace(r, images=two, bbox_list=((box, box, box), ())),
            "bbox_list[1]",
            ("at most 2",),
        ),
        Case(
            "region outside its image",
            lambda r: replace(r, images=two, bbox_list=((), ((700, 700, 900, 820),))),
            "bbox_list[2]",
            ("outside",),
        ),
        Case(
            "region with corners swapped",
            lambda r: replace(r, images=two, bbox_list=(((200, 200, 10, 10),), ())),
            "bbox_list[1]",
            ("corner",),
        ),
    ]


CASES = [(spec, case) for spec in MODELS for case in cases_for(spec)]


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_a_valid_request_is_sent_and_accepted(spec, emulated: Emulated):
    request = valid_request(spec)
    assert check_request(request, asynchronous=spec.async_endpoint is not None) == []
    if spec.async_endpoint:
        submitted = emulated.client.submit(request)
        emulated.clock.advance(10)
        result = emulated.client.fetch(submitted.task_id)
    else:
        result = emulated.client.generate(request)
    assert result.status == "SUCCEEDED"
    assert len(result.image_urls) == spec.n.min


@pytest.mark.parametrize(("spec", "case"), CASES, ids=[f"{s.name}-{c.name}" for s, c in CASES])
def test_the_client_refuses_before_sending(spec, case, emulated: Emulated):
    request = case.change(valid_request(spec))
    send = emulated.client.submit if spec.async_endpoint else emulated.client.generate
    with pytest.raises(RequestRefused) as refused:
        send(request)
    assert case.field in [problem.field for problem in refused.value.problems]
    assert not emulated.emulator.requests, "nothing may reach the provider"


@pytest.mark.parametrize(("spec", "case"), CASES, ids=[f"{s.name}-{c.name}" for s, c in CASES])
def test_the_emulator_refuses_as_the_provider_does(spec, case, emulated: Emulated):
    request = case.change(valid_request(spec))
    response = emulated.post_request(request, _endpoint(spec))
    if case.emulator_accepts:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "InvalidParameter"
    assert body["request_id"]
    assert "output" not in body
    message = body["message"].lower()
    for word in case.words:
        assert word.lower() in message, (word, body["message"])
    assert not emulated.task_ids()


def test_the_client_refuses_sync_calls_to_background_only_models(emulated: Emulated):
    request = valid_request(next(s for s in MODELS if s.name == "wan2.5-t2i-preview"))
    with pytest.raises(RequestRefused, match="cannot be called synchronously"):
        emulated.client.generate(request)
    request = valid_request(next(s for s in MODELS if s.name == "qwen-image-2.0-pro"))
    with pytest.raises(RequestRefused, match="in the background"):
        emulated.client.submit(request)
