"""Does the real service still answer the way the client and the emulator assume?

One small call per endpoint family goes to the real service, and the same body to an
in-process emulator. For each pair, the shapes of the two answers (every key path and the
type of its value) are compared, and the real answer is parsed with the client's parser.
A key the emulator sends but the real service does not is a mismatch: something the
studio relies on that is not there. Keys only the real service sends are reported too.

With a Recorder, every answer of the real service is also written down, redacted, as a
fixture file that tests/dashscope/test_provider_fixtures.py parses with the client's own parser: a
real answer becomes a test.

This module runs the calls; the comparison of two answers is in
studio.dashscope.smoke_shapes, and the recorder in studio.dashscope.recording.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from PIL import Image

from studio.dashscope.catalog import Endpoint
from studio.dashscope.client import DEFAULT_RESULT_HOSTS, DashScopeClient, RetryPolicy
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport
from studio.dashscope.errors import DashScopeError
from studio.dashscope.guard import EmulatorRoute
from studio.dashscope.recording import FIXTURE_CALLS, Recorder, call_of, parsed_view
from studio.dashscope.smoke_shapes import Check, shape
from studio.dashscope.types import GenerationRequest, InputImage
from studio.dashscope.wire import build_body, parse_result, parse_submitted, parse_task_page

__all__ = [
    "CANCEL_REQUEST",
    "EMULATOR_ORIGIN",
    "FIXTURE_CALLS",
    "MAX_BILLED_IMAGES",
    "Check",
    "Recorder",
    "SmokeTest",
    "billed_calls",
    "call_of",
    "parsed_view",
    "shape",
]

EMULATOR_ORIGIN = "http://emulator.smoke"


def _tiny_jpeg(width: int, height: int) -> InputImage:
    output = io.BytesIO()
    Image.new("RGB", (width, height), (180, 140, 90)).save(output, format="JPEG", quality=80)
    return InputImage.from_bytes(output.getvalue())


def billed_calls() -> list[tuple[str, GenerationRequest, Endpoint]]:
    """The generations the smoke test makes: one image each, smallest sizes allowed."""
    photo = _tiny_jpeg(512, 512)
    return [
        (
            "sync generation (messages)",
            GenerationRequest(
                model="qwen-image-2.0",
                prompt="A small red cube on a white table",
                size="512*512",
                n=1,
                prompt_extend=False,
                watermark=False,
            ),
            Endpoint.MULTIMODAL_GENERATION,
        ),
        (
            "async edit with regions (messages)",
            GenerationRequest(
                model="wan2.7-image",
                prompt="Put a green apple in the box in image 1",
                images=(photo,),
                bbox_list=(((128, 128, 384, 384),),),
                size="1K",
                n=1,
                watermark=False,
            ),
            Endpoint.IMAGE_GENERATION,
        ),
        (
            "async text-to-image (legacy prompt)",
            GenerationRequest(
                model="qwen-image-plus",
                prompt="A small red cube on a white table",
                size="1328*1328",
                n=1,
                prompt_extend=False,
                watermark=False,
            ),
            Endpoint.TEXT2IMAGE,
        ),
        (
            "async edit (legacy prompt+images)",
            GenerationRequest(
                model="wan2.5-i2i-preview",
                prompt="Make the background blue",
                images=(photo,),
                size="768*768",
                n=1,
                prompt_extend=False,
                watermark=False,
            ),
            Endpoint.IMAGE2IMAGE,
        ),
    ]


CANCEL_REQUEST = GenerationRequest(
    model="wan2.6-t2i", prompt="A small red cube", size="1280*1280", n=1, prompt_extend=False
)
MAX_BILLED_IMAGES = len(billed_calls()) + 1  # + the cancel probe, if it started already


class SmokeTest:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        poll_interval: float = 3.0,
        timeout: float = 180.0,
        sleep: Callable[[float], None] = time.sleep,
        recorder: Recorder | None = None,
        result_hosts: Sequence[str] = DEFAULT_RESULT_HOSTS,
        route: EmulatorRoute | None = None,
    ) -> None:
        self.real = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            trust_env=False,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(180, connect=10),
            event_hooks={"response": [recorder.on_response] if recorder else []},
        )
        self.emulator = Emulator(EmulatorConfig(pending_seconds=0, running_seconds=0))
        self.emulated = httpx.Client(
            base_url=f"{EMULATOR_ORIGIN}/api/v1",
            transport=EmulatorTransport(self.emulator),
            headers={"Authorization": "Bearer sk-smoke"},
        )
        # Result URLs are fetched as the worker fetches them: by the studio's client, whose
        # host rule, address check and TLS verification the real hosts must pass.
        self.downloads = DashScopeClient(
            api_key=api_key,
            base_url=base_url,
            transport=transport,
            result_hosts=result_hosts,
            route=route,
            retry=RetryPolicy(attempts=1),
        )
        self.poll_interval, self.timeout, self.sleep = poll_interval, timeout, sleep

    def close(self) -> None:
        for client in (self.real, self.emulated, self.downloads):
            client.close()

    def run(self) -> Iterator[Check]:
        for name, request, endpoint in billed_calls():
            yield self._generation(name, request, endpoint)
        yield self._cancel()
        yield self._get("task list", "/tasks", params={"page_no": 1, "page_size": 10})
        yield self._get("fetch of an unknown task id", f"/tasks/{uuid.uuid4()}")
        request = GenerationRequest(model="wan2.6-t2i", prompt="A red cube", n=1)
        yield self._refusal(
            "invalid parameter",
            build_body(replace(request, size="100*100"), Endpoint.IMAGE_GENERATION),
        )
        yield self._refusal(
            "invalid API key",
            build_body(request, Endpoint.IMAGE_GENERATION),
            {"Authorization": "Bearer not-a-valid-key"},
        )

    def _post(
        self,
        client: httpx.Client,
        endpoint: Endpoint,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if endpoint.is_async:
            sent["X-DashScope-Async"] = "enable"
        return client.post(endpoint.value, json=body, headers=sent)

    def _generation(self, name: str, request: GenerationRequest, endpoint: Endpoint) -> Check:
        check = Check(name)
        body = build_body(request, endpoint)
        real = self._post(self.real, endpoint, body)
        check.status = real.status_code
        if real.status_code != 200:
            check.problems.append(f"HTTP {real.status_code}: {real.text[:300]}")
            return check
        real_body = real.json()
        emulated_body = self._post(self.emulated, endpoint, body).json()
        check.compare(real_body, emulated_body)  # the sync answer, or the submit answer
        if endpoint.is_async:
            real_task, emulated_task = parse_submitted(real_body), parse_submitted(emulated_body)
            if real_task is None or emulated_task is None:
                check.problems.append("the submit answer has no output.task_id")
                return check
            real_body = self._wait(self.real, real_task.task_id, check)
            emulated_body = self._wait(self.emulated, emulated_task.task_id, check)
            if real_body is None or emulated_body is None:
                return check
            check.compare(real_body, emulated_body)
        self._check_result(check, real_body, synchronous=not endpoint.is_async)
        return check

    def _wait(self, client: httpx.Client, task_id: str, check: Check) -> dict[str, Any] | None:
        deadline = time.monotonic() + self.timeout
        while True:
            body = client.get(f"/tasks/{task_id}").json()
            status = (body.get("output") or {}).get("task_status")
            if status in ("SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"):
                if status != "SUCCEEDED":
                    check.problems.append(f"task {task_id} ended {status}: {body}")
                    return None
                return body
            if time.monotonic() > deadline:
                check.problems.append(f"task {task_id} still {status} after {self.timeout:.0f}s")
                return None
            self.sleep(self.poll_interval)

    def _check_result(self, check: Check, body: dict[str, Any], *, synchronous: bool) -> None:
        result = parse_result(body, synchronous=synchronous)
        if not result.image_urls:
            check.problems.append("the client's parser found no image URL")
            return
        if result.usage is None or result.usage.image_count != len(result.image_urls):
            check.problems.append(f"usage {body.get('usage')} does not count the images")
        if result.submit_time is not None:
            offset = (result.submit_time - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
            check.notes.append(f"submit_time is {offset / 3600:+.1f} h from UTC")
        try:
            download = self.downloads.download(result.image_urls[0])
        except DashScopeError as error:
            check.problems.append(f"result download failed: {error.code}: {error.message}")
            return
        with Image.open(io.BytesIO(download)) as image:
            size = image.size
            check.notes.append(f"result is {image.format} {size[0]}x{size[1]}")
        if (
            result.usage
            and result.usage.width
            and (result.usage.width, result.usage.height) != size
        ):
            check.problems.append(
                f"usage says {result.usage.width}x{result.usage.height}, "
                f"the image is {size[0]}x{size[1]}"
            )

    def _cancel(self) -> Check:
        check = Check("cancel while pending")
        endpoint = Endpoint.IMAGE_GENERATION
        body = build_body(CANCEL_REQUEST, endpoint)
        pairs = []
        # An emulator of its own whose tasks wait long enough to be cancelled.
        with httpx.Client(
            base_url=f"{EMULATOR_ORIGIN}/api/v1",
            transport=EmulatorTransport(Emulator(EmulatorConfig(pending_seconds=3600))),
            headers={"Authorization": "Bearer sk-smoke"},
        ) as waiting:
            for client in (self.real, waiting):
                submitted = parse_submitted(self._post(client, endpoint, body).json())
                if submitted is None:
                    check.problems.append("the submit answer has no output.task_id")
                    return check
                pairs.append(client.post(f"/tasks/{submitted.task_id}/cancel"))
        real, emulated = pairs
        check.status = real.status_code
        if real.status_code == 400 and real.json().get("code") == "UnsupportedOperation":
            check.notes.append("the task had already started, so it could not be cancelled")
            return check
        check.compare(real.json(), emulated.json())
        return check

    def _get(self, name: str, path: str, params: dict[str, Any] | None = None) -> Check:
        check = Check(name)
        real = self.real.get(path, params=params)
        emulated = self.emulated.get(path, params=params)
        check.status = real.status_code
        if real.status_code != 200:
            check.problems.append(f"HTTP {real.status_code}: {real.text[:300]}")
            return check
        real_body, emulated_body = real.json(), emulated.json()
        if "data" in real_body:
            parse_task_page(real_body)
            # Compare one row of each, not the row counts.
            real_body["data"], emulated_body["data"] = (
                real_body["data"][:1],
                emulated_body["data"][:1],
            )
        check.compare(real_body, emulated_body)
        return check

    def _refusal(
        self, name: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Check:
        check = Check(name)
        real, emulated = (
            self._post(client, Endpoint.IMAGE_GENERATION, body, headers)
            for client in (self.real, self.emulated)
        )
        check.status = real.status_code
        if real.status_code != emulated.status_code:
            check.problems.append(
                f"the real service answered HTTP {real.status_code}, the "
                f"emulator {emulated.status_code}"
            )
        try:
            real_body = real.json()
        except ValueError:
            check.problems.append(f"the answer is not JSON: {real.text[:200]}")
            return check
        check.compare(real_body, emulated.json())
        check.notes.append(f"{real_body.get('code')}: {real_body.get('message')}")
        return check
