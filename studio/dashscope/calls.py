"""How one API call to the provider is sent: timeouts, retries, and reading refusals.

Calls that read (task fetch, list) and cancel are retried with backoff and jitter on
throttling, server errors and network failures. Calls that create work (sync generation,
task submit) are retried only when the provider answered that it did not do it (429,
500-503); when no answer came back after sending, SubmitUncertain is raised instead.
Result downloads share the timeouts, the retry policy and the TLS context defined here.
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import certifi
import httpx

from studio.dashscope.errors import DashScopeError, SubmitUncertain

# Logged under the client's name, where these lines were always written: log filters and
# the log tests select on it.
logger = logging.getLogger("studio.dashscope.client")

# Transport errors raised before a byte of the request left: safe to send again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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


def retry_after(response: httpx.Response) -> float | None:
    """The pause an answer asks for, in seconds: Retry-After-Ms, or Retry-After as
    seconds or as an HTTP date."""
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


def error_from(response: httpx.Response) -> DashScopeError:
    """The error a refusal (any answer that is not a 2xx) stands for."""
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
        retry_after=retry_after(response),
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle takes tens of
    milliseconds, and the worker makes new clients for every dispatcher slice."""
    return ssl.create_default_context(cafile=certifi.where())


class ApiCaller:
    """Sends the client's API calls over its keyed HTTP client, pausing between tries."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        timeouts: Timeouts,
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        rng: Callable[[], float],
    ) -> None:
        self._http = http
        self.timeouts, self.retry = timeouts, retry
        self._sleep, self._rng = sleep, rng

    @property
    def http(self) -> httpx.Client:
        """The keyed HTTP client, for calls that are not one JSON answer (streams)."""
        return self._http

    def close(self) -> None:
        self._http.close()

    def send(
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
        """The JSON object the provider answers, after as many tries as the call allows."""
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
                logger.debug("DashScope %s %s -> %s", method, path, response.status_code)
                if response.is_success:
                    return self._json(response, path, creates_work=creates_work)
                error = _refusal(response, creates_work=creates_work)
            if not error.retryable or attempt >= attempts:
                raise error
            self._pause(method, path, error, attempt=attempt, attempts=attempts)

    def _pause(
        self, method: str, path: str, error: DashScopeError, *, attempt: int, attempts: int
    ) -> None:
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
        if creates_work and not isinstance(exc, NOT_SENT):
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


def _refusal(response: httpx.Response, *, creates_work: bool) -> DashScopeError:
    error = error_from(response)
    if creates_work and response.status_code == 504:
        # A gateway timeout says nothing about whether the work started.
        raise SubmitUncertain(
            status=504,
            code=error.code,
            message=error.message,
            request_id=error.request_id,
            retryable=False,
        )
    return error
