"""Real answers as test fixtures: what the client makes of one answer, and the recorder.

`parsed_view` reads an answer with the client's own parsers;
tests/dashscope/test_provider_fixtures.py compares its keys with a fixture's `expect`. The
Recorder writes each answer the real service gives during a smoke run, redacted, as such a
fixture file.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from studio.dashscope.calls import error_from
from studio.dashscope.redaction import RecordRedactor
from studio.dashscope.types import TaskResult
from studio.dashscope.wire import parse_result, parse_submitted, parse_task_page

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
    error = error_from(httpx.Response(http_status, content=content))
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
