"""Reading a Server-Sent Events answer: wan2.6-image's mixed text and images, as made.

The provider writes each event as `id:N`, `event:result` (or `event:error`), a comment
line such as `:HTTP_STATUS/200`, `data:{json}` and a blank line (protocol §5.2). Like the
official SDK, only the `id:`, `event:` and `data:` lines are read; everything else is
ignored. Each `result` event's content items become `TextPart`s and `ImagePart`s; the
event whose `finish_reason` is "stop" (the string "null" until then) ends the stream with
`StreamFinished`; an `error` event ends it with `StreamFailed`. The `finished` field is
not read: the documents' own sample says true on an event that is not the last.

Two clocks guard a stream: a deadline for the whole of it, and a stall limit between
events (also the read timeout of the socket, so a silent connection wakes the reader).
Either raises a typed error; the deadline is checked as lines arrive and when a read
times out, so a silent stream is caught past it within one stall limit. A stream is
never sent again: the provider bills each image
it made. Image URLs are signed secrets: they reach no log line and no error message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from studio.dashscope.calls import NOT_SENT, error_from
from studio.dashscope.errors import (
    DashScopeError,
    StreamCut,
    StreamDeadlineExceeded,
    StreamStalled,
    SubmitUncertain,
)
from studio.dashscope.types import Usage

logger = logging.getLogger("studio.dashscope.client")

SSE = "text/event-stream"


@dataclass(frozen=True)
class StreamLimits:
    deadline: float = 300.0  # seconds for the whole stream, from the request on
    stall: float = 60.0  # seconds without an event before the stream counts as stalled
    connect: float = 5.0


@dataclass(frozen=True)
class TextPart:
    """A piece of the text, in order; join them for the whole."""

    text: str
    event_id: str


@dataclass(frozen=True)
class ImagePart:
    """A picture, where it falls in the text. The URL is signed and expires: download it
    at once, and never log or show it."""

    url: str = field(repr=False)
    event_id: str = ""


@dataclass(frozen=True)
class StreamFinished:
    """The last event: what the provider counts (images made, tokens, the size)."""

    usage: Usage | None
    request_id: str
    event_id: str


@dataclass(frozen=True)
class StreamFailed:
    """The provider's `event:error`: the stream ends here; parts already sent stand."""

    code: str
    message: str
    request_id: str | None
    event_id: str


StreamEvent = TextPart | ImagePart | StreamFinished | StreamFailed


@dataclass(frozen=True)
class SseEvent:
    """One event as written on the wire: its `id:`, `event:` and `data:` values."""

    id: str
    event: str
    data: str


def read_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """The events in a stream of lines: each ends at a blank line (or the stream's end)."""
    event_id, kind, data = "", "", list[str]()
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event_id, kind or "message", "\n".join(data))
            kind, data = "", []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        yield SseEvent(event_id, kind or "message", "\n".join(data))


def parse_event(raw: SseEvent) -> list[StreamEvent]:
    """What one event says, in order: its parts, then the end if it is the last."""
    try:
        body = json.loads(raw.data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return [StreamFailed("BadEvent", "An event's data is not a JSON object.", None, raw.id)]
    request_id = body.get("request_id")
    if raw.event == "error":
        code = str(body.get("code") or "Unknown")
        message = str(body.get("message") or body.get("msg") or "")
        return [StreamFailed(code, message, request_id, raw.id)]
    output = body.get("output") if isinstance(body.get("output"), dict) else {}
    choices = [c for c in (output or {}).get("choices") or [] if isinstance(c, dict)]
    events: list[StreamEvent] = [part for c in choices for part in _parts(c, raw.id)]
    if any(c.get("finish_reason") == "stop" for c in choices):
        events.append(StreamFinished(Usage.from_wire(body.get("usage")), request_id or "", raw.id))
    return events


def _parts(choice: dict[str, Any], event_id: str) -> Iterator[TextPart | ImagePart]:
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    for item in content or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("image"), str) and item.get("type", "image") == "image":
            yield ImagePart(url=item["image"], event_id=event_id)
        elif isinstance(item.get("text"), str):
            yield TextPart(text=item["text"], event_id=event_id)


