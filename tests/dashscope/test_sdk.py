"""The official `dashscope` SDK, as its users call it, against `manage.py emulator`.

The SDK is the independent judge: if it cannot parse an answer, or reads a field its users
rely on as missing, the emulator is not telling the truth about the wire protocol.
"""

from __future__ import annotations

import base64
import json
import re
from http import HTTPStatus

import dashscope
import httpx
import pytest
from dashscope import ImageSynthesis, MultiModalConversation
from dashscope.aigc.image_generation import ImageGeneration
from dashscope.api_entities.dashscope_response import Message

from tests.support.emulation import API_KEY, ServedEmulator, make_image, png_size


@pytest.fixture(autouse=True)
def sdk_base_url(served_emulator: ServedEmulator, monkeypatch):
    monkeypatch.setattr(dashscope, "base_http_api_url", served_emulator.base_url)


def data_uri(width: int, height: int, color: tuple[int, int, int]) -> str:
    return (
        "data:image/png;base64," + base64.b64encode(make_image(width, height, color=color)).decode()
    )


RESULT_HOST = re.compile(r"^dashscope-[a-z0-9-]+\.oss-[a-z0-9-]+\.aliyuncs\.com$")


def download(url: str) -> httpx.Response:
    """A result URL, fetched from the served emulator: the URL names the provider's OSS
    host, which the emulator answers by the path whatever the Host header says. (Nothing
    here may leave the machine, so the host is never dialled.)"""
    parsed = httpx.URL(url)
    assert parsed.scheme == "https" and RESULT_HOST.match(parsed.host), url
    local = httpx.URL(dashscope.base_http_api_url).copy_with(path=parsed.path, query=parsed.query)
    return httpx.get(local, headers={"Host": parsed.host})


def assert_images_match_usage(urls: list[str], size: str | tuple[int, int]) -> None:
    if isinstance(size, str):
        width, height = map(int, size.split("*"))
    else:
        width, height = size
    assert urls
    for url in urls:
        response = download(url)
        assert response.status_code == 200
        assert png_size(response.content) == (width, height)


def choice_urls(output) -> list[str]:
    return [
        item["image"]
        for choice in output.choices
        for item in choice["message"]["content"]
        if "image" in item
    ]


def test_multimodal_conversation_call_with_qwen_image_2_pro():
    response = MultiModalConversation.call(
        api_key=API_KEY,
        model="qwen-image-2.0-pro",
        messages=[{"role": "user", "content": [{"text": "A poster that says Come Play Ball!"}]}],
        result_format="message",
        stream=False,
        watermark=False,
        prompt_extend=True,
        negative_prompt="Low resolution, low quality",
        size="1536*1024",
    )
    assert response.status_code == HTTPStatus.OK, response
    assert response.request_id
    assert response.output.choices[0].finish_reason == "stop"
    assert response.usage.width == 1536 and response.usage.height == 1024
    assert response.usage.image_count == 1
    assert_images_match_usage(choice_urls(response.output), (1536, 1024))


def test_image_generation_call_with_wan26_t2i():
    message = Message(role="user", content=[{"text": "A flower shop with exquisite windows"}])
    response = ImageGeneration.call(
        model="wan2.6-t2i",
        api_key=API_KEY,
        messages=[message],
        negative_prompt="",
        prompt_extend=True,
        watermark=False,
        n=1,
        size="1280*1280",
    )
    assert response.status_code == HTTPStatus.OK, response
    assert response.output.finished is True
    assert response.usage.image_count == 1 and response.usage.size == "1280*1280"
    assert choice_urls(response.output)[0].startswith("http")
    assert response.output.choices[0].message.content[0]["type"] == "image"
    assert_images_match_usage(choice_urls(response.output), response.usage.size)


