"""Local servers that misbehave the ways a result download must survive, and a record of
every TCP connection the client really opens.

Nothing here leaves the machine: a connection to any address but the loopback is either
put through to a local server standing in for it, or refused.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme
from PIL import Image

from studio.dashscope.guard import EmulatorRoute


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (width, height), (20, 160, 90)).save(output, format="PNG")
    return output.getvalue()


RESULT_HOST = "dashscope-result-bj.oss-cn-beijing.aliyuncs.com"


class ResultServer:
    """A result bucket on 127.0.0.1: TLS with a certificate for `*.oss-cn-beijing.aliyuncs.com`
    from an authority made for the test, reached through `route` as the emulator's result
    hosts are. It serves `/results/<behaviour>.png`:

    ok        a small PNG
    endless   a body that never ends, 64 KiB at a time
    trickle   one byte every 50 ms, forever
    silent    the headers, then nothing
    redirect  302 to the cloud metadata address
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                behaviour = self.path.split("?")[0].rsplit("/", 1)[-1].removesuffix(".png")
                # The client hanging up is what it should do.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    getattr(server, f"_{behaviour}")(self)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        authority = trustme.CA()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert(f"*.{RESULT_HOST.split('.', 1)[1]}").configure_cert(tls)
        self._http.socket = tls.wrap_socket(self._http.socket, server_side=True)
        self.port = self._http.server_address[1]
        self.origin = f"https://127.0.0.1:{self.port}"
        self.route = EmulatorRoute(
            host="127.0.0.1", port=self.port, ca_pem=authority.cert_pem.bytes()
        )
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def url(self, behaviour: str) -> str:
        return f"https://{RESULT_HOST}/results/{behaviour}.png?Expires=1&Signature=c2lnbmVk"

    def close(self) -> None:
        self.stopping.set()
        self._http.shutdown()
        self._http.server_close()

    def _headers(self, handler: BaseHTTPRequestHandler, status: int = 200, **extra: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "image/png")
        for name, value in extra.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()

    def _ok(self, handler: BaseHTTPRequestHandler) -> None:
        body = png_bytes()
        self._headers(handler, Content_Length=str(len(body)))
        handler.wfile.write(body)

    def _endless(self, handler: BaseHTTPRequestHandler) -> None:
        self._headers(handler)
        chunk = b"\x89PNG" + b"\0" * (64 * 1024 - 4)
        while not self.stopping.is_set():
            handler.wfile.write(chunk)

    def _trickle(self, handler: BaseHTTPRequestHandler) -> None:
        self._headers(handler)
        handler.wfile.write(b"\x89PNG")
        while not self.stopping.is_set():
            handler.wfile.write(b"\0")
            handler.wfile.flush()
            time.sleep(0.05)

    def _silent(self, handler: BaseHTTPRequestHandler) -> None:
        self._headers(handler, Content_Length="1000000")
        handler.wfile.flush()
        self.stopping.wait(30)

    def _redirect(self, handler: BaseHTTPRequestHandler) -> None:
        self._headers(handler, 302, Location="http://169.254.169.254/latest/meta-data/")


@pytest.fixture
def result_server() -> Iterator[ResultServer]:
    server = ResultServer()
    yield server
    server.close()


class HelloCatcher:
    """A TCP listener that keeps the first bytes a client sends (a TLS ClientHello, with
    the server name in clear) and hangs up."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10)
        self.port = self._listener.getsockname()[1]
        self.received = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                self.received = conn.recv(8192)

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)


class CountingSocket(socket.socket):
    """A socket that counts the bytes it received."""

    received: int

    def recv(self, bufsize: int, *args: Any) -> bytes:
        data = super().recv(bufsize, *args)
        self.received += len(data)
        return data


class Dials:
    """socket.create_connection, recorded: every address the client dialled, and the
    bytes each connection received. `routes` puts a public address through to a local
    port; any other address off the loopback is refused."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.addresses: list[tuple[str, int]] = []
        self.sockets: list[CountingSocket] = []
        self.routes: dict[tuple[str, int], tuple[str, int]] = {}
        real = socket.create_connection

        def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any):
            host, port = address[0], address[1]
            self.addresses.append((host, port))
            if (host, port) in self.routes:
                address = self.routes[(host, port)]
            elif host not in ("127.0.0.1", "::1", "localhost"):
                raise ConnectionRefusedError(f"test: no route to {host}")
            plain = real(address, *args, **kwargs)
            counted = CountingSocket(plain.family, plain.type, plain.proto, plain.detach())
            counted.received = 0
            self.sockets.append(counted)
            return counted

        monkeypatch.setattr(socket, "create_connection", create_connection)
        # Over TLS the bytes are read by the TLS layer, not through the socket's recv: count
        # what it hands the client instead.
        self.tls_received = 0
        tls_recv = ssl.SSLSocket.recv

        def counting_recv(sock: ssl.SSLSocket, buflen: int = 1024, flags: int = 0) -> bytes:
            data = tls_recv(sock, buflen, flags)
            self.tls_received += len(data)
            return data

        monkeypatch.setattr(ssl.SSLSocket, "recv", counting_recv)

    @property
    def received(self) -> int:
        return sum(s.received for s in self.sockets) + self.tls_received


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> Dials:
    return Dials(monkeypatch)
