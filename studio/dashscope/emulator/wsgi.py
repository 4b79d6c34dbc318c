"""The emulator as a WSGI application, and a threaded HTTP server for it."""

from __future__ import annotations

import socketserver
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from studio.dashscope.emulator.core import MAX_BODY_BYTES, EmRequest, Emulator, _error

StartResponse = Callable[..., Any]


class DropConnection(Exception):
    """Raised by the app to close the connection without an answer."""


def _request_from(environ: dict[str, Any]) -> EmRequest:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if 0 < length <= MAX_BODY_BYTES else b""
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return EmRequest(
        method=environ["REQUEST_METHOD"],
        path=environ.get("PATH_INFO") or "/",
        query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
        headers=headers,
        body=body,
        origin=f"{environ['wsgi.url_scheme']}://{host}",
    )


def make_wsgi_app(emulator: Emulator) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if int(environ.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            response = _error(413, "BadRequest.TooLarge", "Payload Too Large.")
        else:
            response = emulator.handle(_request_from(environ))
        if response.action == "drop":
            raise DropConnection
        if response.delay:
            emulator.clock.sleep(response.delay)
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", response.all_headers)
        return [response.body]

    return app


class _Handler(ServerHandler):
    def handle_error(self) -> None:
        # A dropped connection is a fault we were asked to inject: answer nothing at all.
        if isinstance(sys.exc_info()[1], DropConnection):
            return
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    def handle(self) -> None:
        # wsgiref's own handle(), with a ServerHandler that can drop the connection.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _Handler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator writes its own JSON-lines log


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # Every request is a new connection (HTTP/1.0), and a worker's poll round opens a
    # dozen at once: with socketserver's default backlog of 5 the kernel dropped the rest,
    # and each came back a second later, a stall the real service never shows.
    request_queue_size = 128


def serve(emulator: Emulator, host: str, port: int) -> ThreadingWSGIServer:
    """A started-but-not-serving server; call serve_forever() on it."""
    server = ThreadingWSGIServer((host, port), _RequestHandler)
    server.set_app(make_wsgi_app(emulator))
    return server
