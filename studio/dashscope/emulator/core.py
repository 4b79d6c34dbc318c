"""An offline DashScope: the same paths, bodies, task states, errors and limits.

`Emulator.handle()` takes a plain request and returns a plain answer; `wsgi.py` serves it
over HTTP and `transport.py` plugs it into httpx in-process. Everything time-dependent
reads the injected clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import heapq
import hmac
import itertools
import json
import re
import secrets
import threading
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from studio.dashscope.emulator.config import (
    DEFAULT_RESULT_HOSTS,
    FAULT_ERRORS,
    Clock,
    EmulatorConfig,
    FaultRule,
    parse_faults,
)
from studio.dashscope.emulator.parse import (
    DownloadFailed,
    UnreadableImage,
    WireError,
    invalid,
    parse_generation,
    read_image,
)
from studio.dashscope.emulator.render import RenderPlan, cells, render_png, sketch
from studio.dashscope.emulator.rules import (
    BodyStyle,
    Endpoint,
    Generation,
    ModelRules,
    Option,
    ResultShape,
    images_requested,
    model_rules,
    output_size,
    parse_readings,
)
from studio.dashscope.redaction import url_for_log

API = "/api/v1"
_TASK_PATH = re.compile(rf"^{API}/tasks/([^/]+)$")
_CANCEL_PATH = re.compile(rf"^{API}/tasks/([^/]+)/cancel$")
_RESULT_PATH = re.compile(r"^/results/([0-9a-f]{32})\.png$")
_UPLOADS_PATH = f"{API}/uploads"
_OSS_UPLOAD_PATH = "/oss-upload"  # the emulator's stand-in for the upload_host OSS bucket
UPLOAD_POLICY_SECONDS = 300  # how long an upload certificate may be used, as the real one
UPLOAD_KEEP_SECONDS = 48 * 3600  # how long an uploaded file can be named as oss://
UPLOAD_MAX_BYTES = 100 * 1024 * 1024  # the certificate's max_file_size_mb
_ENDPOINTS = {f"{API}{endpoint.value}": endpoint for endpoint in Endpoint}
_TRIGGERS = ("#unsafe-output", "#unsafe", "#fail", "#partial", "#slow")
_CANCEL_REFUSED = "Failed to cancel the task, please confirm if the task is in PENDING status."
MAX_BODY_BYTES = 300 * 1024 * 1024


@dataclass(frozen=True)
class EmRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    origin: str  # scheme://host[:port] the request was addressed to


@dataclass
class EmResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str | None = None  # "drop": close without answering
    delay: float = 0.0  # seconds to hold the answer back

    @property
    def all_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *self.headers,
        ]


def _json(
    status: int, payload: dict[str, Any], headers: list[tuple[str, str]] | None = None
) -> EmResponse:
    return EmResponse(
        status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers or []
    )


def _error(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> EmResponse:
    payload = {"request_id": _request_id(), "code": code, "message": message}
    return _json(status, payload, headers)


def _oss_error(status: int, code: str, message: str) -> EmResponse:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n"
        f"  <RequestId>{uuid.uuid4().hex[:24].upper()}</RequestId>\n"
        "  <HostId>dashscope-result.emulator</HostId>\n</Error>\n"
    )
    return EmResponse(status, body.encode(), content_type="application/xml")


def _request_id() -> str:
    return str(uuid.uuid4())


def _wire_time(epoch: float, offset_minutes: int = 0) -> str:
    moment = datetime.fromtimestamp(epoch, timezone(timedelta(minutes=offset_minutes)))
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _triggers(prompt: str) -> set[str]:
    found = set()
    for word in _TRIGGERS:
        if re.search(rf"(?<!\S){re.escape(word)}(?!\S)", prompt):
            found.add(word)
    return found


# Drawn results kept for downloads: enough for every task a busy served emulator runs.
RENDERED_KEPT = 256


@dataclass
class Result:
    plan: RenderPlan
    task: Task | None  # None for sync results
    created_at: float
    host: str  # the OSS host its URL names


@dataclass
class Task:
    task_id: str
    request_id: str
    model: str
    spec: ModelRules
    endpoint: Endpoint
    request: Generation
    submitted_at: float
    run_seconds: float
    outcome: str  # SUCCEEDED or FAILED when it ends
    error: tuple[str, str] | None
    outputs: list[str | tuple[str, str]]  # result id, or (code, message) for a failed image
    size: tuple[int, int]
    start_at: float = 0.0
    end_at: float = 0.0
    canceled_at: float | None = None
    scheduled: bool = False

    def status(self, now: float, ttl: float) -> str:
        if now >= self.submitted_at + ttl:
            return "UNKNOWN"
        if self.canceled_at is not None:
            return "CANCELED"
        if not self.scheduled or now < self.start_at:
            return "PENDING"
        if now < self.end_at:
            return "RUNNING"
        return self.outcome


class Emulator:
    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        fetch_url: Callable[[str], bytes] | None = None,
        prerender: bool = False,
    ) -> None:
        self.config = config or EmulatorConfig()
        # The real results are files on OSS, ready when the task succeeds; a served
        # emulator draws each one in the background as its task is created, so a download
        # is as quick as fetching a file rather than waiting for a drawing.
        self._prerender = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="prerender") if prerender else None
        )
        self.clock = clock or Clock()
        self._fetch_external = fetch_url
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        # The `{hex}` of a result host template: one bucket name per emulator, as a real
        # account's results come from the same accelerated bucket.
        self._host_hex = secrets.token_hex(2)
        self._host_turn = itertools.count()
        self._render_lock = threading.Lock()
        self._rendered: OrderedDict[str, bytes] = OrderedDict()
        self.reset()

    def close(self) -> None:
        if self._prerender is not None:
            self._prerender.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        with self._lock:
            self.tasks: dict[str, Task] = {}
            self.results: dict[str, Result] = {}
            self._submits: dict[str, deque[float]] = defaultdict(deque)
            self._queries: deque[float] = deque()
            # When each sync call in progress will end, per model: they hold running slots
            # that the task scheduler must see.
            self._sync_calls: dict[str, list[float]] = defaultdict(list)
            # Temporary uploads by key (without oss://): their bytes, the model they are
            # for, and when they stop being usable.
            self.uploads: dict[str, Upload] = {}
            self.counts: dict[str, int] = defaultdict(int)
            self.requests: deque[dict[str, Any]] = deque(maxlen=2000)
            self.submitted_models: list[str] = []

    # -- entry point ----------------------------------------------------------------------

    def handle(self, request: EmRequest) -> EmResponse:
        if request.path.startswith("/_emulator/"):
            return self._control(request)
        scope, route = self._route(request)
        fault = self._take_fault(scope) if scope else None
        if fault is not None and fault.kind == "drop":
            self._log(request, None, "dropped before processing")
            return EmResponse(0, b"", action="drop")
        if fault is not None and fault.kind in FAULT_ERRORS:
            # An error answer means the request took no effect, as with the real service.
            status, code, message = FAULT_ERRORS[fault.kind]
            response = _error(status, code, message, self._retry_after_header(status))
            self._log(request, response, f"injected {fault.kind}")
            return response
        response = route()
        if fault is not None and fault.kind == "drop-after":
            self._log(request, response, "dropped after processing")
            return EmResponse(0, b"", action="drop")
        if fault is not None and fault.kind.startswith("slow="):
            response.delay = float(fault.kind.removeprefix("slow="))
        self._log(request, response, None)
        return response

    def _route(self, request: EmRequest) -> tuple[str | None, Callable[[], EmResponse]]:
        path, method = request.path, request.method
        endpoint = _ENDPOINTS.get(path)
        if endpoint is not None:
            if method != "POST":
                return None, lambda: _error(405, "MethodNotAllowed", "Use POST.")
            scope = "submit" if endpoint.is_async else "generate"
            return scope, lambda: self._api(request, lambda: self._generation(request, endpoint))
        if match := _CANCEL_PATH.match(path):
            if method != "POST":
                return None, lambda: _error(405, "MethodNotAllowed", "Use POST.")
            return "cancel", lambda: self._api(request, lambda: self._cancel(match[1]), query=True)
        if path in (f"{API}/tasks", f"{API}/tasks/"):
            return "list", lambda: self._api(request, lambda: self._list(request.query), query=True)
        if match := _TASK_PATH.match(path):
            return "fetch", lambda: self._api(request, lambda: self._fetch(match[1]), query=True)
        if match := _RESULT_PATH.match(path):
            return "result", lambda: self._result(match[1], request.query)
        if path == _UPLOADS_PATH and method == "GET":
            return None, lambda: self._api(request, lambda: self._upload_policy(request))
        if path == _OSS_UPLOAD_PATH and method == "POST":
            return None, lambda: self._oss_upload(request)
        return None, lambda: _error(404, "NotFound", f"No such path: {path}")

    def _take_fault(self, scope: str) -> FaultRule | None:
        with self._lock:
            for rule in self.config.faults:
                if rule.scope in (scope, "any") and (rule.remaining is None or rule.remaining > 0):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    self.counts[f"faults.{rule.kind}"] += 1
                    return rule
        return None

    def _retry_after_header(self, status: int) -> list[tuple[str, str]]:
        if status == 429 and self.config.retry_after is not None:
            return [("Retry-After", str(self.config.retry_after))]
        return []

    def _api(
        self, request: EmRequest, action: Callable[[], EmResponse], *, query: bool = False
    ) -> EmResponse:
        auth = request.headers.get("authorization", "")
        if not auth:
            return _error(401, "InvalidApiKey", "No API-key provided.")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip().startswith(self.config.api_key_prefix):
            return _error(401, "InvalidApiKey", "Invalid API-key provided.")
        if query and not self._allow_query():
            self.counts["throttled.queries"] += 1
            return _error(
                429,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
                self._retry_after_header(429),
            )
        try:
            return action()
        except WireError as exc:
            return _error(exc.status, exc.code, exc.message)

    def _allow_query(self) -> bool:
        return self._within_rate(self._queries, self.config.queries_per_second)

    def _allow_submit(self, model: str) -> bool:
        return self._within_rate(self._submits[model], self.config.submits_per_second)

    def _within_rate(self, window: deque[float], per_second: int) -> bool:
        """Count a request in a sliding one-second window, unless the window is full."""
        now = self.clock.now()
        with self._lock:
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= per_second:
                return False
            window.append(now)
            return True

    # -- generation -----------------------------------------------------------------------

    def _generation(self, request: EmRequest, endpoint: Endpoint) -> EmResponse:
        asynchronous = request.headers.get("x-dashscope-async", "").lower() == "enable"
        if endpoint.is_async and not asynchronous:
            raise WireError(
                403, "AccessDenied", "current user api does not support synchronous calls"
            )
        if request.headers.get("x-dashscope-sse", "").lower() == "enable":
            raise invalid("Streaming output is not supported by the emulator.")
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise invalid("The request body is not valid JSON.") from None
        parameters = body.get("parameters") if isinstance(body, dict) else None
        if isinstance(parameters, dict) and parameters.get("enable_interleave") is True:
            raise invalid("Interleaved text-and-image output is not supported by the emulator.")
        resolve = request.headers.get("x-dashscope-ossresourceresolve", "").lower() == "enable"
        spec, generation = parse_generation(
            body,
            endpoint,
            lambda url: self._input_bytes(url, body.get("model"), resolve),
            self.config.seed_reading,
        )
        triggers = _triggers(generation.prompt) | _triggers(generation.negative_prompt or "")
        if "#unsafe" in triggers:
            raise WireError(
                400, "DataInspectionFailed", "Input data may contain inappropriate content."
            )
        if not self._allow_submit(spec.name):
            self.counts["throttled.submits"] += 1
            raise WireError(
                429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later."
            )
        with self._lock:
            self.submitted_models.append(spec.name)
        if endpoint.is_async:
            return self._submit(spec, endpoint, generation, triggers)
        return self._generate(spec, generation, triggers)

    def _input_bytes(self, url: str, model: object, resolve: bool) -> bytes:
        """An input image's bytes: an oss:// upload (with the resolve header, for the model
        it was uploaded for) or a URL."""
        if not url.startswith("oss://"):
            return self._fetch_image(url)
        if not resolve:
            raise invalid(
                "An oss:// input needs the header X-DashScope-OssResourceResolve: enable."
            )
        with self._lock:
            upload = self.uploads.get(url.removeprefix("oss://"))
        if upload is None or self.clock.now() > upload.expires_at:
            raise invalid(f"The file {url} does not exist or has expired.")
        rules = model_rules(str(model))
        if rules is None or upload.model != rules.name:
            raise invalid(f"The file {url} was uploaded for another model ({upload.model}).")
        return upload.data

    # -- temporary uploads (E8, E9) -------------------------------------------------------

    def _upload_policy(self, request: EmRequest) -> EmResponse:
        """An upload certificate: a policy for one upload directory, signed, naming this
        emulator as the upload host."""
        if request.query.get("action") != "getPolicy":
            raise invalid("The action must be getPolicy.")
        rules = model_rules(request.query.get("model", ""))
        if rules is None:
            raise invalid("Model not exist.")
        model = rules.name
        now = self.clock.now()
        upload_dir = f"dashscope-instant/{uuid.uuid4().hex}/{_wire_time(now)[:10]}/{model}"
        policy = {
            "expiration": _wire_time(now + UPLOAD_POLICY_SECONDS).replace(" ", "T") + "Z",
            "expires_at": now + UPLOAD_POLICY_SECONDS,
            "conditions": [["starts-with", "$key", upload_dir], {"model": model}],
        }
        encoded = base64.b64encode(json.dumps(policy).encode()).decode()
        origin = (self.config.public_url or request.origin).rstrip("/")
        data = {
            "policy": encoded,
            "signature": self._policy_signature(encoded.encode()).decode(),
            "upload_dir": upload_dir,
            "upload_host": f"{origin}{_OSS_UPLOAD_PATH}",
            "expire_in_seconds": UPLOAD_POLICY_SECONDS,
            "max_file_size_mb": UPLOAD_MAX_BYTES // (1024 * 1024),
            "capacity_limit_mb": 999999,
            "oss_access_key_id": "LTAI5tEmulatorKey",
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true",
        }
        return _json(200, {"request_id": _request_id(), "data": data})

    def _policy_signature(self, policy: bytes) -> bytes:
        return base64.b64encode(hmac.new(self._secret, policy, hashlib.sha1).digest())

    def _oss_upload(self, request: EmRequest) -> EmResponse:
        """A browser-style form upload to OSS, as the SDK sends it: no Authorization; the
        signed policy says where it may go and until when."""
        if len(request.body) > UPLOAD_MAX_BYTES + 64 * 1024:  # the file, and the form around it
            return _oss_error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."
            )
        fields = _form_fields(request)
        # Compared as bytes: a field that is not text is a signature that does not match.
        policy, signature = fields.get("policy", b""), fields.get("Signature", b"")
        if not policy or not hmac.compare_digest(signature, self._policy_signature(policy)):
            return _oss_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        terms = json.loads(base64.b64decode(policy))
        if self.clock.now() > terms["expires_at"]:
            return _oss_error(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        key = fields.get("key", b"").decode(errors="replace")
        prefix = terms["conditions"][0][2]
        if not key.startswith(prefix + "/") or "file" not in fields:
            return _oss_error(
                403, "AccessDenied", "Invalid according to Policy: Policy Condition failed."
            )
        with self._lock:
            if key in self.uploads:
                return _oss_error(
                    409, "FileAlreadyExists", "The object you specified already exists."
                )
            self.uploads[key] = Upload(
                data=fields["file"],
                model=terms["conditions"][1]["model"],
                expires_at=self.clock.now() + UPLOAD_KEEP_SECONDS,
            )
            self.counts["uploads"] += 1
        return EmResponse(200, b"", content_type="text/plain")

    def _fetch_image(self, url: str) -> bytes:
        """An input image URL's bytes. One of the emulator's own results is known by its
        path whatever host the URL names, and read as a download of it would be: with its
        signature and expiry checked."""
        parts = urlsplit(url)
        match = _RESULT_PATH.match(parts.path)
        if match and match[1] in self.results:
            answer = self._result(match[1], dict(parse_qsl(parts.query)))
            if answer.status != 200:
                raise DownloadFailed(url_for_log(url))
            return answer.body
        if self._fetch_external is None:
            raise DownloadFailed(url_for_log(url))
        try:
            return self._fetch_external(url)
        except Exception:
            raise DownloadFailed(url_for_log(url)) from None

    def _start_sync(self, model: str) -> float | None:
        """A sync call takes one of the model's running slots, or is turned away: unlike a
        task, it has no queue to wait in. Returns when the call will end, or None."""
        now = self.clock.now()
        with self._lock:
            busy = sum(
                1
                for t in self.tasks.values()
                if t.spec.name == model and t.status(now, self.config.task_ttl_seconds) == "RUNNING"
            ) + sum(1 for end in self._sync_calls[model] if end > now)
            if busy >= self.config.max_running_per_model:
                return None
            end = now + self.config.running_seconds
            self._sync_calls[model].append(end)
            # Tasks waiting for a slot now wait for this call too.
            self._schedule(model, now)
            return end

    def _end_sync(self, model: str, end: float) -> None:
        with self._lock:
            self._sync_calls[model].remove(end)
            self._schedule(model, self.clock.now())

    def _plan_outputs(
        self, spec: ModelRules, generation: Generation, size: tuple[int, int], count: int
    ) -> list[RenderPlan]:
        width, height = size
        sketches = []
        boxes = generation.bbox_list or ()
        cell_sizes = cells(len(generation.images), width, height) if generation.images else []
        for position, image in enumerate(generation.images):
            own_boxes = tuple(tuple(b) for b in boxes[position]) if position < len(boxes) else ()
            _, _, cell_w, cell_h = cell_sizes[position]
            sketches.append(sketch(image.data, own_boxes, (cell_w, cell_h)))  # type: ignore[arg-type]
        return [
            RenderPlan(
                width=width,
                height=height,
                prompt=generation.prompt,
                model=spec.name,
                index=index,
                count=count,
                seed=generation.seed,
                sketches=tuple(sketches),
            )
            for index in range(count)
        ]

    def _new_results(self, plans: list[RenderPlan], task: Task | None) -> list[str]:
        ids = []
        with self._lock:
            self._purge(self.clock.now())
            for plan in plans:
                result_id = uuid.uuid4().hex
                self.results[result_id] = Result(
                    plan=plan, task=task, created_at=self.clock.now(), host=self._next_host()
                )
                ids.append(result_id)
        if self._prerender is not None and task is not None:
            for result_id in ids:
                self._prerender.submit(self._png, result_id)
        return ids

    def _generate(self, spec: ModelRules, generation: Generation, triggers: set[str]) -> EmResponse:
        size = output_size(spec, generation)
        count = images_requested(spec, generation, asynchronous=False)
        sync_end = self._start_sync(spec.name)
        if sync_end is None:
            self.counts["throttled.running"] += 1
            raise WireError(429, "Throttling", "Requests throttling triggered.")
        try:
            self.clock.sleep(self.config.running_seconds)
        finally:
            self._end_sync(spec.name, sync_end)
        if "#unsafe-output" in triggers:
            raise WireError(
                400, "DataInspectionFailed", "Output data may contain inappropriate content."
            )
        if "#fail" in triggers:
            raise WireError(
                500,
                "InternalError.Algo",
                "An internal error has occured during algorithm execution.",
            )
        result_ids = self._new_results(self._plan_outputs(spec, generation, size, count), None)
        urls = [self._signed_url(rid) for rid in result_ids]
        self.counts["generated"] += 1
        return _json(
            200,
            {
                "output": _messages_output(spec, urls, finished=True),
                "usage": _usage(spec, generation, size, len(urls), Endpoint.MULTIMODAL_GENERATION),
                "request_id": _request_id(),
            },
        )

    def _submit(
        self, spec: ModelRules, endpoint: Endpoint, generation: Generation, triggers: set[str]
    ) -> EmResponse:
        size = output_size(spec, generation)
        count = images_requested(spec, generation, asynchronous=True)
        now = self.clock.now()
        error = None
        if "#unsafe-output" in triggers:
            error = ("DataInspectionFailed", "Output data may contain inappropriate content.")
        elif "#fail" in triggers:
            error = (
                "InternalError.Algo",
                "An internal error has occured during algorithm execution.",
            )
        task = Task(
            task_id=str(uuid.uuid4()),
            request_id=_request_id(),
            model=generation.model,
            spec=spec,
            endpoint=endpoint,
            request=generation,
            submitted_at=now,
            run_seconds=self.config.slow_seconds
            if "#slow" in triggers
            else self.config.running_seconds,
            outcome="FAILED" if error else "SUCCEEDED",
            error=error,
            outputs=[],
            size=size,
        )
        if error is None:
            task.outputs = list(
                self._new_results(self._plan_outputs(spec, generation, size, count), task)
            )
            if "#partial" in triggers and endpoint.body_style is not BodyStyle.MESSAGES:
                # The legacy protocol reports a partly failed task as SUCCEEDED.
                task.outputs[0] = (
                    "InternalError.Timeout",
                    "An internal timeout error has occured "
                    "during execution, please try again later or contact service support.",
                )
                if all(isinstance(o, tuple) for o in task.outputs):
                    task.outcome, task.error = "FAILED", task.outputs[0]  # type: ignore[assignment]
        with self._lock:
            self.tasks[task.task_id] = task
            self._schedule(spec.name, now)
            self.counts["submitted"] += 1
        return _json(
            200,
            {
                "output": {"task_status": "PENDING", "task_id": task.task_id},
                "request_id": task.request_id,
            },
        )

    def _schedule(self, model: str, now: float) -> None:
        """Give each waiting task of a model its start: FIFO over K running slots."""
        tasks = sorted(
            (t for t in self.tasks.values() if t.spec.name == model and t.canceled_at is None),
            key=lambda t: t.submitted_at,
        )
        started = [t for t in tasks if t.scheduled and t.start_at <= now]
        waiting = [t for t in tasks if not (t.scheduled and t.start_at <= now)]
        slots = [t.end_at for t in started if t.end_at > now]
        slots += [end for end in self._sync_calls[model] if end > now]
        slots += [now] * max(0, self.config.max_running_per_model - len(slots))
        heapq.heapify(slots)
        for task in waiting:
            free = heapq.heappop(slots)
            task.start_at = max(task.submitted_at + self.config.pending_seconds, free)
            task.end_at = task.start_at + task.run_seconds
            task.scheduled = True
            heapq.heappush(slots, task.end_at)

    # -- tasks ----------------------------------------------------------------------------

    def _fetch(self, task_id: str) -> EmResponse:
        self.counts["fetches"] += 1
        now = self.clock.now()
        with self._lock:
            task = self.tasks.get(task_id)
            status = task.status(now, self.config.task_ttl_seconds) if task else "UNKNOWN"
        if task is None or status == "UNKNOWN":
            return _json(
                200,
                {
                    "request_id": _request_id(),
                    "output": {"task_id": task_id, "task_status": "UNKNOWN"},
                },
            )
        return _json(200, self._task_body(task, status, now))

    def _written(self, epoch: float) -> str:
        """A moment as the provider writes it in a task, in the configured zone."""
        return _wire_time(epoch, self.config.utc_offset_minutes)

    def _task_body(self, task: Task, status: str, now: float) -> dict[str, Any]:
        legacy = task.endpoint.body_style is not BodyStyle.MESSAGES
        output: dict[str, Any] = {
            "task_id": task.task_id,
            "task_status": status,
            "submit_time": self._written(task.submitted_at),
        }
        if status != "PENDING" and task.canceled_at is None:
            output["scheduled_time"] = self._written(task.start_at)
        if status == "CANCELED":
            output["end_time"] = self._written(task.canceled_at or now)
        elif status in ("SUCCEEDED", "FAILED"):
            output["end_time"] = self._written(task.end_at)
        total = len(task.outputs) or images_requested(task.spec, task.request, asynchronous=True)
        failed_images = sum(1 for o in task.outputs if isinstance(o, tuple))
        body: dict[str, Any] = {"request_id": _request_id(), "output": output}
        if status == "RUNNING" and legacy:
            output["task_metrics"] = {"TOTAL": total, "SUCCEEDED": 0, "FAILED": 0}
        if status == "FAILED":
            code, message = task.error or ("InternalError", "Task failed.")
            output["code"], output["message"] = code, message
            if legacy:
                output["task_metrics"] = {"TOTAL": total, "SUCCEEDED": 0, "FAILED": total}
                body["usage"] = {"image_count": 0}
        if status == "SUCCEEDED":
            succeeded = [o for o in task.outputs if isinstance(o, str)]
            urls = [self._signed_url(rid) for rid in succeeded]
            if legacy:
                output["results"] = [
                    {"code": o[0], "message": o[1]}
                    if isinstance(o, tuple)
                    else _legacy_result(task, self._signed_url(o))
                    for o in task.outputs
                ]
                output["task_metrics"] = {
                    "TOTAL": total,
                    "SUCCEEDED": total - failed_images,
                    "FAILED": failed_images,
                }
            else:
                output.update(_messages_output(task.spec, urls, finished=True))
            body["usage"] = _usage(task.spec, task.request, task.size, len(urls), task.endpoint)
        return body

    def _cancel(self, task_id: str) -> EmResponse:
        self.counts["cancels"] += 1
        now = self.clock.now()
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or task.status(now, self.config.task_ttl_seconds) != "PENDING":
                raise WireError(400, "UnsupportedOperation", _CANCEL_REFUSED)
            task.canceled_at = now
            self._schedule(task.spec.name, now)
        return _json(200, {"request_id": _request_id()})

    def _list(self, query: dict[str, str]) -> EmResponse:
        self.counts["lists"] += 1
        now = self.clock.now()
        zone = self.config.utc_offset_minutes
        start = _list_time(query.get("start_time"), now - 24 * 3600, zone)
        end = _list_time(query.get("end_time"), now, zone)
        if end - start > 24 * 3600:
            raise invalid("The time span between start_time and end_time cannot exceed 24 hours.")
        try:
            page_no = max(1, int(query.get("page_no") or 1))
            page_size = min(100, max(1, int(query.get("page_size") or 10)))
        except ValueError:
            raise invalid("page_no and page_size must be integers.") from None
        with self._lock:
            rows = []
            for task in sorted(self.tasks.values(), key=lambda t: t.submitted_at, reverse=True):
                status = task.status(now, self.config.task_ttl_seconds)
                if status == "UNKNOWN" or not start <= task.submitted_at <= end:
                    continue
                if query.get("model_name") and task.model != query["model_name"]:
                    continue
                if query.get("status") and status != query["status"]:
                    continue
                if query.get("task_id") and task.task_id != query["task_id"]:
                    continue
                rows.append(_list_row(task, status))
        total = len(rows)
        page = rows[(page_no - 1) * page_size : page_no * page_size]
        return _json(
            200,
            {
                "request_id": _request_id(),
                "total": total,
                "total_page": (total + page_size - 1) // page_size,
                "page_no": page_no,
                "page_size": page_size,
                "data": page,
            },
        )

    # -- results --------------------------------------------------------------------------

    def _result_expiry(self, result: Result) -> float:
        if result.task is not None and (not result.task.scheduled or result.task.canceled_at):
            # Not made yet (or never to be): a URL is signed only once the task ends.
            return float("inf") if not result.task.canceled_at else result.task.canceled_at
        made = result.task.end_at if result.task else result.created_at
        return made + self.config.result_ttl_seconds

    def _purge(self, now: float) -> None:
        """Forget tasks and results past their lifetimes, as the provider does."""
        self.results = {rid: r for rid, r in self.results.items() if self._result_expiry(r) > now}
        self.tasks = {
            tid: t
            for tid, t in self.tasks.items()
            if now < t.submitted_at + self.config.task_ttl_seconds
        }
        self.uploads = {key: u for key, u in self.uploads.items() if u.expires_at > now}

    def _signature(self, result_id: str, expires: int) -> str:
        message = f"GET\n\n\n{expires}\n/dashscope-result-emulator/{result_id}.png".encode()
        digest = hmac.new(self._secret, message, hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def _next_host(self) -> str:
        """The host of a new result: the configured hosts in turn, so that every run sees
        each kind the provider hands out."""
        hosts = self.config.result_hosts or DEFAULT_RESULT_HOSTS
        host = hosts[next(self._host_turn) % len(hosts)]
        return host.replace("{hex}", self._host_hex)

    def _signed_url(self, result_id: str) -> str:
        """A result URL as OSS signs one: on a result host, never on the API's origin."""
        result = self.results[result_id]
        expires = int(self._result_expiry(result))
        signature = quote(self._signature(result_id, expires), safe="")
        return (
            f"https://{result.host}/results/{result_id}.png?Expires={expires}"
            f"&OSSAccessKeyId=LTAI5tEmulatorKey&Signature={signature}"
        )

    def _result(self, result_id: str, query: dict[str, str]) -> EmResponse:
        self.counts["result_downloads"] += 1
        # As OSS does: the signature and its expiry first, then whether the object is there,
        # so an expired URL answers the same before and after the result is cleaned away.
        expires_raw, signature = query.get("Expires", ""), query.get("Signature", "")
        if not expires_raw.isdigit() or not signature:
            return _oss_error(403, "AccessDenied", "AccessDenied")
        if not hmac.compare_digest(signature, self._signature(result_id, int(expires_raw))):
            return _oss_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if self.clock.now() > int(expires_raw):
            return _oss_error(403, "AccessDenied", "Request has expired.")
        if result_id not in self.results:
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        return EmResponse(200, self._png(result_id), content_type="image/png")

    def _png(self, result_id: str) -> bytes:
        with self._render_lock:
            if result_id in self._rendered:
                self._rendered.move_to_end(result_id)
                return self._rendered[result_id]
        png = render_png(self.results[result_id].plan)
        with self._render_lock:
            self._rendered[result_id] = png
            while len(self._rendered) > RENDERED_KEPT:
                self._rendered.popitem(last=False)
        return png

    # -- control and log ------------------------------------------------------------------

    def _control(self, request: EmRequest) -> EmResponse:
        """Test and demo controls: counters, faults, clock. Not part of the real API."""
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "InvalidParameter", "The request body is not valid JSON.")
        action = request.path.removeprefix("/_emulator/")
        if action == "stats" and request.method == "GET":
            return _json(200, self.stats())
        if request.method != "POST":
            return _error(405, "MethodNotAllowed", "Use POST.")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            # A web page can send a form or text/plain POST to any address, the local
            # emulator's included, without asking first; a JSON one it cannot.
            return _error(415, "UnsupportedMediaType", "Send controls as application/json.")
        if action == "faults":
            try:
                rules = parse_faults(str(body.get("faults", "")))
            except ValueError as exc:
                return _error(400, "InvalidParameter", str(exc))
            with self._lock:
                self.config.faults = rules
            return _json(200, {"faults": [str(rule) for rule in rules]})
        if action == "seed-reading":
            try:
                readings = parse_readings(str(body.get("seed_reading", "")))
            except ValueError as exc:
                return _error(400, "InvalidParameter", str(exc))
            with self._lock:
                self.config.seed_reading = readings
            return _json(200, {"seed_reading": sorted(readings)})
        if action == "clock":
            self.clock.advance(float(body.get("advance", 0)))
            return _json(200, {"now": self.clock.now()})
        if action == "reset":
            self.reset()
            return _json(200, {"reset": True})
        return _error(404, "NotFound", f"No such control: {action}")

    def stats(self) -> dict[str, Any]:
        now = self.clock.now()
        with self._lock:
            by_status: dict[str, int] = defaultdict(int)
            for task in self.tasks.values():
                by_status[task.status(now, self.config.task_ttl_seconds)] += 1
            return {
                "now": now,
                "counts": dict(self.counts),
                "tasks": dict(by_status),
                "faults": [str(rule) for rule in self.config.faults],
                "seed_reading": sorted(self.config.seed_reading),
            }

    def _log(self, request: EmRequest, response: EmResponse | None, note: str | None) -> None:
        entry: dict[str, Any] = {
            "time": _wire_time(self.clock.now()),
            "method": request.method,
            "path": request.path,
            "query": {
                k: ("***" if k in ("Signature", "OSSAccessKeyId") else v)
                for k, v in request.query.items()
            },
            "auth": _auth_kind(
                request.headers.get("authorization", ""), self.config.api_key_prefix
            ),
            "headers": {
                k: v
                for k, v in request.headers.items()
                if k.startswith("x-dashscope") or k == "content-type"
            },
            "status": response.status if response else None,
        }
        if request.body and request.method == "POST" and not request.path.startswith("/_"):
            entry["body"] = summarize_body(request.body)
        if response is not None and response.content_type == "application/json":
            try:
                answer = json.loads(response.body)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and "code" in answer:
                entry["code"] = answer["code"]
        if note:
            entry["note"] = note
        with self._lock:
            self.requests.append(entry)
        if self.config.log_path:
            line = json.dumps(entry, ensure_ascii=False)
            with self._lock, open(self.config.log_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")


@dataclass(frozen=True)
class Upload:
    data: bytes
    model: str
    expires_at: float


def _form_fields(request: EmRequest) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = part.get_payload(decode=True) or b""
    return fields


def _auth_kind(header: str, prefix: str) -> str:
    if not header:
        return "missing"
    scheme, _, key = header.partition(" ")
    return "valid" if scheme.lower() == "bearer" and key.startswith(prefix) else "invalid"


def summarize_body(raw: bytes) -> Any:
    """The request body with every inline image replaced by its size and hash."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {"unparsed_bytes": len(raw)}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith("data:"):
            try:
                data = base64.b64decode(value.partition(",")[2], validate=True)
                info = read_image(data)
            except (ValueError, UnreadableImage):
                return {"inline_image": "unreadable", "chars": len(value)}
            return {
                "inline_image": info.format,
                "width": info.width,
                "height": info.height,
                "bytes": info.bytes,
                "sha256": info.sha256,
            }
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return url_for_log(value)
        return value

    return walk(body)


def _messages_output(spec: ModelRules, urls: list[str], *, finished: bool) -> dict[str, Any]:
    def choice(items: list[dict[str, str]]) -> dict[str, Any]:
        return {"finish_reason": "stop", "message": {"role": "assistant", "content": items}}

    if spec.result_shape is ResultShape.QWEN:
        return {"choices": [choice([{"image": url} for url in urls])]}
    typed = [{"image": url, "type": "image"} for url in urls]
    if spec.result_shape is ResultShape.ONE_CHOICE:
        choices = [choice(typed)]
    else:
        choices = [choice([item]) for item in typed]
    return {"choices": choices, "finished": finished}


def _usage(
    spec: ModelRules,
    request: Generation,
    size: tuple[int, int],
    count: int,
    endpoint: Endpoint,
) -> dict[str, Any]:
    width, height = size
    if endpoint.body_style is not BodyStyle.MESSAGES:
        return {"image_count": count}
    if spec.result_shape is ResultShape.QWEN:
        return {"height": height, "image_count": count, "width": width}
    if spec.result_shape is ResultShape.ONE_CHOICE:
        # Synthetic but plausible token counts: prompt text plus image patches.
        input_tokens = (
            len(request.prompt) // 3
            + 1
            + sum(image.facts.pixels // 1024 for image in request.images)
        )
        output_tokens = 2 * count
    else:
        input_tokens = output_tokens = 0  # wan2.6 reports zero tokens
    return {
        "image_count": count,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "size": f"{width}*{height}",
        "total_tokens": input_tokens + output_tokens,
    }


def _legacy_result(task: Task, url: str) -> dict[str, str]:
    item = {"orig_prompt": task.request.prompt, "url": url}
    extend = task.request.prompt_extend
    if task.spec.takes(Option.PROMPT_EXTEND) and (extend if extend is not None else True):
        item["actual_prompt"] = task.request.prompt
    return item


def _list_row(task: Task, status: str) -> dict[str, Any]:
    final = status in ("SUCCEEDED", "FAILED", "CANCELED")
    end = (task.canceled_at or task.end_at) if final else None
    return {
        "api_key_id": "emulator",
        "caller_parent_id": "emulator",
        "caller_uid": "emulator",
        "gmt_create": int(task.submitted_at * 1000),
        "start_time": int(task.start_at * 1000) if status not in ("PENDING", "CANCELED") else None,
        "end_time": int(end * 1000) if end else None,
        "model_name": task.model,
        "region": "emulator",
        "request_id": task.request_id,
        "status": status,
        "task_id": task.task_id,
        "user_api_unique_key": f"apikey:v1:aigc:{task.endpoint.value.split('/')[3]}:{task.model}",
    }


def _list_time(value: str | None, default: float, offset_minutes: int = 0) -> float:
    if not value:
        return default
    zone = timezone(timedelta(minutes=offset_minutes))
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=zone).timestamp()
    except ValueError:
        raise invalid("start_time and end_time must be written YYYYMMDDhhmmss.") from None
