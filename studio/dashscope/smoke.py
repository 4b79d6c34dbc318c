"""Does the real service still answer the way the client and the emulator assume?

One small call per endpoint family goes to the real service, and the same body to an
in-process emulator. For each pair, the shapes of the two answers (every key path and the
type of its value) are compared, and the real answer is parsed with the client's parser.
A key the emulator sends but the real service does not is a mismatch: something the
studio relies on that is not there. Keys only the real service sends are reported too.

With a Recorder, every answer of the real service is also written down, redacted, as a
fixture file that tests/test_provider_fixtures.py parses with the client's own parser: a
real answer becomes a test.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from PIL import Image

from studio.dashscope.catalog import Endpoint
from studio.dashscope.client import (
    DEFAULT_RESULT_HOSTS,
    DashScopeClient,
    RetryPolicy,
    _error_from,
)
from studio.dashscope.emulator import Emulator, EmulatorConfig, EmulatorTransport
from studio.dashscope.errors import DashScopeError
from studio.dashscope.guard import EmulatorRoute
from studio.dashscope.redaction import RecordRedactor
from studio.dashscope.types import GenerationRequest, InputImage, TaskResult
from studio.dashscope.wire import build_body, parse_result, parse_submitted, parse_task_page

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


def shape(value: Any, path: str = "") -> set[str]:
    """Every key path with its value's type; list items share one `[]` path."""
    if isinstance(value, dict):
        paths = {f"{path}:object"} if path else set()
        for key, item in value.items():
            paths |= shape(item, f"{path}.{key}" if path else key)
        return paths
    if isinstance(value, list):
        paths = {f"{path}:list"}
        for item in value:
            paths |= shape(item, f"{path}[]")
        return paths
    kind = {bool: "bool", int: "number", float: "number", str: "string"}.get(type(value), "null")
    return {f"{path}:{kind}"}


# Keys whose presence depends on timing or randomness, not on the protocol.
_VOLATILE = ("scheduled_time", "end_time", "task_metrics")


@dataclass
class Check:
    name: str
    status: int | None = None
    missing_in_real: list[str] = field(default_factory=list)
    only_in_real: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing_in_real and not self.problems

    def compare(self, real: Any, emulated: Any) -> None:
        """Add the differences of one pair of answers to what this check found.

        A value that is null on one side matches any type on the other: fields such as
        start_time are null or not depending on the task's state, not on the protocol.
        """
        real_types, emulated_types = _types(shape(real)), _types(shape(emulated))
        missing = {
            f"{path}:{'/'.join(sorted(types))}"
            for path, types in emulated_types.items()
            if path not in real_types and not any(v in path for v in _VOLATILE)
        }
        for path in real_types.keys() & emulated_types.keys():
            real_kinds, emulated_kinds = (
                real_types[path] - {"null"},
                emulated_types[path] - {"null"},
            )
            if real_kinds and emulated_kinds and not real_kinds & emulated_kinds:
                self.problems.append(
                    f"{path} is {'/'.join(real_kinds)} in the real answer, "
                    f"{'/'.join(emulated_kinds)} in the emulator's"
                )
        extra = {
            f"{path}:{'/'.join(sorted(t))}"
            for path, t in real_types.items()
            if path not in emulated_types
        }
        self.missing_in_real = sorted(set(self.missing_in_real) | missing)
        self.only_in_real = sorted(set(self.only_in_real) | extra)


def _types(paths: set[str]) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for item in paths:
        path, _, kind = item.rpartition(":")
        types.setdefault(path, set()).add(kind)
    return types


# -- fixtures: what the client makes of one answer -----------------------------------------

FIXTURE_CALLS = ("generate", "fetch", "submit", "cancel", "list", "error")


def parsed_view(call: str, http_status: int, body: Any) -> dict[str, Any]:
    """What the client makes of one answer, as plain JSON values.

    A fixture's `expect` holds some of these keys; the fixture test compares them, and the
    recorder writes them all. `call` names the parser the client uses for the answer;
    "error" is any answer that is not a 2xx, read as the client reads a refusal.
    """
    if call == "error":
        return _error_view(http_status, body)
    if not isinstance(body, dict):
        # The client refuses a 2xx answer that is not a JSON object before parsing it.
        raise ValueError(f"a {call} answer must be a JSON object, not {type(body).__name__}")
    if call in ("generate", "fetch"):
        return _result_view(parse_result(body, synchronous=call == "generate"))
    if call == "submit":
        task = parse_submitted(body)
        return {
            "task_id": task.task_id if task else None,
            "status": str(task.status) if task else None,
            "request_id": task.request_id if task else None,
        }
    if call == "list":
        page = parse_task_page(body)
        return {
            "request_id": page.request_id,
            "total": page.total,
            "page_no": page.page_no,
            "page_size": page.page_size,
            "total_pages": page.total_pages,
            "task_count": len(page.tasks),
            "statuses": [str(task.status) for task in page.tasks],
        }
    if call == "cancel":
        # The client reads nothing from a successful cancel but that it is a JSON object.
        return {"request_id": body.get("request_id")}
    raise ValueError(f"unknown call {call!r}; expected one of {', '.join(FIXTURE_CALLS)}")


