"""Server-Sent Events from the sync endpoint (protocol §5.2).

wan2.6-image with `enable_interleave` answers a short illustrated piece as it is made:
text events and image events interleaved, each written as §5.2 shows it (`id:N`,
`event:result`, the `:HTTP_STATUS/200` comment, `data:{json}`, a blank line). Every event
carries one content item, `finish_reason` the string "null" until the last event's
"stop", the usage so far, and the stream's one request id. §5.2's sample event also says
`"finished": true` on a chunk that is not the last: the emulator writes it so too, so
that a client reading `finished` as the end stops early here as it would there.

The stream holds one of the model's running slots from its first event to its end, or
until whoever serves it closes it (the client went away). The wait before each event is
the config's (`stream_event_seconds` before text, `stream_image_seconds` before an
image), slept on the emulator's clock. Prompt words: `#stream-error` sends some text and
an image, then an `event:error` whose data is `{"code","message","request_id"}`;
`#stream-stall` sends some events, then nothing for `stream_stall_seconds`, then cuts
the connection without a last event.

Where the documents leave room, the emulator reads them so (lenient on input):
- `enable_interleave` without the `X-DashScope-SSE: enable` header is refused with 400
  InvalidParameter: interleave runs "only via SSE" on the sync endpoint and `stream` "must
  be true" for it ([D-W26] via protocol §6); the header is what streams (§2).
- The header without `parameters.stream` streams: the SDK sends the header alone ([CAP]
  via §4, §10.6). An explicit `stream: false` with interleave is refused (`checks.py`).
- The header without interleave, from any model of the sync endpoint, streams the sync
  answer (§5.1) as one `result` event: §3 lists the endpoint as "sync generation
  (optional SSE)" for all its models.
- Interleave on the async endpoint is refused (`checks.py`): interleave is "only via
  SSE" ([D-W26] via §6), and no document shows a task result of this mode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.dashscope.emulator.limits import InterleaveRule, ModelRules
from studio.dashscope.emulator.parse import WireError, invalid
from studio.dashscope.emulator.render import RenderPlan
from studio.dashscope.emulator.request import Generation
from studio.dashscope.emulator.results import new_results, signed_url
from studio.dashscope.emulator.running import end_sync, plan_outputs, start_sync
from studio.dashscope.emulator.sizes import interleave_size
from studio.dashscope.emulator.wire import EmResponse, EventStream, request_id

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator

SSE = "text/event-stream"
STREAM_ERROR = "#stream-error"
STREAM_STALL = "#stream-stall"
# The model decides how many pictures a piece has, up to max_images ([D-W26] via §6).
PIECE_IMAGES = 3
_FAILED = ("InternalError.Algo", "An internal error has occured during algorithm execution.")
_UNSAFE_OUTPUT = ("DataInspectionFailed", "Output data may contain inappropriate content.")


def require_sse(sse: bool) -> None:
    if not sse:
        raise invalid(
            "enable_interleave answers only as a stream: send the header "
            "X-DashScope-SSE: enable (and parameters.stream true)."
        )


def event(
    number: int, data: Mapping[str, object], *, kind: str = "result", status: int = 200
) -> bytes:
    """One event as the provider writes it (§5.2)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id:{number}\nevent:{kind}\n:HTTP_STATUS/{status}\ndata:{payload}\n\n".encode()


def one_event(answer: EmResponse) -> EmResponse:
    """A sync answer asked for as a stream: a refusal stays a JSON refusal; a success is
    sent as one `result` event."""
    if answer.status != 200:
        return answer
    only = event(1, json.loads(answer.body))
    return EmResponse(
        200, b"", content_type=SSE, stream=EventStream(iter([(0.0, only)]), lambda: None)
    )


# -- the illustrated piece ------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    kind: str  # "text", "image", "error" or "stall"
    text: str = ""
    index: int = 0  # an image's place among the piece's images


def script(prompt: str, images: int, triggers: set[str]) -> list[_Step]:
    """What a piece sends, in order: its text in small chunks, a picture after each
    paragraph but the last; cut short after the first picture by a trigger."""
    steps: list[_Step] = []
    for number, paragraph in enumerate(_paragraphs(prompt, images)):
        steps += [_Step("text", chunk) for chunk in _chunks(paragraph)]
        if number < images:
            steps.append(_Step("image", index=number))
    cut = next(i for i, step in enumerate(steps) if step.kind == "image") + 2
    if STREAM_ERROR in triggers:
        return [*steps[:cut], _Step("error")]
    if STREAM_STALL in triggers:
        return [*steps[:cut], _Step("stall")]
    return steps


