"""The emulator as an httpx transport: in-process, no sockets, no real waiting."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from studio.dashscope.emulator.config import Clock
from studio.dashscope.emulator.core import Emulator
from studio.dashscope.emulator.wire import EmRequest, EventStream


class EmulatorTransport(httpx.BaseTransport):
    """Hands httpx requests to an Emulator.

    Injected faults behave as they would on a socket: a dropped connection raises
    RemoteProtocolError, and an answer slower than the request's read timeout raises
    ReadTimeout after moving the emulator's clock by that timeout. A streamed answer comes
    event by event as the client reads it, each wait slept on the emulator's clock, and a
    wait longer than the read timeout raises ReadTimeout as a silent socket would.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = f":{url.port}" if url.port else ""
        em_request = EmRequest(
            method=request.method,
            path=url.path,
            query=dict(url.params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.read(),
            origin=f"{url.scheme}://{url.host}{port}",
        )
        response = self.emulator.handle(em_request)
        if response.action == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        read_timeout = request.extensions.get("timeout", {}).get("read")
        if response.delay:
            if read_timeout is not None and response.delay > read_timeout:
                response.close()
                self.emulator.clock.sleep(read_timeout)
                raise httpx.ReadTimeout("The read operation timed out", request=request)
            self.emulator.clock.sleep(response.delay)
        if response.stream is not None:
            paced = _Paced(response.stream, self.emulator.clock, read_timeout, request)
            return httpx.Response(
                response.status, headers=response.all_headers, stream=paced, request=request
            )
        return httpx.Response(
            response.status, headers=response.all_headers, content=response.body, request=request
        )


class _Paced(httpx.SyncByteStream):
    """A streamed answer as httpx reads it: each part after its wait, or a ReadTimeout."""

    def __init__(
        self, stream: EventStream, clock: Clock, read_timeout: float | None, request: httpx.Request
    ) -> None:
        self._stream, self._clock = stream, clock
        self._read_timeout, self._request = read_timeout, request

    def __iter__(self) -> Iterator[bytes]:
        for wait, part in self._stream:
            if self._read_timeout is not None and wait > self._read_timeout:
                self._clock.sleep(self._read_timeout)
                raise httpx.ReadTimeout("The read operation timed out", request=self._request)
            self._clock.sleep(wait)
            if part:
                yield part

    def close(self) -> None:
        self._stream.close()
