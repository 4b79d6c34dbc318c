"""The studio's DashScope client: the only code that talks to the provider.

Every call has a timeout. Calls that read (task fetch, list) and cancel are retried with
backoff and jitter on throttling, server errors and network failures. Calls that create
work (sync generation, task submit) are retried only when the provider answered that it
did not do it (429, 500-503); when no answer came back after sending, the provider may
have made the images and billed them, so SubmitUncertain is raised instead of sending
twice.

This module holds what is asked of the provider; how a call is sent and retried lives in
studio.dashscope.calls, how results are fetched in studio.dashscope.downloads, and which
hosts results may come from in studio.dashscope.result_hosts. The names other code
imports from here stay importable from here.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import httpx

from studio.dashscope.calls import ApiCaller, RetryPolicy, Timeouts, tls_context
from studio.dashscope.catalog import Endpoint, get_model
from studio.dashscope.downloads import ResultDownloader
from studio.dashscope.errors import RequestRefused, SubmitUncertain
from studio.dashscope.guard import EmulatorRoute, Resolver
from studio.dashscope.result_hosts import DEFAULT_RESULT_HOSTS, host_rule
from studio.dashscope.streams import StreamEvent, StreamLimits, stream_events
from studio.dashscope.types import (
    GenerationRequest,
    SubmittedTask,
    TaskPage,
    TaskResult,
)
from studio.dashscope.validation import check_request
from studio.dashscope.wire import build_body, parse_result, parse_submitted, parse_task_page

__all__ = [
    "DEFAULT_RESULT_HOSTS",
    "DashScopeClient",
    "RetryPolicy",
    "Timeouts",
    "host_rule",
    "tls_context",
]


class DashScopeClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        workspace: str | None = None,
        max_download_bytes: int = 128 * 1024 * 1024,
        resolve: Resolver | None = None,
        result_hosts: Sequence[str] = DEFAULT_RESULT_HOSTS,
        route: EmulatorRoute | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("A DashScope API key is required.")
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.max_download_bytes = max_download_bytes
        self._clock = clock
        self._api = ApiCaller(
            self._api_http(api_key, workspace, transport),
            timeouts=self.timeouts,
            retry=self.retry,
            sleep=sleep,
            rng=rng,
        )
        self._results = ResultDownloader(
            transport=transport,
            resolve=resolve,
            route=route,
            result_hosts=result_hosts,
            timeouts=self.timeouts,
            retry=self.retry,
            sleep=sleep,
            clock=clock,
            rng=rng,
            max_bytes=max_download_bytes,
        )

    def _api_http(
        self, api_key: str, workspace: str | None, transport: httpx.BaseTransport | None
    ) -> httpx.Client:
        """The HTTP client of the API calls: the only one that carries the key."""
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if workspace:
            headers["X-DashScope-WorkSpace"] = workspace
        return httpx.Client(
            base_url=self.base_url,
            transport=transport,
            verify=tls_context(),
            headers=headers,
            timeout=self.timeouts.for_call(self.timeouts.read),
            follow_redirects=False,  # a redirect is never part of the protocol
            trust_env=False,  # no proxy from the environment sees the key
        )

    def close(self) -> None:
        self._api.close()
        self._results.close()

    def __enter__(self) -> DashScopeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generation -----------------------------------------------------------------------

    def generate(self, request: GenerationRequest, *, once: bool = False) -> TaskResult:
        """Generate synchronously: the answer holds the images' URLs.

        With `once`, a refusal (429, 500-503) is raised instead of sent again after a
        pause: each try may take minutes, and the caller has its own queue to wait in.
        """
        endpoint = self._endpoint(request, asynchronous=False)
        body = self._api.send(
            "POST",
            endpoint,
            json=build_body(request, endpoint),
            creates_work=True,
            read_timeout=self.timeouts.generate,
            attempts=1 if once else None,
        )
        return parse_result(body, synchronous=True)

    def stream(
        self, request: GenerationRequest, *, limits: StreamLimits | None = None
    ) -> Iterator[StreamEvent]:
        """Mixed text and images as the model makes them (wan2.6-image's
        `enable_interleave`, which comes only as a stream): TextPart and ImagePart events
        in order, ending with StreamFinished or StreamFailed.

        The request is checked now, and refused with RequestRefused before anything is
        sent; it is sent when the events are first read, once, never again. A stream that
        stalls, runs past its deadline or is cut raises a StreamError.
        """
        request = replace(request, enable_interleave=True)
        problems = check_request(request, asynchronous=False, streaming=True)
        if problems:
            raise RequestRefused(problems)
        endpoint = get_model(request.model).endpoint(asynchronous=False)
        assert endpoint is not None  # check_request refuses models without this endpoint
        limits = limits or StreamLimits(connect=self.timeouts.connect)
        return stream_events(
            self._api.http, endpoint, build_body(request, endpoint), limits, self._clock
        )

    def submit(self, request: GenerationRequest) -> SubmittedTask:
        """Start a background task; follow it with fetch()."""
        endpoint = self._endpoint(request, asynchronous=True)
        body = self._api.send(
            "POST",
            endpoint,
            json=build_body(request, endpoint),
            headers={"X-DashScope-Async": "enable"},
            creates_work=True,
        )
        submitted = parse_submitted(body)
        if submitted is None:
            raise SubmitUncertain(
                status=200,
                code="NoTaskId",
                message="The provider accepted the request but returned no task id.",
                request_id=body.get("request_id"),
                retryable=False,
            )
        return submitted

    def _endpoint(self, request: GenerationRequest, *, asynchronous: bool) -> Endpoint:
        problems = check_request(request, asynchronous=asynchronous)
        if problems:
            raise RequestRefused(problems)
        endpoint = get_model(request.model).endpoint(asynchronous=asynchronous)
        assert endpoint is not None  # check_request refuses models without this endpoint
        return endpoint

    # -- tasks ----------------------------------------------------------------------------

    def fetch(self, task_id: str) -> TaskResult:
        body = self._api.send("GET", f"/tasks/{_task_path(task_id)}")
        return parse_result(body, synchronous=False)

    def cancel(self, task_id: str) -> None:
        """Cancel a task that is still PENDING; the provider refuses any other state."""
        self._api.send("POST", f"/tasks/{_task_path(task_id)}/cancel")

    def list_tasks(
        self,
        *,
        start_time: str | None = None,
        end_time: str | None = None,
        model: str | None = None,
        status: str | None = None,
        task_id: str | None = None,
        page_no: int = 1,
        page_size: int = 10,
    ) -> TaskPage:
        """Tasks of the last 24 hours (times as YYYYMMDDhhmmss, at most 24 hours apart)."""
        params: dict[str, str | int] = {"page_no": page_no, "page_size": page_size}
        for key, value in (
            ("start_time", start_time),
            ("end_time", end_time),
            ("model_name", model),
            ("status", status),
            ("task_id", task_id),
        ):
            if value:
                params[key] = value
        return parse_task_page(self._api.send("GET", "/tasks", params=params))

    # -- results --------------------------------------------------------------------------

    def download(self, url: str, *, within: float | None = None) -> bytes:
        """The bytes behind a result URL, within a size cap and an overall deadline.

        With `within`, no retry starts after that many seconds, and a try is cut off then
        as its bytes arrive, or by a read timeout no longer than the time it had left: the
        caller's time is up, and it tries again later (the error is retryable).
        """
        return self._results.download(url, within=within)

    def is_result_url(self, url: str) -> bool:
        """Whether `url` is on one of the provider's result buckets, read the way the
        download will read it: https, the default port, no user part, an allowed host."""
        return self._results.is_result_url(url)


def _task_path(task_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", task_id):
        raise ValueError("Not a task id.")
    return task_id