def test_image_generation_async_call_fetch_wait_list_with_wan26_t2i():
    message = Message(role="user", content=[{"text": "A lighthouse at dusk"}])
    task = ImageGeneration.async_call(
        model="wan2.6-t2i",
        api_key=API_KEY,
        messages=[message],
        n=2,
        size="1280*1280",
    )
    assert task.status_code == HTTPStatus.OK, task
    assert task.output.task_status == "PENDING" and task.output.task_id
    fetched = ImageGeneration.fetch(task=task, api_key=API_KEY)
    assert fetched.status_code == HTTPStatus.OK
    assert fetched.output.task_status in ("PENDING", "RUNNING", "SUCCEEDED")
    done = ImageGeneration.wait(task=task, api_key=API_KEY)
    assert done.status_code == HTTPStatus.OK
    assert done.output.task_status == "SUCCEEDED"
    assert done.output.task_id == task.output.task_id
    assert done.output.submit_time and done.output.end_time
    assert len(done.output.choices) == 2 and done.usage.image_count == 2
    assert_images_match_usage(choice_urls(done.output), done.usage.size)
    listed = ImageGeneration.list(api_key=API_KEY, model_name="wan2.6-t2i", page_size=50)
    assert listed.status_code == HTTPStatus.OK
    rows = {row["task_id"]: row for row in listed.output["data"]}
    assert rows[task.output.task_id]["status"] == "SUCCEEDED"
    assert listed.output["total"] >= 1


def test_image_generation_cancel_while_pending_and_after():
    message = Message(role="user", content=[{"text": "Cancel me"}])
    task = ImageGeneration.async_call(
        model="wan2.6-t2i", api_key=API_KEY, messages=[message], n=1, size="1280*1280"
    )
    canceled = ImageGeneration.cancel(task=task, api_key=API_KEY)
    assert canceled.status_code == HTTPStatus.OK, canceled
    assert ImageGeneration.fetch(task=task, api_key=API_KEY).output.task_status == "CANCELED"
    again = ImageGeneration.cancel(task=task, api_key=API_KEY)
    assert again.status_code == HTTPStatus.BAD_REQUEST
    assert again.code == "UnsupportedOperation"


