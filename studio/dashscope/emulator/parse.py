"""Reading a generation request off the wire, as the real service does.

Written from the protocol, not from the client's body builder, so that a client bug shows
up as a refusal here. Unknown parameter keys are ignored (the official SDK sends extras such
as `is_async`), and so are parameters the model does not take.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from studio.dashscope.catalog import (
    BodyStyle,
    Endpoint,
    ModelSpec,
    Option,
    UnknownModel,
    get_model,
)
from studio.dashscope.images import UnreadableImage, probe_image
from studio.dashscope.types import ColorSwatch, GenerationRequest, InputImage
from studio.dashscope.validation import check_request


class WireError(Exception):
    """A request-level error answer: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class DownloadFailed(Exception):
    """An input image URL could not be fetched."""


def invalid(message: str) -> WireError:
    return WireError(400, "InvalidParameter", message)


def parse_generation(
    body: object, endpoint: Endpoint, fetch_url: Callable[[str], bytes]
) -> tuple[ModelSpec, GenerationRequest]:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    model = body.get("model")
    if not model:
        raise WireError(
            400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    if not isinstance(model, str):
        raise invalid("Model not exist.")
    try:
        spec = get_model(model)
    except UnknownModel:
        raise invalid("Model not exist.") from None
    if endpoint not in spec.endpoints:
        raise invalid("url error, please check url!")
    body_input = body.get("input")
    if not isinstance(body_input, dict) or not body_input:
        raise WireError(
            400, "BadRequest.EmptyInput", "Required input parameter missing from request."
        )
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid("parameters must be an object.")

    if endpoint.body_style is BodyStyle.MESSAGES:
        prompt, image_values = _read_messages(body_input)
        negative = parameters.get("negative_prompt")
    else:
        prompt = body_input.get("prompt")
        if not isinstance(prompt, str):
            raise invalid("input.prompt is required and must be a string.")
        negative = body_input.get("negative_prompt")
        image_values = []
        if endpoint.body_style is BodyStyle.PROMPT_IMAGES:
            image_values = body_input.get("images")
            if not isinstance(image_values, list) or not all(
                isinstance(v, str) for v in image_values
            ):
                raise invalid("input.images must be a list of image URLs.")
    images = tuple(
        _load_image(value, position, fetch_url)
        for position, value in enumerate(image_values, start=1)
    )
    request = GenerationRequest(
        model=model,
        prompt=prompt,
        negative_prompt=_read_negative(spec, negative),
        images=images,
        size=_read(parameters, "size", str),
        n=_read(parameters, "n", int),
        **_read_options(spec, parameters),
    )
    problems = check_request(request, asynchronous=endpoint.is_async, strict=False)
    if problems:
        raise invalid(" ".join(problem.message for problem in problems))
    return spec, request


def _read_messages(body_input: dict[str, Any]) -> tuple[str, list[str]]:
    messages = body_input.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError(
            400, "BadRequest.EmptyInput", "Required input parameter missing from request."
        )
    if len(messages) != 1:
        raise invalid("Only a single user message is supported.")
    message = messages[0]
    if not isinstance(message, dict) or message.get("role") != "user":
        raise invalid("The message role must be user.")
    content = message.get("content")
    if not isinstance(content, list):
        raise invalid("The message content must be a list.")
    texts, images = [], []
    for item in content:
        if not isinstance(item, dict):
            raise invalid("Each content item must be an object with text or image.")
        if "text" in item:
            texts.append(item["text"])
        elif "image" in item:
            images.append(item["image"])
        else:
            raise invalid("Each content item must hold text or image.")
    if len(texts) != 1 or not isinstance(texts[0], str):
        raise invalid("The content must hold exactly one text item.")
    if not all(isinstance(value, str) for value in images):
        raise invalid("An image must be given as a URL or a data URI string.")
    return texts[0], images


def _load_image(value: str, position: int, fetch_url: Callable[[str], bytes]) -> InputImage:
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        if not header.endswith(";base64") or not payload:
            raise invalid(f"Image {position}: a data URI must be data:<mime>;base64,<data>.")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"Image {position}: the base64 data is not valid.") from None
    elif value.startswith(("http://", "https://")):
        try:
            data = fetch_url(value)
        except DownloadFailed:
            raise WireError(
                400,
                "InvalidParameter.FileDownload",
                f"Image {position}: download for input_image error.",
            ) from None
    elif value.startswith("oss://"):
        data = fetch_url(value)  # a temporary upload: the emulator resolves it, or refuses
    else:
        raise invalid(f"Image {position}: url error, please check url!")
    try:
        return InputImage(data=data, info=probe_image(data))
    except UnreadableImage as exc:
        raise invalid(f"Image {position}: {exc}.") from None


def _read(parameters: dict[str, Any], key: str, kind: type) -> Any:
    value = parameters.get(key)
    if value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise invalid(f"parameters.{key} must be an integer.")
    if kind is not int and not isinstance(value, kind):
        raise invalid(f"parameters.{key} must be a {kind.__name__}.")
    return value


def _read_negative(spec: ModelSpec, value: object) -> str | None:
    if not spec.supports(Option.NEGATIVE_PROMPT) or value in (None, ""):
        return None
    if not isinstance(value, str):
        raise invalid("negative_prompt must be a string.")
    return value


def _read_options(spec: ModelSpec, parameters: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for option, kind in (
        (Option.SEED, int),
        (Option.WATERMARK, bool),
        (Option.PROMPT_EXTEND, bool),
        (Option.THINKING_MODE, bool),
        (Option.ENABLE_SEQUENTIAL, bool),
    ):
        if spec.supports(option):
            options[option.value] = _read(parameters, option.value, kind)
    if spec.supports(Option.BBOX_LIST) and parameters.get("bbox_list") is not None:
        options["bbox_list"] = _read_boxes(parameters["bbox_list"])
    if spec.supports(Option.COLOR_PALETTE) and parameters.get("color_palette") is not None:
        options["color_palette"] = _read_palette(parameters["color_palette"])
    return options


def _read_boxes(value: object) -> tuple[tuple[Any, ...], ...]:
    if not isinstance(value, list) or not all(isinstance(boxes, list) for boxes in value):
        raise invalid("bbox_list must be a list with one list of boxes per input image.")
    result = []
    for boxes in value:
        result.append(tuple(tuple(box) if isinstance(box, list) else box for box in boxes))
    return tuple(result)


def _read_palette(value: object) -> tuple[ColorSwatch, ...]:
    if not isinstance(value, list):
        raise invalid("color_palette must be a list of {hex, ratio} objects.")
    swatches = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("hex"), str)
            or not isinstance(item.get("ratio"), str)
        ):
            raise invalid("Each color_palette item needs a hex and a ratio string.")
        swatches.append(ColorSwatch(hex=item["hex"], ratio=item["ratio"]))
    return tuple(swatches)
