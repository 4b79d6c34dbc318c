"""The emulator as an httpx transport: in-process, no sockets, no real waiting."""

from __future__ import annotations

import httpx

from studio.dashscope.emulator.core import Emulator
from studio.dashscope.emulator.wire import EmRequest


class EmulatorTransport(httpx.BaseTransport):
    """Hands httpx requests to an Emulator.

    Injected faults behave as they would on a socket: a dropped connection raises
    RemoteProtocolError, and an answer slower than the request's read timeout raises
    ReadTimeout after moving the emulator's clock by that timeout.
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
        if response.delay:
            read_timeout = request.extensions.get("timeout", {}).get("read")
            if read_timeout is not None and response.delay > read_timeout:
                self.emulator.clock.sleep(read_timeout)
                raise httpx.ReadTimeout("The read operation timed out", request=request)
            self.emulator.clock.sleep(response.delay)
        return httpx.Response(
            response.status, headers=response.all_headers, content=response.body, request=request
        )
