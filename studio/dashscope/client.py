"""The studio's DashScope client: the only code that talks to the provider.

Every call has a timeout. Calls that read (task fetch, list) and cancel are retried with
backoff and jitter on throttling, server errors and network failures. Calls that create
work (sync generation, task submit) are retried only when the provider answered that it
did not do it (429, 500-503); when no answer came back after sending, the provider may
have made the images and billed them, so SubmitUncertain is raised instead of sending
twice.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from studio.dashscope.catalog import get_model
from studio.dashscope.errors import DashScopeError, RequestRefused, SubmitUncertain
from studio.dashscope.guard import (
    CheckedTransport,
    EmulatorRoute,
    InternalAddress,
    PublicAddressTransport,
    Resolver,
)
from studio.dashscope.guard import resolve as resolve_host
from studio.dashscope.redaction import url_for_log
from studio.dashscope.types import (
    GenerationRequest,
    SubmittedTask,
    TaskPage,
    TaskResult,
)
from studio.dashscope.validation import check_request
from studio.dashscope.wire import build_body, parse_result, parse_submitted, parse_task_page

logger = logging.getLogger(__name__)

# Result URLs the provider hands out live on its OSS buckets; nothing else is fetched. The
# seeds write them `dashscope-result-<region>.oss-<region>.aliyuncs.com` (S0:190, S0:360)
# and `dashscope-xxx.oss-xxx.aliyuncs.com` (S2:287); real wan answers also come from
# `dashscope-<id>.oss-accelerate.aliyuncs.com`. A `*` stands for one part of one label.
DEFAULT_RESULT_HOSTS = ("dashscope-*.oss-*.aliyuncs.com",)
_HOST_PATTERN = re.compile(r"^(?:[a-z0-9*](?:[a-z0-9*-]*[a-z0-9*])?\.)+[a-z0-9-]+\.[a-z]{2,}$")


def host_rule(patterns: Sequence[str]) -> re.Pattern[str]:
    """One expression for host patterns such as `dashscope-*.oss-*.aliyuncs.com`: each `*`
    matches letters, digits and hyphens within a single label, never a dot."""
    parts = []
    for pattern in patterns:
        pattern = pattern.strip().lower()
        labels = pattern.split(".")
        # A wildcard in the domain itself, or in front of it with nothing fixed beside it
        # (`*.aliyuncs.com`), would let in any customer's bucket on the same cloud.
        wide = any("*" in label for label in labels[-2:]) or all(
            label == "*" for label in labels[:-2]
        )
        if not _HOST_PATTERN.match(pattern) or wide:
            raise ValueError(
                f"{pattern!r} is not a result host pattern: write a host name such as "
                "dashscope-*.oss-*.aliyuncs.com, with * only inside the labels before "
                "the last two, and some fixed text in front of the domain."
            )
        parts.append(
            ".".join(re.escape(label).replace(r"\*", "[a-z0-9-]+") for label in pattern.split("."))
        )
    return re.compile(rf"^(?:{'|'.join(parts)})$")


# Transport errors raised before a byte of the request left: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0  # submit, fetch, cancel, list
    generate: float = 180.0  # a sync generation answers only when the images are made
    download: float = 60.0  # the whole download, not just one read

    def for_call(self, read: float) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=read, write=self.read, pool=self.connect)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, the first included
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + rng() * ceiling / 2  # "equal jitter": grows, never zero


def _retry_after(response: httpx.Response) -> float | None:
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_from(response: httpx.Response) -> DashScopeError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or "Unknown")
        message = str(body.get("message") or body.get("msg") or "")
        request_id = body.get("request_id")
    else:
        code, message, request_id = "Unknown", response.text[:200], None
    request_id = request_id or response.headers.get("x-request-id")
    return DashScopeError(
        status=response.status_code,
        code=code,
        message=message,
        request_id=request_id,
        retry_after=_retry_after(response),
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle takes tens of
    milliseconds, and the worker makes new clients for every dispatcher slice."""
    return ssl.create_default_context(cafile=certifi.where())


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
        self._sleep, self._clock, self._rng = sleep, clock, rng
        self.max_download_bytes = max_download_bytes
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if workspace:
            headers["X-DashScope-WorkSpace"] = workspace
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            verify=tls_context(),
            headers=headers,
            timeout=self.timeouts.for_call(self.timeouts.read),
            follow_redirects=False,  # a redirect is never part of the protocol
            trust_env=False,  # no proxy from the environment sees the key
        )
        self._result_host = host_rule(result_hosts)
        self._downloads = httpx.Client(
            transport=_download_transport(transport, resolve, route),
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()
        self._downloads.close()

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
        body = self._send(
            "POST",
            endpoint,
            json=build_body(request, endpoint),
            creates_work=True,
            read_timeout=self.timeouts.generate,
            attempts=1 if once else None,
        )
        return parse_result(body, synchronous=True)

    def submit(self, request: GenerationRequest) -> SubmittedTask:
        """Start a background task; follow it with fetch()."""
        endpoint = self._endpoint(request, asynchronous=True)
        body = self._send(
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

    def _endpoint(self, request: GenerationRequest, *, asynchronous: bool) -> str:
        problems = check_request(request, asynchronous=asynchronous)
        if problems:
            raise RequestRefused(problems)
        endpoint = get_model(request.model).endpoint(asynchronous=asynchronous)
        assert endpoint is not None  # check_request refuses models without this endpoint
        return endpoint

    # -- tasks ----------------------------------------------------------------------------

    def fetch(self, task_id: str) -> TaskResult:
        body = self._send("GET", f"/tasks/{_task_path(task_id)}")
        return parse_result(body, synchronous=False)

    def cancel(self, task_id: str) -> None:
        """Cancel a task that is still PENDING; the provider refuses any other state."""
        self._send("POST", f"/tasks/{_task_path(task_id)}/cancel")

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
        return parse_task_page(self._send("GET", "/tasks", params=params))

    # -- results --------------------------------------------------------------------------

    def download(self, url: str, *, within: float | None = None) -> bytes:
        """The bytes behind a result URL, within a size cap and an overall deadline.

        With `within`, no retry starts after that many seconds, and a try is cut off then
        as its bytes arrive, or by a read timeout no longer than the time it had left: the
        caller's time is up, and it tries again later (the error is retryable).
        """
        if not self.is_result_url(url):
            raise DashScopeError(
                status=None,
                code="ResultURLRefused",
                message=f"Not a provider result URL: {url_for_log(url)}",
                retryable=False,
            )
        give_up_at = None if within is None else self._clock() + within
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._download_once(url, give_up_at)
            except DashScopeError as error:
                if not error.retryable or attempt >= self.retry.attempts:
                    raise
                pause = self.retry.delay(attempt, error.retry_after, self._rng)
                if give_up_at is not None and self._clock() + pause >= give_up_at:
                    raise
                logger.info(
                    "Download of %s failed with %s; try %d of %d in %.1fs",
                    url_for_log(url),
                    error.code,
                    attempt + 1,
                    self.retry.attempts,
                    pause,
                )
                self._sleep(pause)

    def is_result_url(self, url: str) -> bool:
        """Whether `url` is on one of the provider's result buckets, read the way the
        download will read it: https, the default port, no user part, an allowed host."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return False
        if parsed.scheme != "https" or parsed.userinfo or parsed.port not in (None, 443):
            return False
        # Both parsers must see the same host: a URL read two ways is not the provider's.
        if (urlsplit(url).hostname or "") != parsed.host:
            return False
        return bool(self._result_host.match(parsed.host))

    def _download_once(self, url: str, give_up_at: float | None = None) -> bytes:
        deadline = self._clock() + self.timeouts.download
        if give_up_at is not None:
            deadline = min(deadline, give_up_at)
        left = deadline - self._clock()
        if left <= 0:
            raise DashScopeError(
                status=None,
                code="DownloadTimeout",
                message="No time was left to download the result.",
                retryable=True,
            )
        # The deadline is checked as bytes arrive; a server that stops sending is cut off by
        # the read timeout, never longer than the whole download may take.
        timeout = self.timeouts.for_call(min(self.timeouts.read, left))
        try:
            with self._downloads.stream("GET", url, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise DashScopeError(
                        status=response.status_code,
                        code=_oss_code(response.text) or "DownloadFailed",
                        message=f"The result could not be downloaded from {url_for_log(url)}.",
                        retryable=response.status_code >= 500,
                    )
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_download_bytes:
                        raise DashScopeError(
                            status=200,
                            code="ResultTooLarge",
                            message=f"The result is over {self.max_download_bytes} bytes.",
                            retryable=False,
                        )
                    if self._clock() > deadline:
                        raise DashScopeError(
                            status=200,
                            code="DownloadTimeout",
                            message="The result took too long to download.",
                            retryable=True,
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except InternalAddress:
            raise DashScopeError(
                status=None,
                code="ResultURLRefused",
                message=f"{url_for_log(url)} resolves to an internal address.",
                retryable=False,
            ) from None
        except httpx.TransportError as exc:
            if _tls_failure(exc):
                # The bucket's certificate did not verify: an operator's to look into (a
                # proxy in the way, an old CA bundle); the URL stays valid meanwhile.
                raise DashScopeError(
                    status=None,
                    code="ResultTLSFailed",
                    message=f"The certificate of {url_for_log(url)} could not be verified.",
                    retryable=True,
                ) from None
            raise DashScopeError(
                status=None,
                code="DownloadFailed",
                message=f"{type(exc).__name__} while downloading {url_for_log(url)}.",
                retryable=True,
            ) from None

    # -- transport ------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str | int] | None = None,
        creates_work: bool = False,
        read_timeout: float | None = None,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        timeout = self.timeouts.for_call(read_timeout or self.timeouts.read)
        attempts = attempts or self.retry.attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(
                    method, path, json=json, headers=headers, params=params, timeout=timeout
                )
            except httpx.TransportError as exc:
                error = self._transport_error(exc, path, creates_work=creates_work)
            else:
                logger.debug(
                    "DashScope %s %s -> %s",
                    method,
                    path,
                    response.status_code,
                )
                if response.is_success:
                    return self._json(response, path, creates_work=creates_work)
                error = _error_from(response)
                if creates_work and response.status_code == 504:
                    # A gateway timeout says nothing about whether the work started.
                    raise SubmitUncertain(
                        status=504,
                        code=error.code,
                        message=error.message,
                        request_id=error.request_id,
                        retryable=False,
                    )
            if not error.retryable or attempt >= attempts:
                raise error
            delay = self.retry.delay(attempt, error.retry_after, self._rng)
            logger.info(
                "DashScope %s %s failed with %s; try %d of %d in %.1fs",
                method,
                path,
                error.code,
                attempt + 1,
                attempts,
                delay,
            )
            self._sleep(delay)

    def _transport_error(
        self, exc: httpx.TransportError, path: str, *, creates_work: bool
    ) -> DashScopeError:
        name = type(exc).__name__
        if creates_work and not isinstance(exc, _NOT_SENT):
            raise SubmitUncertain(
                status=None,
                code="NoResponse",
                message=f"{name} after sending to {path}; the provider may have started it.",
                retryable=False,
            ) from None
        return DashScopeError(
            status=None, code=name, message=f"{name} calling {path}.", retryable=True
        )

    def _json(self, response: httpx.Response, path: str, *, creates_work: bool) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        error_type = SubmitUncertain if creates_work else DashScopeError
        raise error_type(
            status=response.status_code,
            code="BadResponse",
            message=f"{path} answered {response.status_code} without a JSON object.",
            retryable=not creates_work,
        )


def _download_transport(
    transport: httpx.BaseTransport | None, resolve: Resolver | None, route: EmulatorRoute | None
) -> httpx.BaseTransport:
    """Downloads go through a transport of their own: the API key stays with the API calls,
    and a connection is opened only to the public addresses a result host resolves to,
    checked as the socket is opened. With the emulator's route, result hosts lead to the
    emulator over TLS from its own authority; an injected transport (the in-process
    emulator) opens no connection, and the address check runs before it with `resolve`."""
    if transport is not None:
        if resolve is None and route is None:
            return transport
        return CheckedTransport(transport, resolver=resolve or route.resolve)  # type: ignore[union-attr]
    if route is not None:
        return PublicAddressTransport(
            verify=route.tls_context(), resolver=resolve or route.resolve, dial=route.dial
        )
    return PublicAddressTransport(verify=tls_context(), resolver=resolve or resolve_host)


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _task_path(task_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", task_id):
        raise ValueError("Not a task id.")
    return task_id


def _oss_code(text: str) -> str | None:
    match = re.search(r"<Code>([A-Za-z.]+)</Code>", text)
    return match[1] if match else None
