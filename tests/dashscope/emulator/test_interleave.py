"""The emulator's mixed text-and-image streams (wan2.6-image, `enable_interleave` over SSE):
the event shape of protocol §5.2, the mode's own limits, the running slot a stream holds,
its pace on the emulator's clock, and the `#stream-error` / `#stream-stall` triggers."""

from __future__ import annotations

import base64
import itertools
import json
import time

import httpx
import pytest

from studio.dashscope.catalog import CATALOG, Endpoint
from studio.dashscope.emulator import EmulatorConfig
from studio.dashscope.emulator.rules import model_rules
from tests.support.emulation import API_KEY, Emulated, make_image, png_size
from tests.support.sse_emulator import SYNC_PATH, interleave_body, threaded_emulator

E1 = Endpoint.MULTIMODAL_GENERATION
SSE_HEADERS = {"Authorization": f"Bearer {API_KEY}", "X-DashScope-SSE": "enable"}


def raw_events(text: str) -> list[list[str]]:
    """The stream split into events, each a list of its lines."""
    return [block.splitlines() for block in text.split("\n\n") if block]


def stream_of(emulated: Emulated, body: dict) -> httpx.Response:
    return emulated.http.post(
        E1.value, json=body, headers=SSE_HEADERS, timeout=httpx.Timeout(5.0, read=60.0)
    )


def datas(response: httpx.Response) -> list[dict]:
    return [json.loads(lines[3].removeprefix("data:")) for lines in raw_events(response.text)]


def content(data: dict) -> dict:
    (choice,) = data["output"]["choices"]
    (item,) = choice["message"]["content"]
    return item


def data_uri(width: int, height: int) -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(width, height)).decode()


def with_image(body: dict, uri: str) -> dict:
    body["input"]["messages"][0]["content"].append({"image": uri})
    return body


