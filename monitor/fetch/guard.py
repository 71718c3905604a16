"""The SSRF guard: an httpcore network backend that resolves a host itself and refuses to
connect to any address that is not globally routable.

The check happens on the addresses the connection really goes to (after DNS resolution), and
for every connection httpx opens, so a redirect hop to 127.0.0.1, or a public name that resolves
to 10.0.0.5, is refused the same way as a literal private URL.

The connections are asyncio's own transports (TCP, then TLS by ``loop.start_tls``) behind
httpcore's public network-stream interface, not httpcore's anyio streams: see ``_Connection``.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore


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


HIGH_WATER = 256 * 1024  # bytes received and not yet read at which a connection stops reading
LOW_WATER = 64 * 1024  # ... and below which it reads again


class _Connection(asyncio.Protocol):
    """What a connection received and not yet read, and its state: asyncio's own protocol, so
    a read or write is a buffer operation and a future, not anyio's cancel scope, exception map
    and pause/resume of the transport around each one (the ``anyio.fail_after`` and
    ``CancelScope`` that were a tenth of a page fetch's CPU, issue 15).

    It keeps reading while the connection is idle (up to ``HIGH_WATER``), so a server that
    hung up or sent something unasked is known from this state, without a poll of the socket."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.paused = False  # reading paused: HIGH_WATER reached
        self.writing_paused = False  # the transport's send buffer is full
        # The one read waiting for data, or write waiting for room (HTTP/1.1: one at a time).
        self.waiter: asyncio.Future[bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, timeout: float | None) -> bool:
        """Until ``_wake`` (data, end, room to write): False when ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what was received (the buffered chunks joined)."""
        chunks = self.chunks
        data = chunks.popleft()
        if len(data) > max_bytes:
            chunks.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        elif chunks and len(data) + len(chunks[0]) <= max_bytes:
            parts = [data]
            size = len(data)
            while chunks and size + len(chunks[0]) <= max_bytes:
                size += len(chunks[0])
                parts.append(chunks.popleft())
            data = b"".join(parts)
        self.buffered -= len(data)
        if self.paused and self.buffered < LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection as httpcore's network stream, on an asyncio transport (plain, or TLS after
    ``start_tls``) and its ``_Connection``. Errors are httpcore's, as its anyio stream raises
    them: ReadTimeout/WriteTimeout after ``timeout`` seconds of waiting, ReadError/WriteError
    when the connection failed, b"" at the end of the stream."""

    def __init__(self, transport: asyncio.Transport, conn: _Connection, tls: bool = False) -> None:
        self._transport = transport
        self._conn = conn
        self._tls = tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        conn = self._conn
        while not conn.chunks:
            if conn.eof:
                if conn.error is not None:
                    raise httpcore.ReadError(str(conn.error) or type(conn.error).__name__) from conn.error
                return b""
            if not await conn.wait(timeout):
                raise httpcore.ReadTimeout(f"no data within {timeout:g}s")
        return conn.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        conn = self._conn
        if conn.eof or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        while conn.writing_paused:  # the transport's buffer is full: wait for room
            if conn.eof:
                raise httpcore.WriteError("the connection is closed")
            if not await conn.wait(timeout):
                raise httpcore.WriteTimeout(f"could not send within {timeout:g}s")

    async def aclose(self) -> None:
        if self._tls:
            # Without TLS close_notify, as httpcore's anyio stream closes (standard_compatible
            # False): HTTP/1.1 frames its messages, and asyncio would wait for the server's
            # reply to the close_notify.
            self._transport.abort()
        else:
            self._transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self._transport, self._conn, ssl_context,
                                                 server_hostname=server_hostname)
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout:g}s") from exc
        except (ssl.SSLError, OSError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # pragma: no cover - only for a server-side or closed transport
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._conn.transport = transport
        return _Stream(transport, self._conn, tls=True)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # asked of every idle connection of the pool, often
            return self._conn.eof or bool(self._conn.chunks)
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to the checked address (not the name again,
    which could resolve differently the second time: DNS rebinding)."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private

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
                return await _connect(addr, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by the fetcher")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(address: str, port: int, timeout: float | None, local_address: str | None,
                   socket_options: Iterable[Any] | None) -> _Stream:
    """A TCP connection to ``address`` (checked), as httpcore's anyio backend makes it: the
    socket options set once connected, TCP_NODELAY on (asyncio's default)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            transport, conn = await loop.create_connection(
                _Connection, address, port, local_addr=(local_address, 0) if local_address else None)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"no connection to {address} within {timeout:g}s") from exc
    except OSError as exc:
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
    try:
        for option in socket_options or ():
            transport.get_extra_info("socket").setsockopt(*option)
    except OSError as exc:
        transport.abort()
        raise httpcore.ConnectError(str(exc)) from exc
    return _Stream(transport, conn)
