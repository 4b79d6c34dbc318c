"""The emulator's side of the wire: a request and an answer as plain data, and the answer
shapes every endpoint shares (a JSON body, the provider's JSON error, OSS's XML error).

`wsgi.py` and `transport.py` turn HTTP into an `EmRequest` and an `EmResponse` back into
HTTP; nothing in between knows which of the two it is serving.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

API = "/api/v1"
MAX_BODY_BYTES = 300 * 1024 * 1024


@dataclass(frozen=True)
class EmRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    origin: str  # scheme://host[:port] the request was addressed to


class EventStream:
    """A body sent over time: pairs of (seconds to wait, then the bytes to send).

    Whoever serves it iterates it and closes it, finished or not: closing is what gives
    back what the stream holds (its model's running slot), even if it never started.
    """

    def __init__(self, parts: Iterator[tuple[float, bytes]], on_close: Callable[[], None]):
        self._parts = parts
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        return self._parts

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            try:
                getattr(self._parts, "close", lambda: None)()
            finally:
                on_close()


@dataclass
class EmResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str | None = None  # "drop": close without answering
    delay: float = 0.0  # seconds to hold the answer back
    stream: EventStream | None = None  # sent after `body`, as it comes; no length then

    @property
    def all_headers(self) -> list[tuple[str, str]]:
        if self.stream is not None:
            return [
                ("Content-Type", self.content_type),
                ("Cache-Control", "no-cache"),
                *self.headers,
            ]
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *self.headers,
        ]

    def close(self) -> None:
        """Let go of a stream that will not be sent."""
        if self.stream is not None:
            self.stream.close()


def json_answer(
    status: int, payload: dict[str, object], headers: list[tuple[str, str]] | None = None
) -> EmResponse:
    return EmResponse(
        status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers or []
    )


def error_answer(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> EmResponse:
    """The provider's error body: a request id, a code and a message."""
    payload: dict[str, object] = {"request_id": request_id(), "code": code, "message": message}
    return json_answer(status, payload, headers)


def oss_error(status: int, code: str, message: str) -> EmResponse:
    """An error as OSS writes one, in XML: result downloads and uploads answer these."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{uuid.uuid4().hex[:24].upper()}</RequestId>\n"
        "  <HostId>dashscope-result.emulator</HostId>\n</Error>\n"
    )
    return EmResponse(status, body.encode(), content_type="application/xml")


def request_id() -> str:
    return str(uuid.uuid4())


def wire_time(epoch: float, offset_minutes: int = 0) -> str:
    """A moment as the provider writes it: `2026-01-01 12:00:00.000` in the given zone."""
    moment = datetime.fromtimestamp(epoch, timezone(timedelta(minutes=offset_minutes)))
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
