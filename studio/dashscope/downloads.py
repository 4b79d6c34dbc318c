"""Result downloads: the bytes behind a result URL, fetched within a size cap and a deadline.

Downloads go through an HTTP client of their own, without the API key, and only to result
URLs the host rule allows (studio.dashscope.result_hosts), opened only to public
addresses (studio.dashscope.guard). A failed try is retried as the client's API calls are.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Sequence

import httpx

from studio.dashscope.calls import RetryPolicy, Timeouts, tls_context
from studio.dashscope.errors import DashScopeError
from studio.dashscope.guard import (
    CheckedTransport,
    EmulatorRoute,
    InternalAddress,
    PublicAddressTransport,
    Resolver,
)
from studio.dashscope.guard import resolve as resolve_host
from studio.dashscope.redaction import url_for_log
from studio.dashscope.result_hosts import host_rule, is_result_url

# Logged under the client's name, where these lines were always written: log filters and
# the log tests select on it.
logger = logging.getLogger("studio.dashscope.client")


class ResultDownloader:
    """Fetches result URLs for the client, through a transport that checks addresses."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None,
        resolve: Resolver | None,
        route: EmulatorRoute | None,
        result_hosts: Sequence[str],
        timeouts: Timeouts,
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: Callable[[], float],
        max_bytes: int,
    ) -> None:
        self.timeouts, self.retry, self.max_bytes = timeouts, retry, max_bytes
        self._sleep, self._clock, self._rng = sleep, clock, rng
        self._result_host = host_rule(result_hosts)
        self._http = httpx.Client(
            transport=download_transport(transport, resolve, route),
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def is_result_url(self, url: str) -> bool:
        return is_result_url(url, self._result_host)

    def download(self, url: str, *, within: float | None = None) -> bytes:
        """The bytes behind `url`, tried again after a retryable failure until the retry
        policy or `within` seconds run out."""
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
                self._pause(url, error, attempt, pause)

    def _pause(self, url: str, error: DashScopeError, attempt: int, pause: float) -> None:
        logger.info(
            "Download of %s failed with %s; try %d of %d in %.1fs",
            url_for_log(url),
            error.code,
            attempt + 1,
            self.retry.attempts,
            pause,
        )
        self._sleep(pause)

    def _download_once(self, url: str, give_up_at: float | None = None) -> bytes:
        deadline, left = self._time_left(give_up_at)
        # The deadline is checked as bytes arrive; a server that stops sending is cut off by
        # the read timeout, never longer than the whole download may take.
        timeout = self.timeouts.for_call(min(self.timeouts.read, left))
        try:
            with self._http.stream("GET", url, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise _refused_download(response, url)
                return self._read_capped(response, deadline)
        except InternalAddress:
            raise DashScopeError(
                status=None,
                code="ResultURLRefused",
                message=f"{url_for_log(url)} resolves to an internal address.",
                retryable=False,
            ) from None
        except httpx.TransportError as exc:
            raise _failed_download(exc, url) from None

    def _time_left(self, give_up_at: float | None) -> tuple[float, float]:
        """When this try must end, and the seconds left until then."""
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
        return deadline, left

    def _read_capped(self, response: httpx.Response, deadline: float) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise DashScopeError(
                    status=200,
                    code="ResultTooLarge",
                    message=f"The result is over {self.max_bytes} bytes.",
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


def download_transport(
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


def _refused_download(response: httpx.Response, url: str) -> DashScopeError:
    """The error for a bucket's answer other than 200, its body already read."""
    return DashScopeError(
        status=response.status_code,
        code=_oss_code(response.text) or "DownloadFailed",
        message=f"The result could not be downloaded from {url_for_log(url)}.",
        retryable=response.status_code >= 500,
    )


def _failed_download(exc: httpx.TransportError, url: str) -> DashScopeError:
    if _tls_failure(exc):
        # The bucket's certificate did not verify: an operator's to look into (a proxy in
        # the way, an old CA bundle); the URL stays valid meanwhile.
        return DashScopeError(
            status=None,
            code="ResultTLSFailed",
            message=f"The certificate of {url_for_log(url)} could not be verified.",
            retryable=True,
        )
    return DashScopeError(
        status=None,
        code="DownloadFailed",
        message=f"{type(exc).__name__} while downloading {url_for_log(url)}.",
        retryable=True,
    )


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _oss_code(text: str) -> str | None:
    match = re.search(r"<Code>([A-Za-z.]+)</Code>", text)
    return match[1] if match else None
