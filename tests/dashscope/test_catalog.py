"""The catalog against the provider's documents, value by value.

The expectations here are copied from the seeds and the protocol reference by hand, not
derived from the catalog, so a wrong catalog entry fails here.
"""

import pytest

from studio.dashscope.catalog import (
    CATALOG,
    Endpoint,
    Kind,
    Option,
    TextUnit,
    UnknownModel,
    get_model,
    models_for,
)

SYNC = Endpoint.MULTIMODAL_GENERATION

# name: (sync endpoint, async endpoint, prompt limit (tokens for Qwen, characters for Wan),
#        input images (min, max) or None, n (min, max, default))
DOCUMENTED = {
    "qwen-image-2.0-pro": (SYNC, None, 1300, None, (1, 6, 1)),
    "qwen-image-2.0": (SYNC, None, 1300, None, (1, 6, 1)),
    "qwen-image-max": (SYNC, None, 800, None, (1, 1, 1)),
    "qwen-image-plus": (SYNC, Endpoint.TEXT2IMAGE, 800, None, (1, 1, 1)),
    "qwen-image": (SYNC, Endpoint.TEXT2IMAGE, 800, None, (1, 1, 1)),
    "wan2.6-t2i": (SYNC, Endpoint.IMAGE_GENERATION, 2100, None, (1, 4, 4)),
    "wan2.5-t2i-preview": (None, Endpoint.TEXT2IMAGE, 2000, None, (1, 4, 4)),
    "wan2.7-image-pro": (SYNC, Endpoint.IMAGE_GENERATION, 5000, (0, 9), (1, 4, 1)),
    "wan2.7-image": (SYNC, Endpoint.IMAGE_GENERATION, 5000, (0, 9), (1, 4, 1)),
    "wan2.6-image": (SYNC, Endpoint.IMAGE_GENERATION, 2000, (1, 4), (1, 4, 4)),
    "wan2.5-i2i-preview": (None, Endpoint.IMAGE2IMAGE, 2000, (1, 3), (1, 4, 4)),
}


def test_every_documented_model_is_in_the_catalog_and_nothing_else():
    assert set(CATALOG) == set(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_endpoints_prompt_images_and_n_match_the_documents(name):
    sync, asynchronous, prompt_chars, images, n = DOCUMENTED[name]
    spec = CATALOG[name]
    assert spec.sync_endpoint == sync
    assert spec.async_endpoint == asynchronous
    assert spec.prompt_max == prompt_chars
    expected_unit = TextUnit.TOKENS if name.startswith("qwen") else TextUnit.CHARACTERS
    assert spec.prompt_unit is expected_unit
    assert (spec.images.count if spec.images else None) == images
    assert (spec.n.min, spec.n.max, spec.n.default) == n


def test_input_image_limits_per_edit_model():
    wan27 = CATALOG["wan2.7-image-pro"].images
    assert (wan27.min_side, wan27.max_side) == (240, 8000)
    assert wan27.aspect.allows(240, 1920) and not wan27.aspect.allows(240, 1921)
    assert wan27.max_bytes == 20 * 1000 * 1000  # S2:728's 20 MB, in either sense of MB
    wan26 = CATALOG["wan2.6-image"].images
    assert (wan26.min_side, wan26.max_side, wan26.aspect) == (240, 8000, None)
    assert wan26.max_bytes == 10 * 1000 * 1000
    wan25 = CATALOG["wan2.5-i2i-preview"].images
    assert (wan25.min_side, wan25.max_side) == (384, 5000)
    assert wan25.aspect.allows(400, 1600) and not wan25.aspect.allows(400, 1601)
    for spec in CATALOG.values():
        if spec.images:
            assert spec.images.formats == ("JPEG", "PNG", "BMP", "WEBP")
            assert not spec.images.alpha


def test_size_rules_match_the_documents():
    fixed = {(1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664)}
    for name in ("qwen-image-max", "qwen-image-plus", "qwen-image"):
        assert set(CATALOG[name].size.fixed) == fixed
        assert CATALOG[name].size.default == "1664*928"
    qwen2 = CATALOG["qwen-image-2.0-pro"].size
    assert (qwen2.min_pixels, qwen2.max_pixels, qwen2.default) == (512**2, 2048**2, "2048*2048")
    assert (2688, 1536) in qwen2.recommended
    pro, plain = CATALOG["wan2.7-image-pro"].size, CATALOG["wan2.7-image"].size
    assert pro.tiers == {"1K": 1024, "2K": 2048, "4K": 4096} and pro.default == "2K"
    assert pro.text_to_image_only_tiers == {"4K"}
    assert pro.max_pixels_for(has_images=False) == 4096**2
    assert pro.max_pixels_for(has_images=True) == 2048**2
    assert "4K" not in plain.tiers and plain.max_pixels_for(has_images=False) == 2048**2
    wan26 = CATALOG["wan2.6-image"].size
    assert wan26.tiers == {"1K": 1280, "2K": 2048} and wan26.default == "1K" and wan26.snap == 16
    i2i = CATALOG["wan2.5-i2i-preview"].size
    assert (i2i.min_pixels, i2i.max_pixels, i2i.tiers) == (768**2, 1280**2, {})
    t2i = CATALOG["wan2.6-t2i"].size
    # Contradictory documents: send only what both of seed 000's statements accept.
    assert (t2i.min_pixels, t2i.max_pixels) == (1280**2, 1440**2)
    assert (t2i.min_side, t2i.max_side, str(t2i.aspect)) == (512, 1440, "1:4 to 4:1")


def test_options_per_model():
    wan27 = CATALOG["wan2.7-image-pro"]
    assert {
        Option.BBOX_LIST,
        Option.THINKING_MODE,
        Option.ENABLE_SEQUENTIAL,
        Option.COLOR_PALETTE,
    } <= wan27.options
    assert not wan27.supports(Option.NEGATIVE_PROMPT)
    assert not wan27.supports(Option.PROMPT_EXTEND)
    assert wan27.max_boxes_per_image == 2
    assert (wan27.n_sequential.max, wan27.n_sequential.default) == (12, 12)
    for name in ("wan2.6-image", "wan2.5-i2i-preview", "wan2.6-t2i", "qwen-image-2.0"):
        spec = CATALOG[name]
        assert spec.supports(Option.NEGATIVE_PROMPT) and spec.supports(Option.PROMPT_EXTEND)
        assert not spec.supports(Option.BBOX_LIST)
        assert spec.negative_prompt_max_chars == 500


def test_models_by_kind_and_by_snapshot_name():
    edit = {spec.name for spec in models_for(Kind.EDIT)}
    assert edit == {"wan2.7-image-pro", "wan2.7-image", "wan2.6-image", "wan2.5-i2i-preview"}
    t2i = {spec.name for spec in models_for(Kind.TEXT_TO_IMAGE)}
    assert "qwen-image-2.0-pro" in t2i and "wan2.7-image" in t2i and "wan2.6-image" not in t2i
    assert get_model("qwen-image-2.0-pro-2026-04-22").name == "qwen-image-2.0-pro"
    with pytest.raises(UnknownModel):
        get_model("wan9-imaginary")