def test_wan27_image_pro_edit_with_two_base64_images_and_a_bbox_list():
    message = Message(
        role="user",
        content=[
            {"text": "Spray the graffiti from image 2 onto the car in image 1"},
            {"image": data_uri(1200, 800, (90, 90, 200))},
            {"image": data_uri(600, 900, (200, 90, 90))},
        ],
    )
    task = ImageGeneration.async_call(
        model="wan2.7-image-pro",
        api_key=API_KEY,
        messages=[message],
        watermark=False,
        n=1,
        size="2K",
        bbox_list=[[[100, 100, 500, 400]], []],
    )
    assert task.status_code == HTTPStatus.OK, task
    done = ImageGeneration.wait(task=task, api_key=API_KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert len(done.output.choices) == 1
    # 2K follows the last image's 2:3 aspect.
    assert done.usage.size == "1672*2508"
    assert_images_match_usage(choice_urls(done.output), done.usage.size)
    sync = ImageGeneration.call(
        model="wan2.7-image-pro",
        api_key=API_KEY,
        messages=[message],
        n=1,
        size="1K",
        bbox_list=[[[100, 100, 500, 400]], []],
    )
    assert sync.status_code == HTTPStatus.OK
    assert_images_match_usage(choice_urls(sync.output), sync.usage.size)


def test_image_synthesis_async_call_with_wan25_i2i_preview():
    task = ImageSynthesis.async_call(
        model="wan2.5-i2i-preview",
        api_key=API_KEY,
        prompt="Place the clock from image 1 next to the vase in image 2",
        images=[data_uri(800, 600, (10, 120, 10)), data_uri(640, 640, (10, 10, 120))],
        negative_prompt="blurry",
        n=2,
        size="1024*1024",
    )
    assert task.status_code == HTTPStatus.OK, task
    assert task.output.task_status == "PENDING"
    done = ImageSynthesis.wait(task=task, api_key=API_KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert done.usage.image_count == 2
    urls = [result.url for result in done.output.results]
    assert len(urls) == 2
    assert_images_match_usage(urls, (1024, 1024))


def test_local_files_are_uploaded_and_read_back_as_oss_inputs(tmp_path, served_emulator):
    """The SDK uploads `file://` images first (getPolicy, a form POST to the upload host)
    and sends their oss:// names with the resolve header: both SDK families, as their
    users call them."""
    clock, vase = tmp_path / "clock.png", tmp_path / "vase.png"
    clock.write_bytes(make_image(800, 600, color=(10, 120, 10)))
    vase.write_bytes(make_image(640, 640, color=(10, 10, 120)))
    task = ImageSynthesis.async_call(
        model="wan2.5-i2i-preview",
        api_key=API_KEY,
        prompt="Place the clock from image 1 next to the vase in image 2",
        images=[f"file://{clock}", f"file://{vase}"],
        n=1,
        size="1024*1024",
    )
    assert task.status_code == HTTPStatus.OK, task
    done = ImageSynthesis.wait(task=task, api_key=API_KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert_images_match_usage([r.url for r in done.output.results], (1024, 1024))

    message = Message(
        role="user", content=[{"text": "Make the vase red"}, {"image": f"file://{vase}"}]
    )
    edit = ImageGeneration.call(
        model="wan2.7-image", api_key=API_KEY, messages=[message], n=1, size="1K"
    )
    assert edit.status_code == HTTPStatus.OK, edit
    assert_images_match_usage(choice_urls(edit.output), edit.usage.size)
    assert served_emulator.control("stats")["counts"]["uploads"] == 3


def test_an_oss_input_needs_the_resolve_header_and_its_own_model(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(make_image(640, 640, color=(120, 10, 10)))
    from dashscope.utils.oss_utils import OssUtils

    key, _ = OssUtils.upload(model="wan2.5-i2i-preview", file_path=str(photo), api_key=API_KEY)
    assert key.startswith("oss://dashscope-instant/")
    body = {
        "model": "wan2.5-i2i-preview",
        "input": {"prompt": "Brighter", "images": [key]},
        "parameters": {"n": 1, "size": "1024*1024"},
    }
    url = f"{dashscope.base_http_api_url}/services/aigc/image2image/image-synthesis"
    headers = {"Authorization": f"Bearer {API_KEY}", "X-DashScope-Async": "enable"}
    plain = httpx.post(url, json=body, headers=headers)
    assert plain.status_code == 400 and plain.json()["code"] == "InvalidParameter"
    assert "X-DashScope-OssResourceResolve" in plain.json()["message"]
    resolved = headers | {"X-DashScope-OssResourceResolve": "enable"}
    assert httpx.post(url, json=body, headers=resolved).status_code == 200
    content = [{"text": "Brighter"}, {"image": key}]
    other = httpx.post(
        f"{dashscope.base_http_api_url}/services/aigc/multimodal-generation/generation",
        json={
            "model": "wan2.7-image",
            "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": {"n": 1, "size": "1K"},
        },
        headers={"Authorization": f"Bearer {API_KEY}", "X-DashScope-OssResourceResolve": "enable"},
    )
    assert other.status_code == 400 and "another model" in other.json()["message"]


@pytest.mark.parametrize(
    "fields",
    [
        {"policy": "e30=", "Signature": b"\xff", "key": "x"},
        {"policy": "e30=", "Signature": "é", "key": "x"},
        {"policy": b"\xff\xfe", "Signature": "abc", "key": "x"},
        {},
    ],
)
def test_a_malformed_upload_form_is_refused_as_oss_refuses_it(served_emulator, fields):
    origin = served_emulator.base_url.removesuffix("/api/v1")
    files = {name: (None, value) for name, value in fields.items()} | {"file": ("a.png", b"x")}
    response = httpx.post(f"{origin}/oss-upload", files=files)
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_sdk_errors_carry_status_code_and_message():
    message = Message(role="user", content=[{"text": "x"}])
    bad_key = ImageGeneration.call(model="wan2.6-t2i", api_key="wrong", messages=[message])
    assert (bad_key.status_code, bad_key.code) == (401, "InvalidApiKey")
    bad_size = ImageGeneration.call(
        model="wan2.6-t2i", api_key=API_KEY, messages=[message], size="100*100"
    )
    assert (bad_size.status_code, bad_size.code) == (400, "InvalidParameter")
    assert "pixels" in bad_size.message


def test_the_served_emulator_logs_sdk_requests(served_emulator: ServedEmulator):
    message = Message(role="user", content=[{"text": "Log me"}])
    ImageGeneration.async_call(model="wan2.6-t2i", api_key=API_KEY, messages=[message], n=1)
    lines = served_emulator.log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries, "the --log file holds one JSON line per request"
    assert all(API_KEY not in line for line in lines)
    assert any(e["headers"].get("x-dashscope-async") == "enable" for e in entries)
