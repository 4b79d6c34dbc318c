"""An offline DashScope: the same paths, bodies, task states, errors and limits.

`Emulator.handle()` takes a plain request and returns a plain answer; `wsgi.py` serves it
over HTTP and `transport.py` plugs it into httpx in-process. Everything time-dependent
reads the injected clock, so tests move time instead of sleeping.

This module is the small core every endpoint family shares: the emulator's state, the
routing of a path to its family (`generation.py`, `tasks.py`, `uploads.py`, `results.py`,
`control.py`), injected faults, the API key check and the rate limits, and the request
log (`request_log.py`).
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from studio.dashscope.emulator import control, results, tasks, uploads
from studio.dashscope.emulator.config import FAULT_ERRORS, Clock, EmulatorConfig, FaultRule
from studio.dashscope.emulator.generation import generation
from studio.dashscope.emulator.limits import Endpoint
from studio.dashscope.emulator.parse import WireError
from studio.dashscope.emulator.request_log import log
from studio.dashscope.emulator.wire import (
    API,
    MAX_BODY_BYTES,
    EmRequest,
    EmResponse,
    error_answer,
)

__all__ = ["MAX_BODY_BYTES", "EmRequest", "EmResponse", "Emulator"]

_TASK_PATH = re.compile(rf"^{API}/tasks/([^/]+)$")
_CANCEL_PATH = re.compile(rf"^{API}/tasks/([^/]+)/cancel$")
_UPLOADS_PATH = f"{API}/uploads"
_ENDPOINTS = {f"{API}{endpoint.value}": endpoint for endpoint in Endpoint}

Route = tuple[str | None, Callable[[], EmResponse]]  # the fault scope, and the answer


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
            self.tasks: dict[str, tasks.Task] = {}
            self.results: dict[str, results.Result] = {}
            self._submits: dict[str, deque[float]] = defaultdict(deque)
            self._queries: deque[float] = deque()
            # When each sync call in progress will end, per model: they hold running slots
            # that the task scheduler must see.
            self._sync_calls: dict[str, list[float]] = defaultdict(list)
            # Temporary uploads by key (without oss://): their bytes, the model they are
            # for, and when they stop being usable.
            self.uploads: dict[str, uploads.Upload] = {}
            self.counts: dict[str, int] = defaultdict(int)
            self.requests: deque[dict[str, object]] = deque(maxlen=2000)
            self.submitted_models: list[str] = []

    def stats(self) -> dict[str, object]:
        return control.stats(self)

    def _purge(self, now: float) -> None:
        """Forget tasks and results past their lifetimes, as the provider does."""
        self.results = {
            rid: r for rid, r in self.results.items() if results.result_expiry(self, r) > now
        }
        self.tasks = {
            tid: t
            for tid, t in self.tasks.items()
            if now < t.submitted_at + self.config.task_ttl_seconds
        }
        self.uploads = {key: u for key, u in self.uploads.items() if u.expires_at > now}

    # -- entry point ----------------------------------------------------------------------

    def handle(self, request: EmRequest) -> EmResponse:
        if request.path.startswith(control.CONTROL_PREFIX):
            return control.control(self, request)
        scope, route = self._route(request)
        fault = self._take_fault(scope) if scope else None
        if fault is not None and fault.kind == "drop":
            log(self, request, None, "dropped before processing")
            return EmResponse(0, b"", action="drop")
        if fault is not None and fault.kind in FAULT_ERRORS:
            # An error answer means the request took no effect, as with the real service.
            status, code, message = FAULT_ERRORS[fault.kind]
            response = error_answer(status, code, message, self._retry_after_header(status))
            log(self, request, response, f"injected {fault.kind}")
            return response
        response = route()
        if fault is not None and fault.kind == "drop-after":
            log(self, request, response, "dropped after processing")
            response.close()
            return EmResponse(0, b"", action="drop")
        if fault is not None and fault.kind.startswith("slow="):
            response.delay = float(fault.kind.removeprefix("slow="))
        log(self, request, response, None)
        return response

    def _route(self, request: EmRequest) -> Route:
        path, method = request.path, request.method
        endpoint = _ENDPOINTS.get(path)
        if endpoint is not None:
            if method != "POST":
                return None, lambda: error_answer(405, "MethodNotAllowed", "Use POST.")
            scope = "submit" if endpoint.is_async else "generate"
            return scope, lambda: self._api(request, lambda: generation(self, request, endpoint))
        if match := _CANCEL_PATH.match(path):
            if method != "POST":
                return None, lambda: error_answer(405, "MethodNotAllowed", "Use POST.")
            task_id = match[1]
            return "cancel", self._query(request, lambda: tasks.cancel(self, task_id))
        if path in (f"{API}/tasks", f"{API}/tasks/"):
            return "list", self._query(request, lambda: tasks.list_tasks(self, request.query))
        if match := _TASK_PATH.match(path):
            task_id = match[1]
            return "fetch", self._query(request, lambda: tasks.fetch(self, task_id))
        return self._route_files(request)

    def _route_files(self, request: EmRequest) -> Route:
        """Results on the result hosts, and temporary uploads."""
        path, method = request.path, request.method
        if match := results.RESULT_PATH.match(path):
            result_id = match[1]
            return "result", lambda: results.download(self, result_id, request.query)
        if path == _UPLOADS_PATH and method == "GET":
            return None, lambda: self._api(request, lambda: uploads.upload_policy(self, request))
        if path == uploads.OSS_UPLOAD_PATH and method == "POST":
            return None, lambda: uploads.oss_upload(self, request)
        return None, lambda: error_answer(404, "NotFound", f"No such path: {path}")

    def _query(
        self, request: EmRequest, action: Callable[[], EmResponse]
    ) -> Callable[[], EmResponse]:
        """A task query's answer: counted against the account's query rate."""
        return lambda: self._api(request, action, query=True)

    # -- faults, the API key, and rates ---------------------------------------------------

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
            return error_answer(401, "InvalidApiKey", "No API-key provided.")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key.strip().startswith(self.config.api_key_prefix):
            return error_answer(401, "InvalidApiKey", "Invalid API-key provided.")
        if query and not self._allow_query():
            self.counts["throttled.queries"] += 1
            return error_answer(
                429,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
                self._retry_after_header(429),
            )
        try:
            return action()
        except WireError as exc:
            return error_answer(exc.status, exc.code, exc.message)

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
