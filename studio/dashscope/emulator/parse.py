"""Reading a generation request off the wire, as the real service does.

Written from the protocol, not from the client's body builder, so that a client bug shows
up as a refusal here; the limits are the emulator's own (rules.py). Unknown parameter keys
are ignored (the official SDK sends extras such as `is_async`), and so are parameters the
model does not take, unless the strict reading of "not supported" is chosen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from PIL import Image

from studio.dashscope.emulator.checks import check
from studio.dashscope.emulator.limits import IMAGE_FORMATS, BodyStyle, Endpoint, ModelRules, Option
from studio.dashscope.emulator.readings import Reading
from studio.dashscope.emulator.request import Generation, ImageFacts, InputImage, Swatch
from studio.dashscope.emulator.rules import model_rules

# The largest input any model takes is 8000 x 8000 (S2:723); a bigger header is refused
# before a pixel is decoded.
MAX_INPUT_PIXELS = 8000 * 8000


class WireError(Exception):
    """A request-level error answer: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class DownloadFailed(Exception):
    """An input image URL could not be fetched."""


class UnreadableImage(ValueError):
    """Bytes that are not an image the service reads; the message says why."""


def invalid(message: str) -> WireError:
    return WireError(400, "InvalidParameter", message)


def _empty_input() -> WireError:
    return WireError(400, "BadRequest.EmptyInput", "Required input parameter missing from request.")


def parse_generation(
    body: object,
    endpoint: Endpoint,
    fetch_url: Callable[[str], bytes],
    readings: Iterable[Reading] = (),
) -> tuple[ModelRules, Generation]:
    """The model's rules and the request, or the WireError the service would answer."""
    readings = frozenset(readings)
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    model = _read_model(body, endpoint, readings)
    body_input = body.get("input")
    if not isinstance(body_input, dict) or not body_input:
        raise _empty_input()
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid("parameters must be an object.")
    prompt, negative, image_values = _read_texts_and_images(
        endpoint.body_style, body_input, parameters, readings
    )
    images = tuple(
        _load_image(value, position, fetch_url)
        for position, value in enumerate(image_values, start=1)
    )
    options, unsupported = _read_options(model, parameters)
    if negative not in (None, "") and not model.takes(Option.NEGATIVE_PROMPT):
        unsupported.insert(0, Option.NEGATIVE_PROMPT.value)
    request = Generation(
        model=body["model"],
        prompt=prompt,
        negative_prompt=_read_negative(model, negative),
        images=images,
        size=_read(parameters, "size", str),
        n=_read(parameters, "n", int),
        stream=_read(parameters, "stream", bool),
        unsupported=tuple(unsupported),
        **options,
    )
    problems = check(model, request, asynchronous=endpoint.is_async)
    if problems:
        raise invalid(" ".join(problems))
    return model, request


