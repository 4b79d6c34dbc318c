"""Generation: the sync endpoint answers with images, the async ones create a task.

A request is read as the service reads it (`parse.py`, against the emulator's own rules),
counted against the model's submit rate, and then either run at once, holding one of the
model's running slots (sync), or queued as a task (`tasks.py`). A sync call asked for
Server-Sent Events is answered as a stream (`streams.py`): wan2.6-image's mixed text and
images, or any other answer as one event. Words in the prompt make it go wrong as the
provider can: `#unsafe` (input refused), `#unsafe-output`, `#fail`, `#partial` (one image
of a legacy task fails), `#slow` and `#fewer` (a set of images stops short of the number
asked for, as the model may); and, in a stream, `#stream-error` (an error event
after some text and an image) and `#stream-stall` (some events, then silence).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from studio.dashscope.emulator import streams
from studio.dashscope.emulator.checks import images_requested, interleave_mode
from studio.dashscope.emulator.limits import BodyStyle, Endpoint, ModelRules
from studio.dashscope.emulator.outputs import messages_output, usage
from studio.dashscope.emulator.parse import DownloadFailed, WireError, invalid, parse_generation
from studio.dashscope.emulator.request import Generation
from studio.dashscope.emulator.results import RESULT_PATH, download, new_results, signed_url
from studio.dashscope.emulator.running import end_sync, plan_outputs, start_sync
from studio.dashscope.emulator.sizes import output_size
from studio.dashscope.emulator.tasks import Task, schedule
from studio.dashscope.emulator.uploads import uploaded_bytes
from studio.dashscope.emulator.wire import EmRequest, EmResponse, json_answer, request_id
from studio.dashscope.redaction import url_for_log

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator

_TRIGGERS = (
    "#unsafe-output",
    "#unsafe",
    "#fail",
    "#partial",
    "#slow",
    "#fewer",
    streams.STREAM_ERROR,
    streams.STREAM_STALL,
)
_UNSAFE_OUTPUT = ("DataInspectionFailed", "Output data may contain inappropriate content.")
_ALGO_FAILED = ("InternalError.Algo", "An internal error has occured during algorithm execution.")


def generation(em: Emulator, request: EmRequest, endpoint: Endpoint) -> EmResponse:
    """`POST` to a generation endpoint: read, refused, run (sync) or queued (async)."""
    body = _read_body(request, endpoint)
    resolve = request.headers.get("x-dashscope-ossresourceresolve", "").lower() == "enable"
    model = body.get("model") if isinstance(body, dict) else None
    spec, asked = parse_generation(
        body,
        endpoint,
        lambda url: _input_bytes(em, url, model, resolve),
        em.config.seed_reading,
    )
    triggers = _triggers(asked.prompt) | _triggers(asked.negative_prompt or "")
    if "#unsafe" in triggers:
        raise WireError(
            400, "DataInspectionFailed", "Input data may contain inappropriate content."
        )
    # The header is the switch: the SDK streams with it alone (protocol §4, §10.6).
    sse = request.headers.get("x-dashscope-sse", "").lower() == "enable"
    mode = interleave_mode(spec, asked)
    if mode is not None and not endpoint.is_async:
        streams.require_sse(sse)
    if not em._allow_submit(spec.name):
        em.counts["throttled.submits"] += 1
        raise WireError(
            429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."
        )
    with em._lock:
        em.submitted_models.append(spec.name)
    if endpoint.is_async:
        return _submit(em, spec, endpoint, asked, triggers)
    if mode is not None:
        return streams.interleaved(em, spec, mode, asked, triggers)
    answer = _generate(em, spec, asked, triggers)
    return streams.one_event(answer) if sse else answer


def _read_body(request: EmRequest, endpoint: Endpoint) -> object:
    """The JSON body, once the async header is checked."""
    asynchronous = request.headers.get("x-dashscope-async", "").lower() == "enable"
    if endpoint.is_async and not asynchronous:
        raise WireError(403, "AccessDenied", "current user api does not support synchronous calls")
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise invalid("The request body is not valid JSON.") from None


def _triggers(prompt: str) -> set[str]:
    found = set()
    for word in _TRIGGERS:
        if re.search(rf"(?<!\S){re.escape(word)}(?!\S)", prompt):
            found.add(word)
    return found


# -- input images ---------------------------------------------------------------------------


def _input_bytes(em: Emulator, url: str, model: object, resolve: bool) -> bytes:
    """An input image's bytes: an oss:// upload (with the resolve header, for the model it
    was uploaded for) or a URL."""
    if not url.startswith("oss://"):
        return _fetch_image(em, url)
    return uploaded_bytes(em, url, model, resolve=resolve)


def _fetch_image(em: Emulator, url: str) -> bytes:
    """An input image URL's bytes. One of the emulator's own results is known by its
    path whatever host the URL names, and read as a download of it would be: with its
    signature and expiry checked."""
    parts = urlsplit(url)
    match = RESULT_PATH.match(parts.path)
    if match and match[1] in em.results:
        answer = download(em, match[1], dict(parse_qsl(parts.query)))
        if answer.status != 200:
            raise DownloadFailed(url_for_log(url))
        return answer.body
    if em._fetch_external is None:
        raise DownloadFailed(url_for_log(url))
    try:
        return em._fetch_external(url)
    except Exception:
        raise DownloadFailed(url_for_log(url)) from None


def _images_made(
    spec: ModelRules, asked: Generation, triggers: set[str], *, asynchronous: bool
) -> int:
    """How many images a request makes. A set's n is an upper bound within which the model
    decides ([D-W27] via protocol §6): `#fewer` makes it stop at half, rounded up."""
    count = images_requested(spec, asked, asynchronous=asynchronous)
    if asked.sequential and "#fewer" in triggers:
        return (count + 1) // 2
    return count


# -- the sync call --------------------------------------------------------------------------


def _generate(em: Emulator, spec: ModelRules, asked: Generation, triggers: set[str]) -> EmResponse:
    size = output_size(spec, asked)
    count = _images_made(spec, asked, triggers, asynchronous=False)
    sync_end = start_sync(em, spec.name, em.config.running_seconds)
    if sync_end is None:
        em.counts["throttled.running"] += 1
        raise WireError(429, "Throttling", "Requests throttling triggered.")
    try:
        em.clock.sleep(em.config.running_seconds)
    finally:
        end_sync(em, spec.name, sync_end)
    if "#unsafe-output" in triggers:
        raise WireError(400, *_UNSAFE_OUTPUT)
    if "#fail" in triggers:
        raise WireError(500, *_ALGO_FAILED)
    result_ids = new_results(em, plan_outputs(spec, asked, size, count), None)
    urls = [signed_url(em, rid) for rid in result_ids]
    em.counts["generated"] += 1
    return json_answer(
        200,
        {
            "output": messages_output(spec, urls, finished=True),
            "usage": usage(spec, asked, size, len(urls), Endpoint.MULTIMODAL_GENERATION),
            "request_id": request_id(),
        },
    )


# -- the async submit -----------------------------------------------------------------------


def _submit(
    em: Emulator, spec: ModelRules, endpoint: Endpoint, asked: Generation, triggers: set[str]
) -> EmResponse:
    size = output_size(spec, asked)
    count = _images_made(spec, asked, triggers, asynchronous=True)
    now = em.clock.now()
    error = _UNSAFE_OUTPUT if "#unsafe-output" in triggers else None
    if error is None and "#fail" in triggers:
        error = _ALGO_FAILED
    task = Task(
        task_id=str(uuid.uuid4()),
        request_id=request_id(),
        model=asked.model,
        spec=spec,
        endpoint=endpoint,
        request=asked,
        submitted_at=now,
        run_seconds=em.config.slow_seconds if "#slow" in triggers else em.config.running_seconds,
        outcome="FAILED" if error else "SUCCEEDED",
        error=error,
        outputs=[],
        size=size,
    )
    if error is None:
        task.outputs = list(new_results(em, plan_outputs(spec, asked, size, count), task))
        if "#partial" in triggers and endpoint.body_style is not BodyStyle.MESSAGES:
            _fail_first_image(task)
    with em._lock:
        em.tasks[task.task_id] = task
        schedule(em, spec.name, now)
        em.counts["submitted"] += 1
    return json_answer(
        200,
        {
            "output": {"task_status": "PENDING", "task_id": task.task_id},
            "request_id": task.request_id,
        },
    )


def _fail_first_image(task: Task) -> None:
    # The legacy protocol reports a partly failed task as SUCCEEDED.
    task.outputs[0] = (
        "InternalError.Timeout",
        "An internal timeout error has occured "
        "during execution, please try again later or contact service support.",
    )
    if all(isinstance(o, tuple) for o in task.outputs):
        task.outcome, task.error = "FAILED", task.outputs[0]  # type: ignore[assignment]
