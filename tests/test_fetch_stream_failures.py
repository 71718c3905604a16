"""The fetcher's own connections (monitor.fetch.guard's ``_Stream`` on asyncio transports, one
pool per host) when things go wrong: a response cut by the read timeout, the total timeout or a
cancelled task, a server hanging up (FIN or RST) mid-body, a TLS handshake that never ends, more
hosts than pools kept. Each leaves no connection open or waiting and none reused half-read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.config import FetchSettings
from monitor.fetch import Fetcher, FetchError
from monitor.fetch import guard as guard_mod
from tests.deliver_helpers import self_signed_cert


class _Site:
    """An asyncio HTTP/1.1 server on ``host``: ``/ok`` (a 2-byte page), ``/stall`` (headers and
    3 of 100 bytes, then nothing), ``/fin`` and ``/rst`` (the same 3 bytes, then a close or a
    reset). Counts the connections it accepted."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.accepted = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> _Site:
        self.server = await asyncio.start_server(self._handle, self.host, 0)
        return self

    def url(self, path: str, scheme: str = "http") -> str:
        assert self.server is not None
        return f"{scheme}://{self.host}:{self.server.sockets[0].getsockname()[1]}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.writers.append(writer)
        try:
            while line := await reader.readline():
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                path = line.split()[1]
                if path == b"/ok":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                await writer.drain()
                if path == b"/fin":
                    writer.close()
                elif path == b"/rst":
                    await asyncio.sleep(0.05)
                    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                               struct.pack("ii", 1, 0))
                    writer.transport.abort()
                else:
                    await asyncio.sleep(60)
                return
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def stop(self) -> None:
        for w in self.writers:
            w.transport.abort()
        if self.server is not None:
            self.server.close()


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> list[guard_mod._Stream]:
    """Every TCP connection the fetcher opens, as it was handed to httpcore."""
    made: list[guard_mod._Stream] = []
    real = guard_mod._connect

    async def recording(*args: Any) -> guard_mod._Stream:
        stream = await real(*args)
        made.append(stream)
        return stream

    monkeypatch.setattr(guard_mod, "_connect", recording)
    return made


def _open(streams: list[guard_mod._Stream]) -> int:
    return sum(not s._transport.is_closing() for s in streams)


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def test_a_response_cut_by_a_timeout_or_a_cancel_closes_its_connection(streams: list[guard_mod._Stream]) -> None:
    """Cut mid-body (read timeout, total timeout, task cancelled while the read waits): the
    connection is closed, not handed back to the pool half-read, no read is left waiting on it,
    and the next request gets a fresh connection and a whole page."""

    async def main() -> None:
        site = await _Site().start()
        try:
            async with (Fetcher(FetchSettings(allow_private_networks=True, read_timeout=0.3, timeout=30)) as f,
                        Fetcher(FetchSettings(allow_private_networks=True, read_timeout=30, timeout=0.3)) as g):
                with pytest.raises(FetchError) as exc:
                    await f.get(site.url("/stall"))
                assert exc.value.kind == "timeout" and "read timeout" in str(exc.value)
                assert (await f.get(site.url("/ok"))).content == b"ok"
                assert site.accepted == 2

                with pytest.raises(FetchError) as exc:
                    await g.get(site.url("/stall"))
                assert exc.value.kind == "timeout" and "total timeout" in str(exc.value)
                assert (await g.get(site.url("/ok"))).content == b"ok"
                assert site.accepted == 4

                task = asyncio.create_task(f.get(site.url("/stall")))
                while not any(s._conn.waiter is not None for s in streams):  # the read waits
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert (await f.get(site.url("/ok"))).content == b"ok"
                assert site.accepted == 5  # the /stall went on the kept-alive connection, closed with it
                await asyncio.sleep(0.05)
                assert all(s._conn.waiter is None for s in streams)
                assert _open(streams) == 2  # the two kept-alive connections of the /ok pages
        finally:
            await site.stop()
        assert _open(streams) == 0

    _run(main)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_server_hanging_up_mid_body_is_an_error_not_a_short_page(how: str, streams: list[guard_mod._Stream]) -> None:
    async def main() -> None:
        site = await _Site().start()
        try:
            async with Fetcher(FetchSettings(allow_private_networks=True, read_timeout=10)) as f:
                with pytest.raises(FetchError) as exc:
                    await f.get(site.url(f"/{how}"))
                assert exc.value.kind != "timeout"
                assert (await f.get(site.url("/ok"))).content == b"ok"
                assert site.accepted == 2
        finally:
            await site.stop()
        assert _open(streams) == 0

    _run(main)


