"""The Wan models: text-to-image (S0, S1, [D-T2I]) and image editing (S2, [D-W25]..[D-W27])."""

from __future__ import annotations

from dataclasses import replace

from studio.dashscope.emulator.limits import (
    COMMON_OPTIONS,
    MIB,
    Aspect,
    Endpoint,
    ImageRule,
    InterleaveRule,
    ModelRules,
    Option,
    ResultShape,
    SizeRule,
    Span,
    TextLimit,
)

# negative_prompt and prompt_extend: S0:583, S0:610
_WAN_T2I_OPTIONS = COMMON_OPTIONS | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}
_WAN27_OPTIONS = COMMON_OPTIONS | {  # bbox_list: S2:820; the rest [D-W27] via protocol §6
    Option.BBOX_LIST,
    Option.THINKING_MODE,
    Option.ENABLE_SEQUENTIAL,
    Option.COLOR_PALETTE,
}
# negative_prompt S2:781-782; prompt_extend S2:800-801
_WAN_EDIT_OPTIONS = COMMON_OPTIONS | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}
# S2:617 describes the mixed text-and-image output without naming its switch; the names
# and max_images are [D-W26] via protocol §6.
_WAN26_IMAGE_OPTIONS = _WAN_EDIT_OPTIONS | {Option.ENABLE_INTERLEAVE, Option.MAX_IMAGES}

# wan2.6-image's mixed text-and-image mode ([D-W26] via protocol §6 and §5.2): streamed
# only, from the sync endpoint.
_WAN26_INTERLEAVE = InterleaveRule(
    images=(0, 1),  # S2:714 "text-image mixed: 0 to 1"
    size=SizeRule(
        # No size: the input's, brought within the range, or 1280*1280 without one.
        default="1280*1280",
        min_pixels=768 * 768,
        max_pixels=1280 * 1280,
        aspect=None,  # no aspect range is given for this mode: lenient on input
        snap=16,  # S2:815-816, as in editing
        follows_last_image=True,
    ),
    n=Span(1, 1, 1),  # "must be 1 (else error)"
    max_images=Span(1, 5, 5),
)

_WAN_NEGATIVE = TextLimit(500)  # S2:781-782; t2i: [D-T2I] via protocol §6

# The widest documented reading ([D-T2I] EN via protocol §10.1): total [768², 1440²],
# aspect 1:4 to 4:1, sides not limited beyond that. Reading.WAN_T2I_SIZE_STRICT narrows it.
_WAN_T2I_SIZE = SizeRule(
    default="1280*1280",  # [D-T2I] via protocol §10.1; every S0 sample sends it (S0:584)
    min_pixels=768 * 768,
    max_pixels=1440 * 1440,  # S0:107 and S0:648 agree on the ceiling
    aspect=Aspect(1, 4),
)
WAN_T2I_SIZE_STRICT = replace(
    _WAN_T2I_SIZE,
    min_pixels=1280 * 1280,  # S0:107
    min_side=512,  # S0:648
    max_side=1440,  # S0:648
)
_WAN27_IMAGES = ImageRule(
    count=(0, 9),  # S2:713 (0: text-to-image)
    min_side=240,  # S2:723
    max_side=8000,  # S2:723
    max_bytes=20 * MIB,  # S2:728 "≤ 20 MB", MB read as the larger 2^20
    aspect=Aspect(1, 8),  # S2:733
)


def _wan27(name: str, *, pro: bool) -> ModelRules:
    tiers = {"1K": 1024, "2K": 2048}  # [D-W27] via protocol §6 (S2:811 is cut off)
    if pro:
        tiers["4K"] = 4096  # S2:813: wan2.7-image-pro only, text-to-image only
    return ModelRules(
        name=name,
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S2:255
        async_endpoint=Endpoint.IMAGE_GENERATION,  # S2:537
        prompt=TextLimit(5000),  # S2:770
        negative_prompt=None,  # S2:780: not supported
        images=_WAN27_IMAGES,
        size=SizeRule(
            default="2K",  # [D-W27] via protocol §6; every S2 sample sends 2K
            tiers=tiers,
            text_to_image_only_tiers=frozenset({"4K"}) if pro else frozenset(),  # S2:813, S2:70
            min_pixels=768 * 768,  # [D-W27] via protocol §6 (S2:812's ranges are lost)
            max_pixels=2048 * 2048,  # S2:70: editing and sequences at most 2K
            max_pixels_text_to_image=4096 * 4096 if pro else 0,  # [D-W27] via protocol §6
            aspect=Aspect(1, 8),  # [D-W27] via protocol §6
            follows_last_image=True,  # [D-W27]; S2:116 and S2:600 keep paint.webp's aspect
        ),
        n=Span(1, 4, 1),  # [D-W27] via protocol §6 (S2:274 sends 1)
        n_sequential=Span(1, 12, 12),  # [D-W27] via protocol §6 (S2:614 describes it)
        result_shape=ResultShape.ONE_CHOICE,
        options=_WAN27_OPTIONS,
        max_boxes_per_image=2,  # S2:826
        palette_colours=(3, 10),  # [D-W27] via protocol §6
    )