def _result_view(result: TaskResult) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "status": str(result.status),
        "request_id": result.request_id,
        "task_id": result.task_id,
        "image_url_count": len(result.image_urls),
        "url_hosts": [urlsplit(url).hostname for url in result.image_urls],
        "failures": [{"index": f.index, "code": f.code} for f in result.failures],
        "usage": asdict(result.usage) if result.usage else None,
        "code": result.code,
        "message": result.message,
        "submit_time": when(result.submit_time),
        "scheduled_time": when(result.scheduled_time),
        "end_time": when(result.end_time),
    }


def _error_view(http_status: int, body: Any) -> dict[str, Any]:
    # Through the client's own reading of a refusal, so a fixture tests what it raises.
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    error = _error_from(httpx.Response(http_status, content=content))
    return {
        "http_status": error.status,
        "code": error.code,
        "message": error.message,
        "request_id": error.request_id,
        "retryable": error.retryable,
    }


def call_of(request: httpx.Request, http_status: int) -> str:
    """Which of the client's calls an answer belongs to, from the request that it answers."""
    if not 200 <= http_status < 300:
        return "error"
    path = request.url.path
    if re.search(r"/tasks/?$", path):
        return "list"
    if re.search(r"/tasks/[^/]+/cancel$", path):
        return "cancel"
    if re.search(r"/tasks/[^/]+$", path):
        return "fetch"
    return "submit" if request.headers.get("X-DashScope-Async") == "enable" else "generate"


class Recorder:
    """Writes each answer of the real service as a fixture file, redacted.

    A task polled many times is written once per status it reports: the repeats have the
    same shape and would only bury the interesting answers.
    """

    def __init__(
        self,
        directory: Path,
        *,
        base_url: str,
        secrets: tuple[str, ...],
        now: datetime | None = None,
    ) -> None:
        self.directory = directory
        self.host = urlsplit(base_url).netloc.rpartition("@")[2]  # never userinfo
        self.secrets = tuple(secret for secret in secrets if secret)
        self.started = now or datetime.now(UTC)
        self.written: list[Path] = []
        self._seen_fetches: set[tuple[str, str]] = set()

    def on_response(self, response: httpx.Response) -> None:
        """An httpx response hook: it runs before the body is read, so read it first."""
        response.read()
        self.record(response)

    def record(self, response: httpx.Response) -> Path | None:
        call = call_of(response.request, response.status_code)
        redactor = RecordRedactor(self.secrets)
        body = redactor.value(_body(response))
        if call == "fetch" and self._seen_before(response.request, body):
            return None
        fixture = {
            "source": f"recorded {self.started:%Y-%m-%d} from {self.host}",
            "kind": "recorded",
            "call": call,
            "http_status": response.status_code,
            "request": _request_summary(response.request),
            "edited": _edit_note(redactor.replaced),
            "expect": {},
            "response": body,
        }
        try:
            fixture["expect"] = parsed_view(call, response.status_code, body)
        except ValueError as exc:
            # Kept all the same: the fixture test fails on it, which is the point.
            fixture["problem"] = str(exc)
        text = json.dumps(fixture, indent=2, ensure_ascii=False) + "\n"
        if any(secret in text for secret in self.secrets):  # never on disk, whatever the bug
            raise RuntimeError("A recorded answer still holds the API key; nothing was written.")
        path = self.directory / f"{self._name(fixture)}.json"
        path.write_text(text, encoding="utf-8")
        self.written.append(path)
        return path

    def _seen_before(self, request: httpx.Request, body: Any) -> bool:
        output = body.get("output") if isinstance(body, dict) else None
        status = output.get("task_status") if isinstance(output, dict) else None
        key = (request.url.path, str(status))
        if key in self._seen_fetches:
            return True
        self._seen_fetches.add(key)
        return False

    def _name(self, fixture: dict[str, Any]) -> str:
        parts = [fixture["call"], fixture["request"].get("model") or ""]
        expect = fixture["expect"]
        parts.append(expect.get("code") if fixture["call"] == "error" else expect.get("status"))
        slug = "-".join(re.sub(r"[^a-z0-9.]+", "-", str(p).lower()).strip("-") for p in parts if p)
        return f"recorded-{self.started:%Y%m%dT%H%M%S}-{len(self.written) + 1:02d}-{slug}"


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text  # a gateway's HTML page is an answer too


def _request_summary(request: httpx.Request) -> dict[str, Any]:
    model = None
    try:
        sent = json.loads(request.content) if request.content else None
    except ValueError:
        sent = None
    if isinstance(sent, dict) and isinstance(sent.get("model"), str):
        model = sent["model"]
    # The path only: no header, so no key, and no body, so no inline image.
    return {"method": request.method, "path": request.url.path, "model": model}


def _edit_note(replaced: set[str]) -> str:
    if not replaced:
        return ""
    return f"redacted: the values of {', '.join(sorted(replaced))} replaced by REDACTED"


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
