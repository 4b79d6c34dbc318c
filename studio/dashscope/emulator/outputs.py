"""The `output` and `usage` of a finished generation, laid out as each model lays them out.

A sync answer and a succeeded task's answer share these: Qwen's one choice without item
types (S0:185-203), wan2.7's one choice of typed items, wan2.6's choice per image, and
the legacy protocol's `image_count` only.
"""

from __future__ import annotations

from studio.dashscope.emulator.limits import BodyStyle, Endpoint, ModelRules, ResultShape
from studio.dashscope.emulator.request import Generation


def messages_output(spec: ModelRules, urls: list[str], *, finished: bool) -> dict[str, object]:
    def choice(items: list[dict[str, str]]) -> dict[str, object]:
        return {"finish_reason": "stop", "message": {"role": "assistant", "content": items}}

    if spec.result_shape is ResultShape.QWEN:
        return {"choices": [choice([{"image": url} for url in urls])]}
    typed = [{"image": url, "type": "image"} for url in urls]
    if spec.result_shape is ResultShape.ONE_CHOICE:
        choices = [choice(typed)]
    else:
        choices = [choice([item]) for item in typed]
    return {"choices": choices, "finished": finished}


def usage(
    spec: ModelRules,
    request: Generation,
    size: tuple[int, int],
    count: int,
    endpoint: Endpoint,
) -> dict[str, object]:
    width, height = size
    if endpoint.body_style is not BodyStyle.MESSAGES:
        return {"image_count": count}
    if spec.result_shape is ResultShape.QWEN:
        return {"height": height, "image_count": count, "width": width}
    if spec.result_shape is ResultShape.ONE_CHOICE:
        # Synthetic but plausible token counts: prompt text plus image patches.
        input_tokens = (
            len(request.prompt) // 3
            + 1
            + sum(image.facts.pixels // 1024 for image in request.images)
        )
        output_tokens = 2 * count
    else:
        input_tokens = output_tokens = 0  # wan2.6 reports zero tokens
    return {
        "image_count": count,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "size": f"{width}*{height}",
        "total_tokens": input_tokens + output_tokens,
    }
