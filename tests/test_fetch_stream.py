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