def test_a_tls_handshake_that_never_ends_times_out_and_closes(streams: list[guard_mod._Stream]) -> None:
    """A server that accepts and never answers the ClientHello: the connect timeout, the
    connection closed; cancelled during the handshake: closed too."""

    async def main() -> None:
        site = await _Site().start()  # speaks no TLS: it waits for a request line forever
        try:
            async with Fetcher(FetchSettings(allow_private_networks=True, connect_timeout=0.3, timeout=30)) as f:
                with pytest.raises(FetchError) as exc:
                    await f.get(site.url("/", scheme="https"))
                assert exc.value.kind == "timeout" and "connect" in str(exc.value)
                assert len(streams) == 1
                await asyncio.sleep(0.05)
                assert _open(streams) == 0
            async with Fetcher(FetchSettings(allow_private_networks=True, connect_timeout=30, timeout=30)) as f:
                task = asyncio.create_task(f.get(site.url("/", scheme="https")))
                while site.accepted < 2:
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.sleep(0.05)
                assert len(streams) == 2 and _open(streams) == 0
        finally:
            await site.stop()

    _run(main)


def test_pools_past_the_bound_keep_only_their_connections_open(streams: list[guard_mod._Stream]) -> None:
    """25 hosts one after another, 10 pools kept (concurrency 20, per_host 2): the connections
    of the pools closed are closed, 10 stay open for reuse; aclose closes them all."""

    async def main() -> None:
        sites = [await _Site(f"127.0.0.{i}").start() for i in range(2, 27)]
        try:
            f = Fetcher(FetchSettings(allow_private_networks=True, concurrency=20, per_host=2))
            for site in sites:
                assert (await f.get(site.url("/ok"))).content == b"ok"
            await asyncio.sleep(0.05)
            assert len(streams) == 25 and _open(streams) == 10
            assert (await f.get(sites[-1].url("/ok"))).content == b"ok"  # kept: reused
            assert len(streams) == 25
            await f.aclose()
            await asyncio.sleep(0.05)
            assert _open(streams) == 0
        finally:
            for site in sites:
                await site.stop()

    _run(main)


@pytest.mark.parametrize("framing", ["length", "close"])
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_slow_reader_pauses_the_connection_and_gets_every_byte(scheme: str, framing: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """3 MB read slowly, over TLS (``loop.start_tls``'s transport) and plain TCP: the connection
    pauses reading past HIGH_WATER and resumes as it is read, every byte arrives in order, the
    end (Content-Length, or the server closing, with close_notify) is seen, and a kept-alive
    connection serves the next response too."""
    import httpcore

    body = os.urandom(3_000_000)
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                raw, _ = listener.accept()
                sock = server_ctx.wrap_socket(raw, server_side=True) if scheme == "https" else raw
                with sock:
                    while _request(sock):
                        if framing == "close":
                            sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
                            if scheme == "https":
                                sock.unwrap()  # type: ignore[attr-defined]
                            break
                        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    threading.Thread(target=serve, daemon=True).start()
    # (bytes buffered before the chunk that paused reading, that chunk's size). One delivery can be
    # large: asyncio's TLS transport hands over everything its SSL object holds (up to its own
    # 256 KiB read high-water mark plus a socket read) in one call, so the bound on memory is
    # HIGH_WATER plus one delivery, and what is ours to keep is pausing on the delivery that
    # crosses HIGH_WATER and taking none while paused.
    pauses: list[tuple[int, int]] = []
    while_paused: list[int] = []
    real = guard_mod._Connection.data_received

    def noting(self: guard_mod._Connection, data: bytes) -> None:
        was, before = self.paused, self.buffered
        if was:
            while_paused.append(len(data))
        real(self, data)
        if self.paused and not was:
            pauses.append((before, len(data)))

    monkeypatch.setattr(guard_mod._Connection, "data_received", noting)

    async def main() -> list[bool]:
        ok = []
        async with httpcore.AsyncConnectionPool(ssl_context=ssl.create_default_context(cafile=str(cert)),
                                                network_backend=guard_mod.GuardedBackend(True)) as pool:
            for _ in range(2):
                got = bytearray()
                async with pool.stream("GET", f"{scheme}://127.0.0.1:{port}/",
                                       extensions={"timeout": {"read": 10}}) as response:
                    async for chunk in response.aiter_stream():
                        got += chunk
                        await asyncio.sleep(0.002)
                ok.append(bytes(got) == body)
        return ok

    try:
        assert asyncio.run(asyncio.wait_for(main(), 60)) == [True, True]
    finally:
        listener.close()
    assert pauses and all(before <= guard_mod.HIGH_WATER < before + size for before, size in pauses), pauses
    assert while_paused == []


def _request(sock: socket.socket) -> bool:
    """Read one request's head; False at the end of the connection."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            return False
        head += data
    return True
