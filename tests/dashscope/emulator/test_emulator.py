"""The emulator speaks the provider's protocol: states, shapes, limits, lifetimes, faults."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time

import httpx
import pytest
from PIL import Image

from studio.dashscope.catalog import Endpoint
from studio.dashscope.emulator import (
    Emulator,
    EmulatorConfig,
    EmulatorTransport,
    FakeClock,
    FaultRule,
    make_wsgi_app,
)
from studio.dashscope.emulator.render import BOX_COLOUR, box_on_canvas, placements
from studio.dashscope.types import GenerationRequest, InputImage
from studio.dashscope.validation import output_size
from tests.support.emulation import API_KEY, Emulated, make_image

E2 = Endpoint.IMAGE_GENERATION


def t2i_body(prompt: str = "a lighthouse", n: int = 1) -> dict:
    return {
        "model": "wan2.6-t2i",
        "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
        "parameters": {"size": "1280*1280", "n": n},
    }


def legacy_body(prompt: str = "a lighthouse", n: int = 2) -> dict:
    return {
        "model": "wan2.5-t2i-preview",
        "input": {"prompt": prompt},
        "parameters": {"size": "1280*1280", "n": n},
    }


def submit(emulated: Emulated, body: dict, endpoint: Endpoint = E2) -> str:
    response = emulated.post(endpoint, body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["output"] == {"task_status": "PENDING", "task_id": payload["output"]["task_id"]}
    assert set(payload) == {"output", "request_id"}
    return payload["output"]["task_id"]


def fetch(emulated: Emulated, task_id: str) -> dict:
    response = emulated.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    return response.json()


def test_a_task_moves_through_pending_running_succeeded_with_documented_fields(emulated):
    task_id = submit(emulated, t2i_body(n=2))
    pending = fetch(emulated, task_id)["output"]
    assert pending["task_status"] == "PENDING" and "scheduled_time" not in pending
    emulated.clock.advance(1.5)
    running = fetch(emulated, task_id)["output"]
    assert running["task_status"] == "RUNNING" and "end_time" not in running
    emulated.clock.advance(3)
    body = fetch(emulated, task_id)
    output = body["output"]
    assert output["task_status"] == "SUCCEEDED" and output["finished"] is True
    assert {"submit_time", "scheduled_time", "end_time"} <= set(output)
    assert len(output["submit_time"]) == len("2026-03-31 22:58:47.646")
    # wan2.6 returns one choice per image.
    assert [len(c["message"]["content"]) for c in output["choices"]] == [1, 1]
    assert output["choices"][0]["message"]["content"][0]["type"] == "image"
    assert body["usage"] == {
        "image_count": 2,
        "input_tokens": 0,
        "output_tokens": 0,
        "size": "1280*1280",
        "total_tokens": 0,
    }


def test_wan27_puts_all_images_in_one_choice_and_reports_tokens(emulated):
    body = t2i_body() | {"model": "wan2.7-image", "parameters": {"size": "1K", "n": 3}}
    task_id = submit(emulated, body)
    emulated.clock.advance(10)
    result = fetch(emulated, task_id)
    assert [len(c["message"]["content"]) for c in result["output"]["choices"]] == [3]
    assert result["usage"]["size"] == "1024*1024" and result["usage"]["input_tokens"] > 0


def test_qwen_sync_answers_have_width_and_height_and_no_type(emulated):
    body = {
        "model": "qwen-image-max",
        "input": {"messages": [{"role": "user", "content": [{"text": "a sign"}]}]},
        "parameters": {"size": "1328*1328"},
    }
    response = emulated.post(Endpoint.MULTIMODAL_GENERATION, body)
    payload = response.json()
    assert payload["usage"] == {"height": 1328, "image_count": 1, "width": 1328}
    assert "type" not in payload["output"]["choices"][0]["message"]["content"][0]
    assert "finished" not in payload["output"]


def test_legacy_tasks_report_results_metrics_and_partial_failures(emulated):
    task_id = submit(emulated, legacy_body("a vase #partial", n=2), Endpoint.TEXT2IMAGE)
    emulated.clock.advance(1.5)
    assert fetch(emulated, task_id)["output"]["task_metrics"] == {
        "TOTAL": 2,
        "SUCCEEDED": 0,
        "FAILED": 0,
    }
    emulated.clock.advance(10)
    body = fetch(emulated, task_id)
    output = body["output"]
    assert output["task_status"] == "SUCCEEDED"
    assert output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1}
    failed, ok = output["results"]
    assert failed["code"] == "InternalError.Timeout" and "url" not in failed
    assert ok["url"] and ok["orig_prompt"] == "a vase #partial"
    assert body["usage"] == {"image_count": 1}


def test_the_legacy_image2image_endpoint_takes_input_images(emulated):
    data = make_image(640, 480, fmt="JPEG")
    body = {
        "model": "wan2.5-i2i-preview",
        "input": {
            "prompt": "blend",
            "images": ["data:image/jpeg;base64," + base64.b64encode(data).decode()],
        },
        "parameters": {"n": 1},
    }
    task_id = submit(emulated, body, Endpoint.IMAGE2IMAGE)
    emulated.clock.advance(10)
    result = fetch(emulated, task_id)
    assert result["output"]["results"][0]["url"]
    # No size: about 1280² with the last image's 4:3 aspect.
    url = result["output"]["results"][0]["url"]
    image = Image.open(io.BytesIO(emulated.http.get(url).content))
    assert image.size == (1478, 1109)


@pytest.mark.parametrize(
    ("trigger", "code"),
    [("#unsafe-output", "DataInspectionFailed"), ("#fail", "InternalError.Algo")],
)
def test_task_level_failures_read_failed_with_code_inside_output(emulated, trigger, code):
    task_id = submit(emulated, t2i_body(f"a cat {trigger}"))
    emulated.clock.advance(10)
    body = fetch(emulated, task_id)
    assert body["output"]["task_status"] == "FAILED"
    assert body["output"]["code"] == code and body["output"]["message"]
    assert "code" not in body


def test_input_moderation_refuses_the_request(emulated):
    response = emulated.post(E2, t2i_body("a cat #unsafe"))
    assert response.status_code == 400
    assert response.json()["code"] == "DataInspectionFailed"
    assert response.json()["message"] == "Input data may contain inappropriate content."


def test_at_most_k_tasks_run_per_model_and_the_rest_wait(emulated):
    emulated.emulator.config.max_running_per_model = 2
    ids = [submit(emulated, t2i_body()) for _ in range(3)]
    emulated.clock.advance(1.5)
    assert [fetch(emulated, i)["output"]["task_status"] for i in ids] == [
        "RUNNING",
        "RUNNING",
        "PENDING",
    ]
    emulated.clock.advance(3)
    assert [fetch(emulated, i)["output"]["task_status"] for i in ids] == [
        "SUCCEEDED",
        "SUCCEEDED",
        "RUNNING",
    ]


def test_cancelling_a_waiting_task_lets_the_next_one_start(emulated):
    emulated.emulator.config.max_running_per_model = 1
    first, second, third = (submit(emulated, t2i_body()) for _ in range(3))
    emulated.clock.advance(1.5)
    assert emulated.http.post(
        f"/tasks/{second}/cancel", headers={"Authorization": f"Bearer {API_KEY}"}
    ).json().keys() == {"request_id"}
    emulated.clock.advance(3)
    assert fetch(emulated, third)["output"]["task_status"] == "RUNNING"
    assert fetch(emulated, second)["output"]["task_status"] == "CANCELED"
    refused = emulated.http.post(
        f"/tasks/{first}/cancel", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert refused.status_code == 400 and refused.json()["code"] == "UnsupportedOperation"


def test_task_ids_read_unknown_after_their_lifetime(emulated):
    task_id = submit(emulated, t2i_body())
    emulated.clock.advance(24 * 3600 + 1)
    assert fetch(emulated, task_id)["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
    assert fetch(emulated, "no-such-task")["output"]["task_status"] == "UNKNOWN"


def test_result_urls_work_until_they_expire(emulated):
    task_id = submit(emulated, t2i_body())
    emulated.clock.advance(10)
    url = fetch(emulated, task_id)["output"]["choices"][0]["message"]["content"][0]["image"]
    assert "Expires=" in url and "Signature=" in url
    assert emulated.http.get(url).headers["content-type"] == "image/png"
    emulated.clock.advance(24 * 3600)
    expired = emulated.http.get(url)
    assert expired.status_code == 403 and b"Request has expired." in expired.content
    unsigned = emulated.http.get(url.split("?")[0])
    assert unsigned.status_code == 403


def test_submits_beyond_the_rate_are_throttled(emulated):
    emulated.emulator.config.submits_per_second = 2
    statuses = [emulated.post(E2, t2i_body()).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    throttled = emulated.post(E2, t2i_body())
    assert throttled.json()["code"] == "Throttling.RateQuota"
    emulated.clock.advance(1.01)
    assert emulated.post(E2, t2i_body()).status_code == 200
    assert len(emulated.task_ids()) == 3


def test_queries_beyond_20_per_second_are_throttled(emulated):
    emulated.emulator.config.queries_per_second = 20
    task_id = submit(emulated, t2i_body())
    codes = [emulated.get(f"/tasks/{task_id}").status_code for _ in range(21)]
    assert codes.count(200) == 20 and codes[-1] == 429
    assert emulated.get("/tasks").status_code == 429
    emulated.clock.advance(1.01)
    assert emulated.get("/tasks").status_code == 200


def test_async_endpoints_require_the_async_header(emulated):
    response = emulated.http.post(
        E2.value, json=t2i_body(), headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert response.status_code == 403
    assert response.json()["message"] == "current user api does not support synchronous calls"


@pytest.mark.parametrize(
    ("key", "message"), [(None, "No API-key provided."), ("abc", "Invalid API-key provided.")]
)
def test_a_missing_or_wrong_key_is_401(emulated, key, message):
    response = emulated.post(E2, t2i_body(), key=key)
    assert response.status_code == 401
    assert response.json()["code"] == "InvalidApiKey" and response.json()["message"] == message


def test_unknown_parameters_and_sdk_extras_are_ignored(emulated):
    body = t2i_body()
    body["parameters"] |= {"is_async": True, "result_format": "message", "future_flag": 3}
    assert emulated.post(E2, body).status_code == 200


def test_a_model_on_the_wrong_endpoint_or_an_unknown_model_is_refused(emulated):
    wrong = emulated.post(Endpoint.TEXT2IMAGE, t2i_body())
    assert wrong.status_code == 400 and wrong.json()["code"] == "InvalidParameter"
    unknown = emulated.post(E2, t2i_body() | {"model": "wan9"})
    assert unknown.json()["message"] == "Model not exist."
    empty = emulated.post(E2, {"input": {}})
    assert empty.json()["code"] == "BadRequest.EmptyModel"


def test_list_is_flat_filtered_and_limited_to_24_hours(emulated):
    submit(emulated, t2i_body())
    submit(emulated, legacy_body(), Endpoint.TEXT2IMAGE)
    body = emulated.get("/tasks", model_name="wan2.5-t2i-preview", page_no=1, page_size=10).json()
    assert body["total"] == 1 and "output" not in body
    row = body["data"][0]
    assert row["model_name"] == "wan2.5-t2i-preview" and row["status"] == "PENDING"
    assert isinstance(row["gmt_create"], int)
    too_wide = emulated.get("/tasks", start_time="20260101000000", end_time="20260103000000")
    assert too_wide.status_code == 400


def test_times_are_written_and_read_in_the_zone_configured(emulated):
    from datetime import UTC, datetime, timedelta

    emulated.emulator.config.utc_offset_minutes = 480
    task_id = submit(emulated, t2i_body())
    now = datetime.fromtimestamp(emulated.clock.now(), UTC)
    written = datetime.strptime(
        fetch(emulated, task_id)["output"]["submit_time"][:19], "%Y-%m-%d %H:%M:%S"
    )
    assert abs((written - (now + timedelta(hours=8)).replace(tzinfo=None)).total_seconds()) < 2

    def listed(moment: datetime) -> int:
        window = {
            "start_time": (moment - timedelta(minutes=1)).strftime("%Y%m%d%H%M%S"),
            "end_time": (moment + timedelta(minutes=1)).strftime("%Y%m%d%H%M%S"),
        }
        return emulated.get("/tasks", **window).json()["total"]

    assert listed(now + timedelta(hours=8)) == 1  # a window written in Beijing time
    assert listed(now) == 0  # the same moment written in UTC is eight hours earlier


def test_edit_results_show_each_region_where_it_was_drawn(emulated):
    first = make_image(1200, 800, fmt="JPEG", color=(30, 30, 30))
    second = make_image(900, 1200, fmt="JPEG", color=(30, 30, 30))
    box = (300, 400, 600, 900)
    request = GenerationRequest(
        model="wan2.7-image-pro",
        prompt="replace the cup in image 2 with the vase from image 1",
        images=(InputImage.from_bytes(first), InputImage.from_bytes(second)),
        bbox_list=((), (box,)),
        size="2K",
        n=1,
    )
    result = emulated.client.generate(request)
    width, height = output_size(request)
    assert (result.usage.width, result.usage.height) == (width, height) == (1774, 2365)
    png = Image.open(io.BytesIO(emulated.client.download(result.image_urls[0]))).convert("RGB")
    assert png.size == (width, height)
    place = placements([(1200, 800), (900, 1200)], width, height)[1]
    x1, y1, x2, y2 = box_on_canvas(place, box)
    for point in ((x1 + 1, (y1 + y2) // 2), (x2 - 1, (y1 + y2) // 2), ((x1 + x2) // 2, y2 - 1)):
        assert png.getpixel(point) == BOX_COLOUR, point
    assert png.getpixel(((x1 + x2) // 2, (y1 + y2) // 2)) != BOX_COLOUR


def test_the_log_summarises_images_and_never_holds_the_key(tmp_path):
    log = tmp_path / "requests.jsonl"
    emulated = Emulated(EmulatorConfig(log_path=str(log)))
    data = make_image(640, 480)
    body = t2i_body() | {"model": "wan2.7-image"}
    body["input"]["messages"][0]["content"].append(
        {"image": "data:image/png;base64," + base64.b64encode(data).decode()}
    )
    assert emulated.post(E2, body).status_code == 200
    text = log.read_text()
    assert API_KEY not in text and "base64" not in text
    entry = json.loads(text.splitlines()[0])
    image = entry["body"]["input"]["messages"][0]["content"][1]["image"]
    assert image["width"] == 640 and image["height"] == 480 and len(image["sha256"]) == 64


def test_the_wsgi_app_works_with_httpx_wsgi_transport():
    emulator = Emulator(EmulatorConfig(running_seconds=0), clock=FakeClock())
    http = httpx.Client(
        base_url="http://emulator.test/api/v1",
        transport=httpx.WSGITransport(app=make_wsgi_app(emulator)),
    )
    response = http.post(
        Endpoint.MULTIMODAL_GENERATION.value,
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={
            "model": "qwen-image-2.0",
            "input": {"messages": [{"role": "user", "content": [{"text": "hello"}]}]},
            "parameters": {"size": "512*512"},
        },
    )
    assert response.status_code == 200
    url = response.json()["output"]["choices"][0]["message"]["content"][0]["image"]
    # The URL names a result host, not the API's origin; the app answers it by its path.
    assert url.startswith("https://dashscope-result-sh.oss-cn-shanghai.aliyuncs.com/results/")
    assert Image.open(io.BytesIO(http.get(url).content)).size == (512, 512)


def test_the_in_process_transport_sees_the_same_emulator(emulated):
    assert isinstance(emulated.transport, EmulatorTransport)
    emulated.client.submit(GenerationRequest(model="wan2.6-t2i", prompt="x", n=1))
    assert emulated.emulator.stats()["tasks"] == {"PENDING": 1}


def test_the_served_emulator_really_drops_connections_and_slows_down(served_emulator):
    served_emulator.control("faults", {"faults": "fetch:dropx1,fetch:slow=1x1"})
    try:
        url = f"{served_emulator.base_url}/tasks/no-such-task"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url, headers=headers)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(url, headers=headers, timeout=0.3)
        assert httpx.get(url, headers=headers).json()["output"]["task_status"] == "UNKNOWN"
    finally:
        served_emulator.control("faults", {"faults": ""})


def test_a_web_page_cannot_work_the_served_emulators_controls(served_emulator):
    """What a page on another site can send without asking first: a text/plain POST."""
    origin = served_emulator.base_url.removesuffix("/api/v1")
    response = httpx.post(
        f"{origin}/_emulator/faults",
        content=b'{"faults": "submit:500x1000"}',
        headers={"Content-Type": "text/plain", "Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 415
    assert served_emulator.control("stats")["faults"] == []


def test_configuration_comes_from_the_environment_and_flags():
    config = EmulatorConfig.from_env(
        {
            "DASHSCOPE_EMULATOR_RUNNING_SECONDS": "5",
            "DASHSCOPE_EMULATOR_MAX_RUNNING_PER_MODEL": "1",
            "DASHSCOPE_EMULATOR_FAULTS": "submit:429x2,fetch:503x*",
        },
        max_running_per_model=4,
    )
    assert config.running_seconds == 5.0 and config.max_running_per_model == 4
    assert [str(rule) for rule in config.faults] == ["submit:429x2", "fetch:503x*"]


@pytest.mark.parametrize("spec", ["submit:418", "nowhere:429", "fetch:slow", "submit:429x"])
def test_a_bad_fault_is_refused_with_the_grammar(spec):
    with pytest.raises(ValueError, match="SCOPE:KIND"):
        FaultRule.parse(spec)


def test_interleave_without_the_sse_header_is_refused_and_sse_alone_is_one_event(emulated):
    """The streaming decisions of emulator/streams.py; the streams themselves are in
    test_interleave.py."""
    body = t2i_body() | {"model": "wan2.6-image"}
    body["parameters"] = {"enable_interleave": True, "stream": True}
    refused = emulated.post(Endpoint.MULTIMODAL_GENERATION, body)
    assert refused.status_code == 400 and "X-DashScope-SSE" in refused.json()["message"]
    streamed = emulated.post(
        Endpoint.MULTIMODAL_GENERATION, t2i_body(), headers={"X-DashScope-SSE": "enable"}
    )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"] == "text/event-stream"
    lines = streamed.text.splitlines()
    assert lines[:3] == ["id:1", "event:result", ":HTTP_STATUS/200"]
    answer = json.loads(lines[3].removeprefix("data:"))
    assert answer["output"]["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["image_count"] == 1


def test_expired_tasks_and_results_are_forgotten(emulated):
    old = submit(emulated, t2i_body())
    emulated.clock.advance(10)
    url = fetch(emulated, old)["output"]["choices"][0]["message"]["content"][0]["image"]
    emulated.clock.advance(25 * 3600)
    expired = emulated.http.get(url)
    submit(emulated, t2i_body())
    assert old not in emulated.emulator.tasks
    assert len(emulated.emulator.results) == 1
    # An expired URL reads the same before and after its result is cleaned away, as OSS
    # checks the signature and its expiry before looking for the object.
    after = emulated.http.get(url)
    assert (expired.status_code, after.status_code) == (403, 403)
    assert "Request has expired." in expired.text and "Request has expired." in after.text
    tampered = emulated.http.get(url.replace("Expires=", "Expires=9"))
    assert tampered.status_code == 403 and "SignatureDoesNotMatch" in tampered.text


def test_a_sync_call_needs_a_free_running_slot(emulated):
    emulated.emulator.config.max_running_per_model = 1
    submit(emulated, t2i_body())
    emulated.clock.advance(1.5)  # the task is RUNNING and holds the only slot
    busy = emulated.post(Endpoint.MULTIMODAL_GENERATION, t2i_body())
    assert busy.status_code == 429 and busy.json()["code"] == "Throttling"
    emulated.clock.advance(5)
    assert emulated.post(Endpoint.MULTIMODAL_GENERATION, t2i_body()).status_code == 200


def test_a_task_sent_during_a_sync_call_waits_for_the_slot_the_call_holds(emulated):
    emulated.emulator.config.max_running_per_model = 1
    release = threading.Event()
    real_sleep = emulated.clock.sleep

    def held_sleep(seconds: float) -> None:
        release.wait(timeout=10)  # the sync call is in progress until the test says
        real_sleep(seconds)

    emulated.clock.sleep = held_sleep  # type: ignore[method-assign]
    answers: list[httpx.Response] = []
    call = threading.Thread(
        target=lambda: answers.append(emulated.post(Endpoint.MULTIMODAL_GENERATION, t2i_body()))
    )
    call.start()
    try:
        deadline = time.monotonic() + 5
        while not emulated.emulator._sync_calls["wan2.6-t2i"]:
            assert time.monotonic() < deadline, "the sync call never started"
            time.sleep(0.01)
        task_id = submit(emulated, t2i_body())
        emulated.clock.advance(2)  # past the task's least pending time, inside the call
        assert fetch(emulated, task_id)["output"]["task_status"] == "PENDING"
    finally:
        release.set()
        call.join(timeout=10)
    assert answers and answers[0].status_code == 200
    # The call ended 3 s after it began: the task took its slot then, and runs 3 s.
    assert fetch(emulated, task_id)["output"]["task_status"] == "RUNNING"
    emulated.clock.advance(1.5)
    assert fetch(emulated, task_id)["output"]["task_status"] == "SUCCEEDED"


def test_results_of_a_task_not_yet_scheduled_are_never_purged(emulated):
    task_id = submit(emulated, t2i_body())
    task = emulated.emulator.tasks[task_id]
    task.scheduled, task.end_at = False, 0.0  # the moment between creating and scheduling
    emulated.emulator._purge(emulated.clock.now())
    assert all(rid in emulated.emulator.results for rid in task.outputs)


def test_an_upload_over_the_certificates_size_is_refused_unread(emulated, monkeypatch):
    from studio.dashscope.emulator import core, uploads

    monkeypatch.setattr(uploads, "UPLOAD_MAX_BYTES", 1000)
    request = core.EmRequest(
        method="POST",
        path="/oss-upload",
        query={},
        headers={"content-type": "multipart/form-data; boundary=x"},
        body=b"x" * 100_000,
        origin="http://emulator",
    )
    response = emulated.emulator.handle(request)
    assert response.status == 400 and b"<Code>EntityTooLarge</Code>" in response.body


def image_urls(body: dict) -> list[str]:
    return [
        item["image"]
        for choice in body["output"]["choices"]
        for item in choice["message"]["content"]
    ]


def test_results_name_the_providers_oss_hosts_in_turn_never_the_api_origin(emulated):
    task_id = submit(emulated, t2i_body(n=4))
    emulated.clock.advance(10)
    urls = image_urls(fetch(emulated, task_id))
    hosts = [httpx.URL(url).host for url in urls]
    assert hosts[0] == hosts[2] == "dashscope-result-sh.oss-cn-shanghai.aliyuncs.com"
    assert hosts[1] == hosts[3]
    assert re.fullmatch(r"dashscope-[0-9a-f]{4}\.oss-accelerate\.aliyuncs\.com", hosts[1])
    for url in urls:
        parsed = httpx.URL(url)
        assert parsed.scheme == "https" and re.fullmatch(r"/results/[0-9a-f]{32}\.png", parsed.path)
        assert {"Expires", "OSSAccessKeyId", "Signature"} == set(parsed.params)
    # A result keeps its host from one fetch of the task to the next.
    assert [httpx.URL(url).host for url in image_urls(fetch(emulated, task_id))] == hosts


def test_a_result_is_answered_by_its_path_on_any_host(emulated):
    task_id = submit(emulated, t2i_body())
    emulated.clock.advance(10)
    url = httpx.URL(image_urls(fetch(emulated, task_id))[0])
    for host in ("dashscope.emulator", "127.0.0.1:8765", "results.studio.test"):
        moved = url.copy_with(scheme="http", netloc=host.encode())
        answer = emulated.http.get(moved)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"


def test_the_result_hosts_are_configurable():
    config = EmulatorConfig.from_env(
        {"DASHSCOPE_EMULATOR_RESULT_HOSTS": "dashscope-result-bj.oss-cn-beijing.aliyuncs.com"}
    )
    assert config.result_hosts == ("dashscope-result-bj.oss-cn-beijing.aliyuncs.com",)
    emulated = Emulated(config)
    response = emulated.post(E2, t2i_body())
    emulated.clock.advance(10)
    url = image_urls(fetch(emulated, response.json()["output"]["task_id"]))[0]
    assert url.startswith("https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/results/")
    with pytest.raises(ValueError, match="result host"):
        EmulatorConfig.from_env({"DASHSCOPE_EMULATOR_RESULT_HOSTS": "http://evil.example/x"})


def test_an_earlier_result_is_an_input_image_by_its_path_until_it_expires(emulated):
    task_id = submit(emulated, t2i_body())
    emulated.clock.advance(10)
    url = image_urls(fetch(emulated, task_id))[0]
    edit = t2i_body("make it night") | {"model": "wan2.7-image", "parameters": {"n": 1}}
    edit["input"]["messages"][0]["content"].append({"image": url})
    accepted = emulated.post(E2, edit)
    assert accepted.status_code == 200, accepted.text
    emulated.clock.advance(25 * 3600)
    expired = emulated.post(E2, edit)
    assert expired.status_code == 400
    assert expired.json()["code"] == "InvalidParameter.FileDownload"
