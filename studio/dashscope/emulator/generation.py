"""Generation: the sync endpoint answers with images, the async ones create a task.

A request is read as the service reads it (`parse.py`, against the emulator's own rules),
counted against the model's submit rate, and then either run at once, holding one of the
model's running slots (sync), or queued as a task (`tasks.py`). Words in the prompt make
it go wrong as the provider can: `#unsafe` (input refused), `#unsafe-output`, `#fail`,
`#partial` (one image of a legacy task fails) and `#slow`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from studio.dashscope.emulator.checks import images_requested
from studio.dashscope.emulator.limits import BodyStyle, Endpoint, ModelRules
from studio.dashscope.emulator.outputs import messages_output, usage
from studio.dashscope.emulator.parse import DownloadFailed, WireError, invalid, parse_generation
from studio.dashscope.emulator.render import RenderPlan, cells, sketch
from studio.dashscope.emulator.request import Box, Generation
from studio.dashscope.emulator.results import RESULT_PATH, download, new_results, signed_url
from studio.dashscope.emulator.sizes import output_size
from studio.dashscope.emulator.tasks import Task, schedule
from studio.dashscope.emulator.uploads import uploaded_bytes
from studio.dashscope.emulator.wire import EmRequest, EmResponse, json_answer, request_id
from studio.dashscope.redaction import url_for_log

if TYPE_CHECKING:
    from studio.dashscope.emulator.core import Emulator

_TRIGGERS = ("#unsafe-output", "#unsafe", "#fail", "#partial", "#slow")
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
    if not em._allow_submit(spec.name):
        em.counts["throttled.submits"] += 1
        raise WireError(
            429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."
        )
    with em._lock:
        em.submitted_models.append(spec.name)
    if endpoint.is_async:
        return _submit(em, spec, endpoint, asked, triggers)
    return _generate(em, spec, asked, triggers)


def _read_body(request: EmRequest, endpoint: Endpoint) -> object:
    """The JSON body, once the headers and the modes the emulator does not play are checked."""
    asynchronous = request.headers.get("x-dashscope-async", "").lower() == "enable"
    if endpoint.is_async and not asynchronous:
        raise WireError(403, "AccessDenied", "current user api does not support synchronous calls")
    if request.headers.get("x-dashscope-sse", "").lower() == "enable":
        raise invalid("Streaming output is not supported by the emulator.")
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        raise invalid("The request body is not valid JSON.") from None
    parameters = body.get("parameters") if isinstance(body, dict) else None
    if isinstance(parameters, dict) and parameters.get("enable_interleave") is True:
        raise invalid("Interleaved text-and-image output is not supported by the emulator.")
    return body


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


def _plan_outputs(
    spec: ModelRules, asked: Generation, size: tuple[int, int], count: int
) -> list[RenderPlan]:
    """What each result image will show: the prompt, and the inputs with their regions."""
    width, height = size
    sketches = []
    cell_sizes = cells(len(asked.images), width, height) if asked.images else []
    for position, image in enumerate(asked.images):
        _, _, cell_w, cell_h = cell_sizes[position]
        sketches.append(sketch(image.data, _own_boxes(asked, position), (cell_w, cell_h)))
    return [
        RenderPlan(
            width=width,
            height=height,
            prompt=asked.prompt,
            model=spec.name,
            index=index,
            count=count,
            seed=asked.seed,
            sketches=tuple(sketches),
        )
        for index in range(count)
    ]


def _own_boxes(asked: Generation, position: int) -> tuple[Box, ...]:
    """The regions drawn on one input image: four whole numbers each, as checked."""
    boxes = asked.bbox_list or ()
    if position >= len(boxes):
        return ()
    return tuple(tuple(box) for box in boxes[position])  # type: ignore[arg-type,misc]


# -- the sync call --------------------------------------------------------------------------


def _start_sync(em: Emulator, model: str) -> float | None:
    """A sync call takes one of the model's running slots, or is turned away: unlike a
    task, it has no queue to wait in. Returns when the call will end, or None."""
    now = em.clock.now()
    with em._lock:
        busy = sum(
            1
            for t in em.tasks.values()
            if t.spec.name == model and t.status(now, em.config.task_ttl_seconds) == "RUNNING"
        ) + sum(1 for end in em._sync_calls[model] if end > now)
        if busy >= em.config.max_running_per_model:
            return None
        end = now + em.config.running_seconds
        em._sync_calls[model].append(end)
        # Tasks waiting for a slot now wait for this call too.
        schedule(em, model, now)
        return end


def _end_sync(em: Emulator, model: str, end: float) -> None:
    with em._lock:
        em._sync_calls[model].remove(end)
        schedule(em, model, em.clock.now())


def _generate(em: Emulator, spec: ModelRules, asked: Generation, triggers: set[str]) -> EmResponse:
    size = output_size(spec, asked)
    count = images_requested(spec, asked, asynchronous=False)
    sync_end = _start_sync(em, spec.name)
    if sync_end is None:
        em.counts["throttled.running"] += 1
        raise WireError(429, "Throttling", "Requests throttling triggered.")
    try:
        em.clock.sleep(em.config.running_seconds)
    finally:
        _end_sync(em, spec.name, sync_end)
    if "#unsafe-output" in triggers:
        raise WireError(400, *_UNSAFE_OUTPUT)
    if "#fail" in triggers:
        raise WireError(500, *_ALGO_FAILED)
    result_ids = new_results(em, _plan_outputs(spec, asked, size, count), None)
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
    count = images_requested(spec, asked, asynchronous=True)
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
        task.outputs = list(new_results(em, _plan_outputs(spec, asked, size, count), task))
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
