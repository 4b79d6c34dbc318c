"""The emulator as a WSGI application, and a threaded HTTP server for it."""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

import trustme

from studio.dashscope.emulator.config import Clock
from studio.dashscope.emulator.core import Emulator
from studio.dashscope.emulator.wire import MAX_BODY_BYTES, EmRequest, EventStream, error_answer

# Where a client that lets the emulator stand in for the provider reads the authority that
# signs the emulator's certificate for the result hosts (not part of the real API).
CA_PATH = "/_emulator/ca.pem"

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


def make_wsgi_app(
    emulator: Emulator, ca_pem: bytes | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if ca_pem is not None and environ.get("PATH_INFO") == CA_PATH:
            start_response("200 OK", [("Content-Type", "application/x-pem-file")])
            return [ca_pem]
        if int(environ.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            response = error_answer(413, "BadRequest.TooLarge", "Payload Too Large.")
        else:
            response = emulator.handle(_request_from(environ))
        if response.action == "drop":
            raise DropConnection
        if response.delay:
            emulator.clock.sleep(response.delay)
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", response.all_headers)
        if response.stream is not None:
            return _Paced(response.stream, emulator.clock)
        return [response.body]

    return app


class _Paced:
    """A streamed answer as the server writes it: each part after its wait, flushed at
    once. The server closes it when the answer ends or the client goes away (found at the
    next write), which gives back what the stream holds."""

    def __init__(self, stream: EventStream, clock: Clock) -> None:
        self._stream, self._clock = stream, clock

    def __iter__(self) -> Iterator[bytes]:
        for wait, part in self._stream:
            self._clock.sleep(wait)
            yield part

    def close(self) -> None:
        self._stream.close()


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
            self.rfile,
            # wsgiref passes this socket writer too; the stubs ask for an IO[bytes].
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator writes its own JSON-lines log


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """Plain HTTP for the API, as a local base URL is written, and TLS on the same port
    for the result hosts: a connection that opens with a TLS handshake gets one."""

    daemon_threads = True
    allow_reuse_address = True
    # Every request is a new connection (HTTP/1.0), and a worker's poll round opens a
    # dozen at once: with socketserver's default backlog of 5 the kernel dropped the rest,
    # and each came back a second later, a stall the real service never shows.
    request_queue_size = 128
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None or not _opens_tls(request):
            super().finish_request(request, client_address)
            return
        try:
            secured = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the authority gives up in the handshake
        try:
            super().finish_request(secured, client_address)
        finally:
            secured.close()


def _opens_tls(request: socket.socket) -> bool:
    """Whether the client's first byte is a TLS handshake record (22)."""
    request.settimeout(10)
    try:
        first = request.recv(1, socket.MSG_PEEK)
    except OSError:
        return False
    finally:
        request.settimeout(None)
    return first == b"\x16"


def result_host_names(hosts: Iterable[str]) -> list[str]:
    """The names the emulator's certificate covers: each result host, and every host of
    its bucket's endpoint (`*.oss-accelerate.aliyuncs.com`), as OSS's own certificate does."""
    names: list[str] = []
    for host in hosts:
        endpoint = host.split(".", 1)[1] if "." in host else host
        for name in (f"*.{endpoint}", host):
            if "{" not in name and name not in names:
                names.append(name)
    return names


def result_certificate(hosts: Iterable[str]) -> tuple[ssl.SSLContext, bytes]:
    """A TLS context for the result hosts from a new authority made for this run, and that
    authority's certificate, which the studio trusts only when the emulator stands in for
    the provider."""
    authority = trustme.CA(organization_name="DashScope emulator")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*result_host_names(hosts)).configure_cert(context)
    return context, authority.cert_pem.bytes()


def serve(emulator: Emulator, host: str, port: int) -> ThreadingWSGIServer:
    """A started-but-not-serving server; call serve_forever() on it."""
    server = ThreadingWSGIServer((host, port), _RequestHandler)
    server.tls, ca_pem = result_certificate(emulator.config.result_hosts)
    server.set_app(make_wsgi_app(emulator, ca_pem))
    return server