def _read_model(
    body: dict[str, Any], endpoint: Endpoint, readings: frozenset[Reading]
) -> ModelRules:
    name = body.get("model")
    if not name:
        raise WireError(
            400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    model = model_rules(name, readings) if isinstance(name, str) else None
    if model is None:
        raise invalid("Model not exist.")
    if endpoint not in model.endpoints:
        raise invalid("url error, please check url!")
    return model


def _read_texts_and_images(
    style: BodyStyle,
    body_input: dict[str, Any],
    parameters: dict[str, Any],
    readings: frozenset[Reading],
) -> tuple[str, object, list[str]]:
    """The prompt, the negative prompt as sent, and the image values, where the body style
    puts them."""
    if style is BodyStyle.MESSAGES:
        negative = parameters.get("negative_prompt")  # S0:321, S0:583
        if Reading.PROMPT_IN_INPUT in readings:
            if negative is None:
                negative = body_input.get("negative_prompt")  # S0:600
            if "messages" not in body_input and "prompt" in body_input:
                return _read_prompt(body_input), negative, []
        prompt, images = _read_messages(body_input)
        return prompt, negative, images
    prompt = _read_prompt(body_input)
    negative = body_input.get("negative_prompt")  # [D-T2I] via protocol §4.2
    if style is not BodyStyle.PROMPT_IMAGES:
        return prompt, negative, []
    image_values = body_input.get("images")
    if not isinstance(image_values, list) or not all(isinstance(v, str) for v in image_values):
        raise invalid("input.images must be a list of image URLs.")
    return prompt, negative, image_values


def _read_prompt(body_input: dict[str, Any]) -> str:
    prompt = body_input.get("prompt")
    if not isinstance(prompt, str):
        raise invalid("input.prompt is required and must be a string.")
    return prompt


def _read_messages(body_input: dict[str, Any]) -> tuple[str, list[str]]:
    messages = body_input.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _empty_input()
    if len(messages) != 1:
        raise invalid("Only a single user message is supported.")
    message = messages[0]
    if not isinstance(message, dict) or message.get("role") != "user":
        raise invalid("The message role must be user.")
    content = message.get("content")
    if not isinstance(content, list):
        raise invalid("The message content must be a list.")
    texts, images = [], []
    # Text and images may come in any order (S2:265-267 put the images first).
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
    """An input image from a data URI (S2:31), a URL, or an oss:// upload."""
    if value.startswith("data:"):
        data = _decode_data_uri(value, position)
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
        return InputImage(data=data, facts=read_image(data))
    except UnreadableImage as exc:
        raise invalid(f"Image {position}: {exc}.") from None


def _decode_data_uri(value: str, position: int) -> bytes:
    header, _, payload = value.partition(",")
    if not header.endswith(";base64") or not payload:
        raise invalid(f"Image {position}: a data URI must be data:<mime>;base64,<data>.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Image {position}: the base64 data is not valid.") from None


def read_image(data: bytes) -> ImageFacts:
    """What an input image is, from its header: format, size, alpha; or UnreadableImage."""
    if not data:
        raise UnreadableImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[*IMAGE_FORMATS, "MPO"]) as image:
                width, height = image.size
                # A camera JPEG carrying a second picture (MPO) is a JPEG all the same.
                fmt = "JPEG" if image.format == "MPO" else image.format or ""
                alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                    "transparency" in image.info
                )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage("the image has too many pixels to open") from None
    except Exception:
        raise UnreadableImage("the file is not a JPEG, PNG, BMP or WEBP image") from None
    if width * height > MAX_INPUT_PIXELS:
        raise UnreadableImage(f"the image is {width}×{height}, larger than 8000×8000 pixels")
    return ImageFacts(
        format=fmt,
        width=width,
        height=height,
        bytes=len(data),
        has_alpha=alpha,
        sha256=hashlib.sha256(data).hexdigest(),
    )


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


def _read_negative(model: ModelRules, value: object) -> str | None:
    if not model.takes(Option.NEGATIVE_PROMPT) or value in (None, ""):
        return None
    if not isinstance(value, str):
        raise invalid("negative_prompt must be a string.")
    return value


_PLAIN_OPTIONS = (
    (Option.SEED, int),
    (Option.WATERMARK, bool),
    (Option.PROMPT_EXTEND, bool),
    (Option.THINKING_MODE, bool),
    (Option.ENABLE_SEQUENTIAL, bool),
    (Option.ENABLE_INTERLEAVE, bool),
    (Option.MAX_IMAGES, int),
)


def _read_options(
    model: ModelRules, parameters: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The options the model takes, read; and the names of those sent that it does not."""
    options: dict[str, Any] = {}
    unsupported: list[str] = []
    for option, kind in _PLAIN_OPTIONS:
        if model.takes(option):
            options[option.value] = _read(parameters, option.value, kind)
        elif parameters.get(option.value) is not None:
            unsupported.append(option.value)
    for option, read in ((Option.BBOX_LIST, _read_boxes), (Option.COLOR_PALETTE, _read_palette)):
        value = parameters.get(option.value)
        if value is None:
            continue
        if model.takes(option):
            options[option.value] = read(value)
        else:
            unsupported.append(option.value)
    return options, unsupported


def _read_boxes(value: object) -> tuple[tuple[object, ...], ...]:
    if not isinstance(value, list) or not all(isinstance(boxes, list) for boxes in value):
        raise invalid("bbox_list must be a list with one list of boxes per input image.")
    return tuple(
        tuple(tuple(box) if isinstance(box, list) else box for box in boxes) for boxes in value
    )


def _read_palette(value: object) -> tuple[Swatch, ...]:
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
        swatches.append(Swatch(hex=item["hex"], ratio=item["ratio"]))
    return tuple(swatches)
