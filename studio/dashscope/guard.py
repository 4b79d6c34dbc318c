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
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def public_addresses(host: str, resolver: Resolver) -> list[str]:
    """The addresses `host` resolves to, all of them public, or InternalAddress.

    An address literal is refused outright: the provider names its buckets, and a URL that
    names an address was not written by it."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        pass
    else:
        raise InternalAddress(host)
    try:
        addresses = resolver(host)
    except OSError as exc:
        # Unresolvable now: a network failure like any other, tried again later.
        raise httpcore.ConnectError(f"{type(exc).__name__} resolving the result host") from None
    if not addresses or not all(is_public(address) for address in addresses):
        raise InternalAddress(host)
    return addresses


Dial = Callable[[str, int], tuple[str, int]]


def _dial_as_is(address: str, port: int) -> tuple[str, int]:
    return address, port


class PublicAddressBackend(httpcore.NetworkBackend):
    """Opens TCP connections to public addresses only. `dial` may replace a checked address
    with the one to connect to: only the emulator's route does (see EmulatorRoute)."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        dial: Dial = _dial_as_is,
    ) -> None:
        self._resolve = resolver
        self._dial = dial
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = public_addresses(host, self._resolve)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(
                    *self._dial(address, port), timeout, local_address, socket_options
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
        self,
        *,
        verify: Any,
        resolver: Resolver,
        dial: Dial = _dial_as_is,
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
            network_backend=PublicAddressBackend(resolver=resolver, dial=dial),
        )


class CheckedTransport(httpx.BaseTransport):
    """Another transport (an in-process emulator) behind the same address check: a request
    goes on only if its host resolves to public addresses, as a real connection would."""

    def __init__(self, inner: httpx.BaseTransport, *, resolver: Resolver) -> None:
        self._inner, self._resolve = inner, resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        public_addresses(request.url.host, self._resolve)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


# A public address that the emulator's route gives every result host. It is never dialled:
# the route replaces it with the emulator's own address as the connection is opened.
STAND_IN_ADDRESS = "47.88.1.1"


@dataclass(frozen=True)
class EmulatorRoute:
    """Where result hosts lead when the emulator stands in for the provider (the demo,
    the tests; never with the real service).

    Result host names resolve to a public stand-in address, so the host rules and the
    address check run as they do against the real buckets; the connection is then opened
    to the emulator, which answers TLS with a certificate for those names from its own
    authority, and only that authority is trusted. `addresses` gives chosen hosts other
    addresses, for tests of the address check.
    """

    host: str
    port: int
    ca_pem: bytes
    addresses: tuple[tuple[str, str], ...] = ()

    def resolve(self, host: str) -> list[str]:
        return [dict(self.addresses).get(host, STAND_IN_ADDRESS)]

    def dial(self, address: str, port: int) -> tuple[str, int]:
        # Nothing but the emulator is reached this way, whatever an address test gave.
        if (address, port) != (STAND_IN_ADDRESS, 443):
            raise httpcore.ConnectError("The emulator's route leads only to the emulator.")
        return self.host, self.port

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))


_routes: dict[str, EmulatorRoute] = {}


def emulator_route(base_url: str) -> EmulatorRoute:
    """The route to the emulator serving `base_url`: its address, and the authority it
    signs its result hosts' certificate with, read from it once per process."""
    if base_url not in _routes:
        api = httpx.URL(base_url)
        port = api.port or (443 if api.scheme == "https" else 80)
        answer = httpx.get(
            str(api.copy_with(path="/_emulator/ca.pem", query=None)), timeout=10, trust_env=False
        )
        answer.raise_for_status()
        _routes[base_url] = EmulatorRoute(host=api.host, port=port, ca_pem=answer.content)
    return _routes[base_url]