WAN_MODELS: tuple[ModelRules, ...] = (
    ModelRules(
        name="wan2.6-t2i",  # S0:105
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:123; path [D-T2I] via §3
        async_endpoint=Endpoint.IMAGE_GENERATION,  # S0:561
        prompt=TextLimit(2100),  # [D-T2I] via protocol §6
        negative_prompt=_WAN_NEGATIVE,
        size=_WAN_T2I_SIZE,
        n=Span(1, 4, 4),  # [D-T2I] via protocol §6 (S0:582 sends 1)
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_T2I_OPTIONS,
    ),
    ModelRules(
        name="wan2.5-t2i-preview",  # S0:105
        sync_endpoint=None,  # S0:123: only wan2.6-t2i also runs sync
        async_endpoint=Endpoint.TEXT2IMAGE,  # [D-T2I] via protocol §3
        prompt=TextLimit(2000),  # [D-T2I] via protocol §6
        negative_prompt=_WAN_NEGATIVE,
        size=_WAN_T2I_SIZE,
        n=Span(1, 4, 4),  # [D-T2I] via protocol §6
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_T2I_OPTIONS,
    ),
    _wan27("wan2.7-image-pro", pro=True),  # S2:708
    _wan27("wan2.7-image", pro=False),  # S2:708
    ModelRules(
        name="wan2.6-image",  # S2:709
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S2:841; paths [D-W26] via §3
        async_endpoint=Endpoint.IMAGE_GENERATION,  # S2:841
        prompt=TextLimit(2000),  # S2:771
        negative_prompt=_WAN_NEGATIVE,  # S2:781
        images=ImageRule(
            count=(1, 4),  # S2:714, editing (the mixed mode's 0 to 1 is `interleave`)
            min_side=240,  # S2:724
            max_side=8000,  # S2:724
            max_bytes=10 * MIB,  # S2:729 "≤ 10 MB", MB read as the larger 2^20
            aspect=None,  # S2:734: unrestricted
        ),
        size=SizeRule(
            default="1K",  # [D-W26] via protocol §6 (S2:814 is cut off)
            tiers={"1K": 1280, "2K": 2048},  # [D-EDIT-zh]: 1K is about 1280² here
            min_pixels=768 * 768,  # [D-W26] via protocol §6
            max_pixels=2048 * 2048,
            aspect=Aspect(1, 4),  # [D-W26] via protocol §6
            snap=16,  # S2:815-816
            follows_last_image=True,  # S2:814 "refer to the input image's aspect ratio"
        ),
        n=Span(1, 4, 4),  # [D-W26] via protocol §6
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN26_IMAGE_OPTIONS,  # S2:820: no bbox_list
        interleave=_WAN26_INTERLEAVE,
    ),
    ModelRules(
        name="wan2.5-i2i-preview",  # S2:710
        sync_endpoint=None,  # S2:845: async only
        async_endpoint=Endpoint.IMAGE2IMAGE,  # S2:607 another endpoint; [D-W25] via §3
        prompt=TextLimit(2000),  # S2:777
        negative_prompt=_WAN_NEGATIVE,  # S2:782
        images=ImageRule(
            count=(1, 3),  # S2:715
            min_side=384,  # S2:725
            max_side=5000,  # S2:725
            max_bytes=10 * MIB,  # S2:730, MB read as the larger 2^20
            aspect=Aspect(1, 4),  # S2:735
        ),
        size=SizeRule(
            default="1280*1280",  # [D-EDIT-zh][D-W25] via protocol §6: ≈1280², last aspect
            min_pixels=768 * 768,  # [D-EDIT-zh] via protocol §6 and §10.2
            max_pixels=1280 * 1280,
            aspect=Aspect(1, 4),
            follows_last_image=True,
        ),
        n=Span(1, 4, 4),  # copies of [D-W25] via protocol §6
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_EDIT_OPTIONS,
    ),
)