def _paragraphs(prompt: str, images: int) -> list[str]:
    topic = " ".join(word for word in prompt.split() if not word.startswith("#"))[:80]
    topic = topic or "the brief"
    middle = [f"After picture {number}, the story goes on. " for number in range(1, images)]
    return [
        f"Here is an illustrated piece about {topic}. ",
        *middle,
        f"And that is the end of the piece about {topic}.",
    ]


def _chunks(paragraph: str, words: int = 3) -> list[str]:
    found = re.findall(r"\S+\s*", paragraph)
    return ["".join(found[i : i + words]) for i in range(0, len(found), words)]


class _Piece:
    """One stream's state: what it has sent, and how it is paced."""

    def __init__(
        self, em: Emulator, asked: Generation, plans: list[RenderPlan], steps: list[_Step]
    ) -> None:
        self.em, self.plans, self.steps = em, plans, steps
        self.request_id = request_id()
        self.input_tokens = (
            len(asked.prompt) // 3 + 1 + sum(image.facts.pixels // 1024 for image in asked.images)
        )
        self.output_tokens = 0
        self.images_sent = 0
        self.ended = False
        self.size = f"{plans[0].width}*{plans[0].height}"

    def wait(self, step: _Step) -> float:
        config = self.em.config
        if step.kind == "stall":
            return config.stream_stall_seconds
        return config.stream_image_seconds if step.kind == "image" else config.stream_event_seconds

    def parts(self) -> Iterator[tuple[float, bytes]]:
        for number, step in enumerate(self.steps, start=1):
            last = number == len(self.steps)
            if last:
                self._end(step)  # before the last part: a client may stop reading at it
            if step.kind == "stall":
                yield self.wait(step), b""
                return
            if step.kind == "error":
                yield self.wait(step), self._error(number)
                return
            yield self.wait(step), self._result(number, step, last=last)

    def _end(self, step: _Step) -> None:
        self.ended = True
        counts = self.em.counts
        if step.kind == "stall":
            counts["streams.stalled"] += 1
        elif step.kind == "error":
            counts["streams.errors"] += 1
        else:
            counts["streams.finished"] += 1
            counts["generated"] += 1

    def _result(self, number: int, step: _Step, *, last: bool) -> bytes:
        if step.kind == "image":
            result_id = new_results(self.em, [self.plans[step.index]], None)[0]
            item = {"type": "image", "image": signed_url(self.em, result_id)}
            self.images_sent += 1
            self.output_tokens += 2
        else:
            item = {"type": "text", "text": step.text}
            self.output_tokens += max(1, len(step.text) // 4)
        choice = {
            "message": {"content": [item], "role": "assistant"},
            "finish_reason": "stop" if last else "null",
        }
        return event(
            number,
            {
                "output": {"choices": [choice], "finished": True},
                "usage": self._usage(),
                "request_id": self.request_id,
            },
        )

    def _usage(self) -> dict[str, object]:
        return {
            "total_tokens": self.input_tokens + self.output_tokens,
            "image_count": self.images_sent,
            "output_tokens": self.output_tokens,
            "size": self.size,
            "input_tokens": self.input_tokens,
        }

    def _error(self, number: int) -> bytes:
        code, message = _FAILED
        data = {"code": code, "message": message, "request_id": self.request_id}
        return event(number, data, kind="error", status=500)


def interleaved(
    em: Emulator, spec: ModelRules, mode: InterleaveRule, asked: Generation, triggers: set[str]
) -> EmResponse:
    """The mixed text-and-image answer: a stream that holds a running slot as it runs."""
    if "#unsafe-output" in triggers:
        raise WireError(400, *_UNSAFE_OUTPUT)
    if "#fail" in triggers:
        raise WireError(500, *_FAILED)
    count = min(asked.max_images or mode.max_images.default, PIECE_IMAGES)
    plans = plan_outputs(spec, asked, interleave_size(mode.size, asked), count)
    piece = _Piece(em, asked, plans, script(asked.prompt, count, triggers))
    end = start_sync(em, spec.name, sum(piece.wait(step) for step in piece.steps))
    if end is None:
        em.counts["throttled.running"] += 1
        raise WireError(429, "Throttling", "Requests throttling triggered.")
    em.counts["streams"] += 1

    def close() -> None:
        if not piece.ended:
            em.counts["streams.abandoned"] += 1
        end_sync(em, spec.name, end)

    return EmResponse(200, b"", content_type=SSE, stream=EventStream(piece.parts(), close))
