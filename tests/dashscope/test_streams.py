"""The client's stream reader: mixed text and images (wan2.6-image, `enable_interleave`),
read as Server-Sent Events from the in-process and the served emulator; the verbatim
sample of protocol §5.2; errors, stalls and deadlines; refusals before sending."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from studio.dashscope.catalog import Endpoint
from studio.dashscope.client import DashScopeClient
from studio.dashscope.emulator import FaultRule
from studio.dashscope.errors import (
    DashScopeError,
    RequestRefused,
    StreamCut,
    StreamDeadlineExceeded,
    StreamStalled,
    SubmitUncertain,
)
from studio.dashscope.streams import (
    ImagePart,
    SseEvent,
    StreamEvent,
    StreamFailed,
    StreamFinished,
    StreamLimits,
    TextPart,
    parse_event,
    read_sse,
)
from studio.dashscope.types import GenerationRequest, InputImage, Usage
from studio.dashscope.wire import build_body
from tests.support.emulation import API_KEY, Emulated, ServedEmulator, make_image, png_size
from tests.support.sse_emulator import served_with_pace

# Protocol §5.2's sample event, byte for byte (its request id cut short there too).
SAMPLE = (
    "id:1\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":[{"type":"text","text":"肉"}],'
    '"role":"assistant"},"finish_reason":"null"}],"finished":true},"usage":{"total_tokens":571,'
    '"image_count":3,"output_tokens":543,"size":"1280*1280","input_tokens":28},'
    '"request_id":"d2dc..."}\n'
    "\n"
)


def piece(prompt: str = "a guide to a cat cafe", **fields: object) -> GenerationRequest:
    return GenerationRequest(model="wan2.6-image", prompt=prompt, **fields)  # type: ignore[arg-type]


def kinds(events: list[StreamEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


# -- reading events -------------------------------------------------------------------------


def test_the_documents_sample_event_reads_as_one_text_part_and_no_end():
    (raw,) = list(read_sse(SAMPLE.splitlines()))
    assert raw == SseEvent(id="1", event="result", data=raw.data)
    assert parse_event(raw) == [TextPart(text="肉", event_id="1")]


def test_the_last_event_ends_the_stream_with_its_usage():
    last = SAMPLE.replace('"finish_reason":"null"', '"finish_reason":"stop"')
    (raw,) = list(read_sse(last.splitlines()))
    text, finished = parse_event(raw)
    assert text == TextPart(text="肉", event_id="1")
    assert finished == StreamFinished(
        usage=Usage(image_count=3, width=1280, height=1280, input_tokens=28, output_tokens=543),
        request_id="d2dc...",
        event_id="1",
    )


def test_an_error_event_and_lines_the_reader_ignores():
    lines = [
        ": a comment",
        "retry: 10",
        "status:500",
        "id:7",
        "event:error",
        ":HTTP_STATUS/500",
        'data:{"code":"InternalError.Algo","message":"boom","request_id":"r-1"}',
        "",
    ]
    (raw,) = list(read_sse(lines))
    assert parse_event(raw) == [StreamFailed("InternalError.Algo", "boom", "r-1", "7")]


def test_an_image_part_keeps_its_url_out_of_its_repr():
    (raw,) = read_sse(
        [
            "id:2",
            "event:result",
            'data:{"output":{"choices":[{"message":{"content":[{"type":"image",'
            '"image":"https://x.oss/a.png?Signature=s3cret"}]},"finish_reason":"null"}]}}',
            "",
        ]
    )
    (image,) = parse_event(raw)
    assert isinstance(image, ImagePart) and image.url.endswith("Signature=s3cret")
    assert "s3cret" not in repr(image)


# -- against the in-process emulator ------------------------------------------------------


def test_a_piece_streams_text_and_images_in_order(emulated: Emulated):
    events = list(emulated.client.stream(piece(max_images=2)))
    assert kinds(events)[0] == "TextPart" and kinds(events)[-1] == "StreamFinished"
    images = [e for e in events if isinstance(e, ImagePart)]
    assert len(images) == 2
    first_image = kinds(events).index("ImagePart")
    assert "TextPart" in kinds(events)[first_image:]
    finished = events[-1]
    assert isinstance(finished, StreamFinished)
    assert finished.usage is not None and finished.usage.image_count == 2
    assert (finished.usage.width, finished.usage.height) == (1280, 1280)
    text = "".join(e.text for e in events if isinstance(e, TextPart))
    assert "a guide to a cat cafe" in text
    for image in images:
        assert png_size(emulated.client.download(image.url)) == (1280, 1280)


def test_the_request_is_sent_as_the_documents_ask(emulated: Emulated):
    image = InputImage.from_bytes(make_image(640, 480))
    request = piece(images=(image,), max_images=1, size="1024*768")
    body = build_body(replace(request, enable_interleave=True), Endpoint.MULTIMODAL_GENERATION)
    assert body["parameters"] == {
        "size": "1024*768",
        "enable_interleave": True,
        "max_images": 1,
        "stream": True,
    }
    list(emulated.client.stream(request))
    (entry,) = emulated.emulator.requests
    assert entry["headers"]["x-dashscope-sse"] == "enable"
    assert entry["body"]["parameters"]["stream"] is True


def test_stream_error_is_an_event_after_text_and_an_image(emulated: Emulated):
    events = list(emulated.client.stream(piece("a story #stream-error")))
    assert "TextPart" in kinds(events) and "ImagePart" in kinds(events)
    failed = events[-1]
    assert isinstance(failed, StreamFailed)
    assert failed.code == "InternalError.Algo" and failed.message and failed.request_id


def test_stream_stall_hits_the_stall_limit(emulated: Emulated):
    events: list[StreamEvent] = []
    with pytest.raises(StreamStalled) as raised:
        events.extend(
            emulated.client.stream(piece("x #stream-stall"), limits=StreamLimits(stall=5))
        )
    assert "ImagePart" in kinds(events)
    assert raised.value.code == "StreamStalled" and not raised.value.retryable
    assert emulated.emulator._sync_calls["wan2.6-image"] == []  # the slot is back


def test_a_slow_stream_runs_past_its_deadline(emulated: Emulated):
    emulated.emulator.config.stream_image_seconds = 4.0
    limits = StreamLimits(deadline=6.0, stall=5.0)
    with pytest.raises(StreamDeadlineExceeded):
        list(emulated.client.stream(piece(), limits=limits))


def test_a_refusal_before_the_stream_is_the_providers_error(emulated: Emulated):
    emulated.emulator.config.faults = [FaultRule.parse("generate:429")]
    with pytest.raises(DashScopeError) as raised:
        list(emulated.client.stream(piece()))
    assert raised.value.status == 429 and raised.value.code == "Throttling.RateQuota"


def test_a_connection_dropped_mid_stream_is_cut(emulated: Emulated, monkeypatch):
    from studio.dashscope.emulator import streams as emulator_streams

    monkeypatch.setattr(
        emulator_streams,
        "script",
        lambda prompt, images, triggers: [emulator_streams._Step("text", "only ")],
    )
    real_parts = emulator_streams._Piece.parts

    def without_end(self):  # the last event never comes
        for wait, part in real_parts(self):
            yield wait, part.replace(b'"stop"', b'"null"')

    monkeypatch.setattr(emulator_streams._Piece, "parts", without_end)
    with pytest.raises(StreamCut):
        list(emulated.client.stream(piece()))


def test_a_stream_dropped_after_it_was_sent_is_uncertain_and_gives_its_slot_back(
    emulated: Emulated,
):
    emulated.emulator.config.faults = [FaultRule.parse("generate:drop-after")]
    with pytest.raises(SubmitUncertain):
        list(emulated.client.stream(piece()))
    assert emulated.emulator._sync_calls["wan2.6-image"] == []
    assert emulated.emulator.counts["streams.abandoned"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"n": 2}, "n"),
        ({"max_images": 6}, "max_images"),
        ({"max_images": 0}, "max_images"),
        ({"size": "2000*2000"}, "size"),
        ({"size": "640*640"}, "size"),
        ({"size": "1K"}, "size"),
        ({"images": (InputImage.from_bytes(make_image(300, 300)),) * 2}, "images"),
    ],
)
def test_the_modes_limits_are_refused_before_anything_is_sent(emulated, fields, field):
    with pytest.raises(RequestRefused) as raised:
        emulated.client.stream(piece(**fields))
    assert [problem.field for problem in raised.value.problems] == [field]
    assert not emulated.emulator.requests


def test_the_mode_comes_only_as_a_stream(emulated: Emulated):
    for send in (emulated.client.generate, emulated.client.submit):
        with pytest.raises(RequestRefused, match="only as a live stream"):
            send(piece(enable_interleave=True))  # type: ignore[operator]
    with pytest.raises(RequestRefused, match="max_images is only for mixed"):
        emulated.client.generate(
            piece(images=(InputImage.from_bytes(make_image(640, 640)),), max_images=2)
        )
    with pytest.raises(RequestRefused, match="does not take enable_interleave"):
        emulated.client.stream(GenerationRequest(model="wan2.7-image", prompt="x"))
    assert not emulated.emulator.requests


def test_no_signed_url_reaches_the_log(emulated: Emulated, caplog):
    caplog.set_level(logging.DEBUG, logger="studio.dashscope.client")
    caplog.set_level(logging.DEBUG, logger="httpx")
    events = list(emulated.client.stream(piece(max_images=1)))
    (image,) = [e for e in events if isinstance(e, ImagePart)]
    assert "ImagePart" in caplog.text
    assert image.url.split("?")[1] not in caplog.text
    assert image.url.split("?")[0] not in caplog.text


# -- against the served emulator ----------------------------------------------------------


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEmulator]:
    log = Path(tmp_path_factory.mktemp("sse")) / "requests.jsonl"
    with served_with_pace(log, event=0.02, image=0.05, stall=30.0) as served:
        yield served


def served_client(served: ServedEmulator) -> DashScopeClient:
    return DashScopeClient(api_key=API_KEY, base_url=served.base_url)


def test_the_served_emulator_streams_to_the_client(paced: ServedEmulator):
    with served_client(paced) as client:
        events = list(client.stream(piece(max_images=2)))
    assert kinds(events).count("ImagePart") == 2 and kinds(events)[-1] == "StreamFinished"
    assert paced.control("stats")["counts"]["streams.finished"] >= 1


def test_a_served_stall_hits_the_stall_limit_in_real_time(paced: ServedEmulator):
    with served_client(paced) as client:
        events: list[StreamEvent] = []
        with pytest.raises(StreamStalled):
            events.extend(client.stream(piece("x #stream-stall"), limits=StreamLimits(stall=0.5)))
    assert "ImagePart" in kinds(events)


class _BufferedResponse:
    """A response whose lines have all arrived already."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def iter_lines(self):  # type: ignore[no-untyped-def]
        return iter(self._lines)


def test_time_the_caller_keeps_an_event_is_not_the_providers_silence():
    from studio.dashscope import streams as reader
    from studio.dashscope.errors import StreamStalled

    now = [0.0]
    watch = reader._Watch(reader.StreamLimits(deadline=100, stall=60), lambda: now[0])
    image = {"output": {"choices": [{"message": {"content": [{"image": "https://x/a.png"}]}}]}}
    data = "data:" + json.dumps(image)
    lines = ["id:1", data, "", "id:2", data, "", "id:3", data, ""]
    events = reader._events(_BufferedResponse(lines), "/p", watch)
    next(events)
    now[0] += 90  # the worker stores the first picture for 90 s; the next event is waiting
    assert isinstance(next(events), reader.ImagePart)
    # The provider's own silence still counts: 61 s between reading two events.
    next_line = watch.last
    now[0] = next_line + 61
    with pytest.raises(StreamStalled):
        watch.check()