class _Watch:
    """The stream's two clocks: its deadline, and the time since its last event."""

    def __init__(self, limits: StreamLimits, clock: Callable[[], float]) -> None:
        self.limits, self.clock = limits, clock
        self.deadline = clock() + limits.deadline
        self.last = clock()

    def timeout(self) -> httpx.Timeout:
        read = min(self.limits.stall, self.limits.deadline)
        return httpx.Timeout(connect=self.limits.connect, read=read, write=read, pool=read)

    def check(self) -> None:
        now = self.clock()
        if now >= self.deadline:
            raise self._late()
        if now - self.last >= self.limits.stall:
            raise self._stalled()

    def held(self, seconds: float) -> None:
        """The caller kept an event this long before reading on (storing a picture, say):
        the provider was not silent, nor slow, meanwhile."""
        self.deadline += seconds
        self.last += seconds

    def expired(self) -> DashScopeError:
        """What a read that timed out means: the deadline passed, or the stream stalled."""
        return self._late() if self.clock() >= self.deadline - 1e-6 else self._stalled()

    def _late(self) -> StreamDeadlineExceeded:
        return StreamDeadlineExceeded(
            status=None,
            code="StreamDeadlineExceeded",
            message=f"The stream did not end within {self.limits.deadline:g} s.",
            retryable=False,
        )

    def _stalled(self) -> StreamStalled:
        return StreamStalled(
            status=None,
            code="StreamStalled",
            message=f"No event came for {self.limits.stall:g} s.",
            retryable=False,
        )


def stream_events(
    http: httpx.Client,
    path: str,
    body: dict[str, Any],
    limits: StreamLimits,
    clock: Callable[[], float],
) -> Iterator[StreamEvent]:
    """Send one streamed request and yield its events as they arrive, up to the last."""
    watch = _Watch(limits, clock)
    headers = {"X-DashScope-SSE": "enable", "Accept": SSE}
    try:
        with http.stream("POST", path, json=body, headers=headers, timeout=watch.timeout()) as sent:
            logger.debug("DashScope stream POST %s -> %s", path, sent.status_code)
            _refuse_unless_stream(sent)
            yield from _events(sent, path, watch)
    except httpx.TransportError as exc:
        raise _unanswered(exc, path) from None


def _refuse_unless_stream(response: httpx.Response) -> None:
    if not response.is_success:
        response.read()
        raise error_from(response)
    if SSE not in response.headers.get("content-type", ""):
        raise SubmitUncertain(
            status=response.status_code,
            code="BadResponse",
            message="The provider answered a stream request without a stream.",
            retryable=False,
        )


def _events(response: httpx.Response, path: str, watch: _Watch) -> Iterator[StreamEvent]:
    for raw in read_sse(_lines(response, path, watch)):
        watch.last = watch.clock()
        for event in parse_event(raw):
            logger.debug("DashScope stream %s event %s: %s", path, raw.id, type(event).__name__)
            handed = watch.clock()
            yield event
            watch.held(watch.clock() - handed)
            if isinstance(event, StreamFinished | StreamFailed):
                return
    raise StreamCut(
        status=None,
        code="StreamCut",
        message=f"The stream from {path} ended before its last event.",
        retryable=False,
    )


def _lines(response: httpx.Response, path: str, watch: _Watch) -> Iterator[str]:
    lines = response.iter_lines()
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except httpx.ReadTimeout:
            raise watch.expired() from None
        except httpx.TransportError as exc:
            raise StreamCut(
                status=None,
                code="StreamCut",
                message=f"{type(exc).__name__} while reading the stream from {path}.",
                retryable=False,
            ) from None
        watch.check()
        yield line


def _unanswered(exc: httpx.TransportError, path: str) -> DashScopeError:
    """No answer came: safe to send again only if nothing was sent."""
    name = type(exc).__name__
    if isinstance(exc, NOT_SENT):
        return DashScopeError(
            status=None, code=name, message=f"{name} calling {path}.", retryable=True
        )
    return SubmitUncertain(
        status=None,
        code="NoResponse",
        message=f"{name} after sending to {path}; the provider may have started it.",
        retryable=False,
    )
