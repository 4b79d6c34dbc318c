"""Result downloads connect only to public addresses, checked at the moment of connecting.

Checking a name before the request and letting the HTTP library resolve it again to
connect is defeated by DNS rebinding: the name answers with a public address for the
check and with 169.254.169.254 for the connection. Here the name is resolved once, every
address it gave is checked, and the socket is opened to a checked address. TLS still
names the host (httpcore sends the URL's host name for SNI and verifies the certificate
against it), and so does the Host header: only the address to dial is pinned.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

Resolver = Callable[[str], list[str]]


class InternalAddress(Exception):
    """A result host that resolves to an address no public bucket would have.

    Not an httpcore error on purpose: httpx passes it through untouched, and the client
    turns it into a refusal instead of a retryable network failure.
    """


def resolve(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)]


def is_public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_global


class PublicAddressBackend(httpcore.NetworkBackend):
    """Opens TCP connections to public addresses only, except to `trusted` (host, port)
    pairs: the configured API origin, which may be the emulator on a loopback address."""

    def __init__(self, *, resolver: Resolver, trusted: Iterable[tuple[str, int]]) -> None:
        self._resolve = resolver
        self._trusted = set(trusted)
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if (host, port) in self._trusted:
            return self._sockets.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = self._resolve(host)
        except OSError as exc:
            # Unresolvable now: a network failure like any other, tried again later.
            raise httpcore.ConnectError(f"{type(exc).__name__} resolving the result host") from None
        if not addresses or not all(is_public(address) for address in addresses):
            raise InternalAddress(host)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise InternalAddress(path)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class PublicAddressTransport(httpx.HTTPTransport):
    """httpx's own transport, connecting through PublicAddressBackend."""

    def __init__(
        self, *, verify: Any, resolver: Resolver, trusted: Iterable[tuple[str, int]]
    ) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx 0.28 gives no way to choose the network backend of the pool it builds, so
        # the pool is built again with the same settings and ours (httpx is pinned).
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PublicAddressBackend(resolver=resolver, trusted=trusted),
        )
