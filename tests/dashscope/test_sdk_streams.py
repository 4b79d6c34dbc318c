"""The witness for streams: the official `dashscope` SDK, streaming mixed text and images
from the served emulator as its users call it (`ImageGeneration.call(..., stream=True,
enable_interleave=True)`), receives the same events the studio's client does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import dashscope
import pytest
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message

from studio.dashscope.client import DashScopeClient
from studio.dashscope.streams import ImagePart, StreamFailed, StreamFinished, TextPart
from studio.dashscope.types import GenerationRequest
from tests.support.emulation import API_KEY, ServedEmulator
from tests.support.sse_emulator import served_with_pace

Seen = tuple[list[tuple[str, str | None]], dict[str, Any]]


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEmulator]:
    log = Path(tmp_path_factory.mktemp("sdk-sse")) / "requests.jsonl"
    with served_with_pace(log, event=0.02, image=0.05, stall=30.0) as served:
        yield served


@pytest.fixture(autouse=True)
def sdk_base_url(paced: ServedEmulator, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", paced.base_url)


def sdk_stream(prompt: str, max_images: int) -> Seen:
    """What the SDK's users see: each response's content items, and the end."""
    responses = ImageGeneration.call(
        model="wan2.6-image",
        api_key=API_KEY,
        messages=[Message(role="user", content=[{"text": prompt}])],
        stream=True,
        enable_interleave=True,
        max_images=max_images,
    )
    parts: list[tuple[str, str | None]] = []
    end: dict[str, Any] = {}
    for response in responses:
        if response.status_code != HTTPStatus.OK:
            end = {"code": response.code, "message": response.message}
            break
        (choice,) = response.output.choices
        for item in choice.message.content:
            parts.append(("text", item["text"]) if item["type"] == "text" else ("image", None))
        if choice.finish_reason == "stop":
            usage = response.usage
            end = {k: usage[k] for k in ("image_count", "size", "input_tokens", "output_tokens")}
    return parts, end


def studio_stream(paced: ServedEmulator, prompt: str, max_images: int) -> Seen:
    parts: list[tuple[str, str | None]] = []
    end: dict[str, Any] = {}
    request = GenerationRequest(model="wan2.6-image", prompt=prompt, max_images=max_images)
    with DashScopeClient(api_key=API_KEY, base_url=paced.base_url) as client:
        for event in client.stream(request):
            if isinstance(event, TextPart):
                parts.append(("text", event.text))
            elif isinstance(event, ImagePart):
                parts.append(("image", None))
            elif isinstance(event, StreamFailed):
                end = {"code": event.code, "message": event.message}
            elif isinstance(event, StreamFinished):
                usage = event.usage
                assert usage is not None
                end = {
                    "image_count": usage.image_count,
                    "size": f"{usage.width}*{usage.height}",
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                }
    return parts, end


@pytest.mark.parametrize("max_images", [1, 2, 5])
def test_the_sdk_and_the_studio_see_the_same_piece(paced, max_images):
    prompt = "A short illustrated guide to a cat cafe"
    sdk_parts, sdk_end = sdk_stream(prompt, max_images)
    studio_parts, studio_end = studio_stream(paced, prompt, max_images)
    assert sdk_parts == studio_parts
    assert sdk_end == studio_end
    assert sdk_end["image_count"] == [kind for kind, _ in sdk_parts].count("image")
    assert sdk_end["image_count"] == min(max_images, 3)


def test_the_sdk_and_the_studio_read_the_same_stream_error(paced):
    prompt = "A story that breaks #stream-error"
    sdk_parts, sdk_end = sdk_stream(prompt, 5)
    studio_parts, studio_end = studio_stream(paced, prompt, 5)
    assert sdk_parts == studio_parts and ("image", None) in sdk_parts
    assert (
        sdk_end
        == studio_end
        == {
            "code": "InternalError.Algo",
            "message": "An internal error has occured during algorithm execution.",
        }
    )


def test_the_sdk_streams_with_the_header_alone(paced):
    sdk_stream("Header only", 1)
    entries = [json.loads(line) for line in paced.log_path.read_text().splitlines()]
    (sent,) = [e for e in entries if "Header only" in json.dumps(e.get("body"))]
    assert sent["headers"]["x-dashscope-sse"] == "enable"
    assert "stream" not in sent["body"]["parameters"]
    assert sent["status"] == 200


def test_a_stream_without_interleave_is_the_sync_answer_in_one_event(paced):
    responses = list(
        ImageGeneration.call(
            model="wan2.6-t2i",
            api_key=API_KEY,
            messages=[Message(role="user", content=[{"text": "A lighthouse"}])],
            stream=True,
            n=1,
            size="1280*1280",
        )
    )
    (only,) = responses
    assert only.status_code == HTTPStatus.OK
    assert only.output.choices[0].finish_reason == "stop"
    assert only.usage.image_count == 1 and only.usage.size == "1280*1280"
