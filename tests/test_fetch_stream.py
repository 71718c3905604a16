"""The fetcher's connections: asyncio's own transports under httpcore (monitor.fetch.guard's
``_Stream``), over plain TCP and TLS: pages arrive whole, kept-alive connections are reused, a
connection the server closed while idle is replaced, certificates are checked, flow control holds
memory, and no anyio cancel scope is entered per read or write (issue 15)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.config import FetchSettings
from monitor.fetch import Fetcher, FetchError
from monitor.fetch import client as client_mod
from monitor.fetch import guard as guard_mod
from tests.deliver_helpers import self_signed_cert
from tests.fetch_helpers import RawServer

PAGE = b"<html><body>" + b"<p>Words of an article, one paragraph after another.</p>" * 6000 + b"</body></html>"


class _Server:
    """HTTP/1.1 over TLS (or plain) on loopback: ``/page`` (gzip), ``/bye`` (answers, then hangs
    up without saying so), ``/bomb`` (gzip of 5 MiB of zeros). Counts the connections accepted."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.connections = 0
        self.hung_up = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = gzip.compress(b"\0" * 5 * 1024 * 1024 if self.path == "/bomb" else PAGE)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if self.path == "/bye":
                    self.wfile.flush()
                    self.close_connection = True

            def finish(self) -> None:
                super().finish()
                if self.close_connection and self.path == "/bye":
                    self.request.close()
                    outer.hung_up.set()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = super().get_request()
                outer.connections += 1
                return (context.wrap_socket(sock, server_side=True) if context else sock), addr

        self.server = Server(("127.0.0.1", 0), Handler)
        self.scheme = "https" if context else "http"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A TLS server with a fresh self-signed certificate, and the fetcher's TLS context trusting it."""
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(client_mod, "_tls", client_ctx)
    server = _Server(server_ctx)
    yield server
    server.stop()


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_pages_arrive_whole_on_one_kept_alive_connection(scheme: str, tls: _Server) -> None:
    server = tls if scheme == "https" else _Server(None)

    async def main() -> list[bytes]:
        async with Fetcher(FetchSettings(allow_private_networks=True)) as f:
            return [(await f.get(server.url("/page"))).content for _ in range(3)]

    try:
        assert asyncio.run(main()) == [PAGE] * 3
        assert server.connections == 1
    finally:
        if server is not tls:
            server.stop()


def test_a_compression_bomb_over_tls_stops_at_the_limit(tls: _Server) -> None:
    async def main() -> FetchError:
        async with Fetcher(FetchSettings(allow_private_networks=True, max_bytes=1024 * 1024)) as f:
            with pytest.raises(FetchError) as exc:
                await f.get(tls.url("/bomb"))
            return exc.value

    assert asyncio.run(main()).kind == "too_large"


def test_a_tls_connection_the_server_closed_while_idle_is_replaced(tls: _Server) -> None:
    """The server answers, then closes the connection without a "Connection: close": the pool
    sees the end of the stream on the idle connection and opens a new one for the next request
    (sending on the dead one would fail with "Server disconnected")."""

    async def main() -> list[bytes]:
        async with Fetcher(FetchSettings(allow_private_networks=True)) as f:
            first = (await f.get(tls.url("/bye"))).content
            assert await asyncio.to_thread(tls.hung_up.wait, 10)
            await asyncio.sleep(0.05)  # the loop reads the close
            return [first, (await f.get(tls.url("/page"))).content]

    assert asyncio.run(main()) == [PAGE, PAGE]
    assert tls.connections == 2


def test_an_untrusted_certificate_is_refused(tls: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "_tls", ssl.create_default_context())  # not trusting the test's certificate

    async def main() -> FetchError:
        async with Fetcher(FetchSettings(allow_private_networks=True)) as f:
            with pytest.raises(FetchError) as exc:
                await f.get(tls.url("/page"))
            return exc.value

    err = asyncio.run(main())
    assert err.kind == "tls" and "certificate" in str(err)