def test_a_stream_is_events_as_the_documents_write_them(emulated):
    response = stream_of(emulated, interleave_body("a guide to a cat cafe"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = raw_events(response.text)
    for number, lines in enumerate(events, start=1):
        assert lines[:3] == [f"id:{number}", "event:result", ":HTTP_STATUS/200"]
        assert lines[3].startswith("data:{") and len(lines) == 4
    bodies = datas(response)
    reasons = [b["output"]["choices"][0]["finish_reason"] for b in bodies]
    assert reasons == ["null"] * (len(bodies) - 1) + ["stop"]
    assert {b["request_id"] for b in bodies} == {bodies[0]["request_id"]}
    assert all(b["output"]["finished"] is True for b in bodies)  # as §5.2's sample says
    kinds = [content(b)["type"] for b in bodies]
    assert kinds[0] == "text" and kinds[-1] == "text" and kinds.count("image") == 3
    assert "image" in kinds[1:-1] and "text" in kinds[kinds.index("image") :]
    counts = [b["usage"]["image_count"] for b in bodies]
    assert counts == sorted(counts) and counts[-1] == 3
    assert set(bodies[-1]["usage"]) == {
        "total_tokens",
        "image_count",
        "output_tokens",
        "size",
        "input_tokens",
    }
    text = "".join(content(b)["text"] for b in bodies if content(b)["type"] == "text")
    assert "a guide to a cat cafe" in text


def test_the_images_are_real_results_of_the_size_reported(emulated):
    bodies = datas(stream_of(emulated, interleave_body("a lighthouse", max_images=2)))
    urls = [content(b)["image"] for b in bodies if content(b)["type"] == "image"]
    assert len(urls) == 2
    assert bodies[-1]["usage"]["size"] == "1280*1280"  # no size and no image
    for url in urls:
        assert png_size(emulated.client.download(url)) == (1280, 1280)


@pytest.mark.parametrize(
    ("size", "image", "expected"),
    [
        ("1000*1000", None, "992*992"),  # snapped to 16
        (None, (2000, 1000), "1808*896"),  # the input's shape, cut to 1280² in all
        (None, (500, 400), "864*688"),  # the input's shape, brought up to 768²
        (None, (1024, 768), "1024*768"),  # the input's own size, within the range
    ],
)
def test_the_size_follows_the_request_or_the_input_within_the_range(
    emulated, size, image, expected
):
    body = interleave_body("a poster", max_images=1, **({"size": size} if size else {}))
    if image:
        with_image(body, data_uri(*image))
    usage = datas(stream_of(emulated, body))[-1]["usage"]
    assert usage["size"] == expected
    width, height = map(int, expected.split("*"))
    assert width % 16 == 0 and height % 16 == 0
    assert 768**2 <= width * height <= 1280**2


def test_max_images_is_an_upper_bound(emulated):
    one = datas(stream_of(emulated, interleave_body("x", max_images=1)))
    assert [content(b)["type"] for b in one].count("image") == 1
    assert one[-1]["usage"]["image_count"] == 1


@pytest.mark.parametrize(
    ("parameters", "images", "words"),
    [
        ({"n": 2}, 0, "n must be 1"),
        ({"max_images": 6}, 0, "max_images must be from 1 to 5"),
        ({"max_images": 0}, 0, "max_images must be from 1 to 5"),
        ({"size": "2000*2000"}, 0, "between 768×768 and 1280×1280"),
        ({"size": "700*700"}, 0, "between 768×768 and 1280×1280"),
        ({"size": "1K"}, 0, "is not a size"),
        ({"stream": False}, 0, "stream true"),
        ({}, 2, "0 to 1 input images"),
    ],
)
def test_the_modes_own_limits_are_refused(emulated, parameters, images, words):
    body = interleave_body("x", **parameters)
    for _ in range(images):
        with_image(body, data_uri(640, 640))
    refused = stream_of(emulated, body)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["code"] == "InvalidParameter"
    assert words in refused.json()["message"]


def test_the_sdk_sends_the_header_alone_and_that_streams(emulated):
    body = interleave_body("x", max_images=1)
    del body["parameters"]["stream"]
    assert stream_of(emulated, body).headers["content-type"] == "text/event-stream"


def test_interleave_on_the_async_endpoint_is_refused(emulated):
    refused = emulated.post(Endpoint.IMAGE_GENERATION, interleave_body("x"))
    assert refused.status_code == 400
    assert "sync endpoint only" in refused.json()["message"]
    assert emulated.task_ids() == []


def test_editing_without_interleave_still_needs_an_image(emulated):
    body = interleave_body("x")
    body["parameters"] = {"n": 1}
    refused = emulated.post(E1, body)
    assert refused.status_code == 400 and "needs an input image" in refused.json()["message"]


def test_the_pace_comes_from_the_config_on_the_emulators_clock(emulated):
    emulated.emulator.config.stream_event_seconds = 0.5
    emulated.emulator.config.stream_image_seconds = 2.0
    start = emulated.clock.now()
    with emulated.http.stream(
        "POST", E1.value, json=interleave_body("x", max_images=1), headers=SSE_HEADERS
    ) as response:
        seen = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                kind = content(json.loads(line[5:]))["type"]
                seen.append((kind, round(emulated.clock.now() - start, 6)))
    assert seen[0] == ("text", 0.5)
    image_at = next(at for kind, at in seen if kind == "image")
    before = max(at for kind, at in seen if at < image_at)
    assert image_at - before == pytest.approx(2.0)


def test_a_stream_holds_a_running_slot_until_it_ends_or_is_closed(emulated):
    emulated.emulator.config.max_running_per_model = 1
    sync = with_image(interleave_body("an edit"), data_uri(640, 640))
    sync["parameters"] = {"n": 1}
    with emulated.http.stream(
        "POST", E1.value, json=interleave_body("x"), headers=SSE_HEADERS
    ) as response:
        lines = response.iter_lines()
        assert next(lines) == "id:1"
        busy = emulated.post(E1, sync)
        assert busy.status_code == 429 and busy.json()["code"] == "Throttling"
    counts = emulated.emulator.counts
    assert counts["streams.abandoned"] == 1 and counts["streams"] == 1
    assert emulated.post(E1, sync).status_code == 200


def test_a_task_waits_for_the_stream_slot(emulated):
    emulated.emulator.config.max_running_per_model = 1
    with emulated.http.stream(
        "POST", E1.value, json=interleave_body("x"), headers=SSE_HEADERS
    ) as response:
        next(response.iter_lines())
        task = with_image(interleave_body("an edit"), data_uri(640, 640))
        task["parameters"] = {"n": 1}
        submitted = emulated.post(Endpoint.IMAGE_GENERATION, task)
        assert submitted.status_code == 200
        (queued,) = emulated.emulator.tasks.values()
        # The stream planned its end; the task starts no sooner.
        assert queued.start_at >= emulated.clock.now() + 1.0


def test_stream_error_sends_text_and_an_image_then_an_error_event(emulated):
    response = stream_of(emulated, interleave_body("a story #stream-error"))
    events = raw_events(response.text)
    last = events[-1]
    assert last[:2] == [f"id:{len(events)}", "event:error"]
    error = json.loads(last[-1].removeprefix("data:"))
    assert set(error) == {"code", "message", "request_id"}
    kinds = [content(json.loads(lines[-1][5:]))["type"] for lines in events[:-1]]
    assert "text" in kinds and "image" in kinds
    assert error["request_id"] == json.loads(events[0][-1][5:])["request_id"]
    assert emulated.emulator.counts["streams.errors"] == 1


def test_stream_stall_goes_silent_longer_than_a_read_timeout(emulated):
    emulated.emulator.config.stream_stall_seconds = 100.0
    sent = []
    with (
        pytest.raises(httpx.ReadTimeout),
        emulated.http.stream(
            "POST",
            E1.value,
            json=interleave_body("x #stream-stall"),
            headers=SSE_HEADERS,
            timeout=httpx.Timeout(5.0, read=10.0),
        ) as r,
    ):
        sent.extend(line for line in r.iter_lines() if line.startswith("data:"))
    kinds = [content(json.loads(line[5:]))["type"] for line in sent]
    assert "image" in kinds and "text" in kinds
    assert emulated.emulator.counts["streams.stalled"] == 1
    assert not any(
        end > emulated.clock.now() + 200 for end in emulated.emulator._sync_calls["wan2.6-image"]
    )


def test_the_served_app_sends_each_event_as_it_is_made():
    config = EmulatorConfig(stream_event_seconds=0.15, stream_image_seconds=0.3)
    with threaded_emulator(config) as (emulator, base_url):
        arrivals = []
        with httpx.stream(
            "POST",
            base_url + SYNC_PATH,
            json=interleave_body("x", max_images=1),
            headers=SSE_HEADERS,
            timeout=10,
        ) as response:
            assert response.headers["content-type"] == "text/event-stream"
            for line in response.iter_lines():
                if line.startswith("id:"):
                    arrivals.append(time.monotonic())
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert len(arrivals) >= 5
        assert min(gaps) > 0.1  # one by one, not gathered into one write
        assert emulator.counts["streams.finished"] == 1
        assert emulator._sync_calls["wan2.6-image"] == []


def test_a_served_stream_whose_client_leaves_gives_its_slot_back():
    config = EmulatorConfig(stream_event_seconds=0.1, stream_image_seconds=0.1)
    with threaded_emulator(config) as (emulator, base_url):
        with httpx.stream(
            "POST", base_url + SYNC_PATH, json=interleave_body("x"), headers=SSE_HEADERS, timeout=10
        ) as response:
            next(response.iter_lines())
        deadline = time.monotonic() + 5
        while emulator._sync_calls["wan2.6-image"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert emulator._sync_calls["wan2.6-image"] == []
        assert emulator.counts["streams.abandoned"] == 1


def test_the_client_believes_the_modes_limits_no_tighter_than_the_emulator():
    mode = model_rules("wan2.6-image").interleave
    ours = CATALOG["wan2.6-image"].interleave
    assert mode is not None and ours is not None
    assert ours.images == mode.images == (0, 1)
    assert (ours.n.min, ours.n.max) == (mode.n.low, mode.n.high) == (1, 1)
    assert (ours.max_images.min, ours.max_images.max, ours.max_images.default) == (1, 5, 5)
    assert (mode.max_images.low, mode.max_images.high, mode.max_images.default) == (1, 5, 5)
    for rule in (ours.size, mode.size):
        assert (rule.min_pixels, rule.max_pixels, rule.snap) == (768**2, 1280**2, 16)
        assert rule.default == "1280*1280" and rule.aspect is None and not rule.tiers


def test_the_pace_is_read_from_the_environment():
    config = EmulatorConfig.from_env(
        {
            "DASHSCOPE_EMULATOR_STREAM_EVENT_SECONDS": "0.5",
            "DASHSCOPE_EMULATOR_STREAM_IMAGE_SECONDS": "2",
            "DASHSCOPE_EMULATOR_STREAM_STALL_SECONDS": "900",
        },
        stream_stall_seconds=30.0,
    )
    assert (config.stream_event_seconds, config.stream_image_seconds) == (0.5, 2.0)
    assert config.stream_stall_seconds == 30.0
