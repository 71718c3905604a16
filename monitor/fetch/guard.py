"""The SSRF guard: an httpcore network backend that resolves a host itself and refuses to
connect to any address that is not globally routable.

The check happens on the addresses the connection really goes to (after DNS resolution), and
for every connection httpx opens, so a redirect hop to 127.0.0.1, or a public name that resolves
to 10.0.0.5, is refused the same way as a literal private URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
from httpcore._utils import is_socket_readable  # httpcore's own check (versions pinned)


class BlockedAddressError(Exception):
    """The host resolved to an address the config does not allow (private, loopback, ...)."""

    def __init__(self, host: str, address: str, reason: str):
        super().__init__(
            f"refused to connect to {host} ({address}): {reason} address; set "
            "allow_private_networks = true for this source or in [fetch] to allow it")
        self.host = host
        self.address = address


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a public internet address, or None if it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attr, reason in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                         ("is_multicast", "multicast"), ("is_unspecified", "unspecified"),
                         ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, attr):
            return reason
    if not ip.is_global:
        return "non-global"
    return None


class _Stream(httpcore.AsyncNetworkStream):
    """The backend's stream, answering "is_readable" from the socket kept at connect. httpcore
    asks it of every idle connection of the pool on every request and every response closed,
    and the anyio stream built a dict of all its socket's attributes to answer each time (a
    sixth of a page fetch's CPU with 20 connections in the pool)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to the checked address (not the name again,
    which could resolve differently the second time: DNS rebinding)."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:  # an address needs no lookup (a thread hop per connection; checked all the same)
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"DNS lookup of {host} timed out") from exc
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"DNS lookup of {host} failed: {exc.strerror or exc}") from exc
        addresses: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            addr = str(sockaddr[0])
            if addr not in addresses:
                addresses.append(addr)
        return addresses

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        if not self.allow_private:
            for addr in addresses:
                reason = address_problem(addr)
                if reason:
                    # One bad address refuses the host: a name mixing public and private
                    # addresses is the rebinding trick itself.
                    raise BlockedAddressError(host, addr, reason)
        if not addresses:
            raise httpcore.ConnectError(f"DNS lookup of {host} returned no address")
        last: Exception | None = None
        for addr in addresses:
            try:
                return _Stream(await self._inner.connect_tcp(addr, port, timeout=timeout,
                                                             local_address=local_address,
                                                             socket_options=socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