def test_reads_and_writes_enter_no_anyio_cancel_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpcore's anyio stream entered ``anyio.fail_after`` (a cancel scope and a loop timer)
    around every read and write: a tenth of a page fetch's CPU. The fetcher's stream waits on a
    future with a timer only when there is nothing to read."""
    import anyio

    entered: list[object] = []
    real = anyio.fail_after

    def counting(*args: Any, **kwargs: Any) -> Any:
        entered.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(anyio, "fail_after", counting)
    server = _Server(None)

    async def main() -> bytes:
        async with Fetcher(FetchSettings(allow_private_networks=True)) as f:
            return (await f.get(server.url("/page"))).content

    try:
        assert asyncio.run(main()) == PAGE
    finally:
        server.stop()
    assert entered == []


def test_a_connection_stops_reading_while_its_reader_is_behind() -> None:
    """Flow control: what a connection received and nobody read yet stays under ~HIGH_WATER;
    reading starts again once it is below LOW_WATER."""

    class Transport:
        paused = False

        def pause_reading(self) -> None:
            self.paused = True

        def resume_reading(self) -> None:
            self.paused = False

    conn = guard_mod._Connection()
    transport = Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    chunk = b"x" * 65536
    while not transport.paused:
        conn.data_received(chunk)
    assert guard_mod.HIGH_WATER < conn.buffered <= guard_mod.HIGH_WATER + len(chunk)
    got = b""
    while transport.paused:
        got += conn.take(65536)
    assert conn.buffered < guard_mod.LOW_WATER
    while conn.chunks:
        got += conn.take(65536)
    assert got == chunk * (len(got) // len(chunk)) and conn.buffered == 0


# -- one pool per host ---------------------------------------------------------------------------
def _hosts(n: int, respond: Any = None) -> list[RawServer]:
    """``n`` servers on 127.0.0.1, 127.0.0.2, ...: ``n`` hosts. Each answers a short page."""

    def page(h: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "4")
        h.end_headers()
        h.wfile.write(b"page")

    return [RawServer(respond or page, host=f"127.0.0.{i + 1}") for i in range(n)]


def _pools(f: Fetcher) -> dict[str, int]:
    """The fetcher's pools by host, with their requests in flight."""
    if True not in f._clients:
        return {}
    transport = f._clients[True]._transport
    assert isinstance(transport, client_mod._HostPools)
    return {key[1].decode(): pool.active for key, pool in transport._pools.items()}


def test_a_request_looks_only_at_its_own_hosts_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpcore's pool checks every connection it holds on each request and each response closed
    (closed, expired, idle; for every idle one it counts them all again): with one pool for every
    host that was hundreds of calls a page. Each host has a pool of its own now, so a request to
    a host looks at that host's connections only."""
    import httpcore

    servers = _hosts(4)
    asked: list[str] = []
    has_expired = httpcore.AsyncHTTPConnection.has_expired

    def counting(self: httpcore.AsyncHTTPConnection) -> bool:
        asked.append(self._origin.host.decode())
        return has_expired(self)

    async def main() -> None:
        async with Fetcher(FetchSettings(allow_private_networks=True)) as f:
            for s in servers:
                assert (await f.get(s.url("/a"))).content == b"page"
            monkeypatch.setattr(httpcore.AsyncHTTPConnection, "has_expired", counting)
            await f.get(servers[0].url("/b"))

    try:
        asyncio.run(main())
    finally:
        for s in servers:
            s.stop()
    assert asked and set(asked) == {"127.0.0.1"}


def test_pools_past_the_bound_are_closed_least_recently_used_first() -> None:
    """At most concurrency // per_host pools are kept (the connections kept open stay about
    ``concurrency``, as with one pool): the least recently used one goes first."""
    servers = _hosts(3)

    async def main() -> None:
        async with Fetcher(FetchSettings(allow_private_networks=True, concurrency=4, per_host=2)) as f:
            for s in (servers[0], servers[1], servers[0], servers[2]):  # host 2 is the least recently used
                assert (await f.get(s.url("/"))).content == b"page"
            assert _pools(f) == {"127.0.0.1": 0, "127.0.0.3": 0}
            with pytest.raises(FetchError):  # a response given up on gives its pool back too
                await f.get(servers[1].url("/"), max_bytes=2)
            assert _pools(f) == {"127.0.0.3": 0, "127.0.0.2": 0}

    try:
        asyncio.run(main())
    finally:
        for s in servers:
            s.stop()


def test_a_pool_with_a_request_in_flight_is_not_closed() -> None:
    """A host's pool is closed to make room only when no response of it is being read: a slow
    page keeps coming while other hosts are fetched."""
    release = threading.Event()

    def respond(h: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        slow = h.path == "/slow"
        h.send_response(200)
        h.send_header("Content-Length", "8")
        h.end_headers()
        h.wfile.write(b"page")
        h.wfile.flush()
        if slow:
            release.wait(10)
        h.wfile.write(b"more")

    servers = _hosts(3, respond)

    async def main() -> bytes:
        async with Fetcher(FetchSettings(allow_private_networks=True, concurrency=2, per_host=2)) as f:  # keeps 1
            slow = asyncio.ensure_future(f.get(servers[0].url("/slow")))
            while not _pools(f).get("127.0.0.1"):
                await asyncio.sleep(0.01)
            for s in servers[1:]:
                assert (await f.get(s.url("/"))).content == b"pagemore"
            assert "127.0.0.1" in _pools(f)
            release.set()
            return (await slow).content

    try:
        assert asyncio.run(main()) == b"pagemore"
    finally:
        release.set()
        for s in servers:
            s.stop()
