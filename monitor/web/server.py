"""Serving the console (with /healthz, /readyz, /metrics) on ``[http] listen``.

uvicorn runs in its own thread with its own event loop: pages answer while the daemon's loop is
busy, and a slow page never delays polling. The socket is bound in the caller's thread first, so
a taken port is an error at start, as before.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.web.app import Console, create_app

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 200  # requests and connections at once; more get 503
IDLE_SECONDS = 5  # a connection that sends nothing, or nothing more, is closed after this
MAX_IDLE = 100  # open connections past this close their oldest idle ones (below MAX_CONNECTIONS: no 503)
ACCEPT_BACKLOG = 32  # connections accepted per turn of the loop (and the kernel's queue)


class _BoundedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with the bounds it lacks.

    A fresh connection that never sends a request is closed after IDLE_SECONDS (uvicorn starts
    that timer only after a response), so half-open connections cannot pile up until the file
    descriptors run out and every /healthz probe times out (seen: 1,011 of them). A burst faster
    than that (more connections within IDLE_SECONDS than the process has descriptors) is met by
    closing the oldest idle connections (no request in progress) once MAX_IDLE are open: the
    server's descriptors stay below MAX_IDLE + 3 x ACCEPT_BACKLOG whatever the flood (an
    accepted socket waits a few turns of the loop before its eviction runs), and a probe's
    connection, which sends its request at once, is answered. ``limit_concurrency`` answers
    503 past MAX_CONNECTIONS busy ones instead of queueing."""

    _opened = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened = self.loop.time()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        if len(self.connections) > MAX_IDLE:
            idle = sorted((c for c in self.connections if isinstance(c, _BoundedH11) and c is not self
                           and (c.cycle is None or c.cycle.response_complete)), key=lambda c: c._opened)
            for c in idle[:len(self.connections) - MAX_IDLE]:
                c.transport.close()


class WebServer:
    def __init__(self, host: str, port: int, console: Console):
        console.passwords.check_bind(host)  # AccessError: public address without a password
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(ACCEPT_BACKLOG)
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(console), log_level="warning", access_log=False, lifespan="off",
                                server_header=False, timeout_graceful_shutdown=5, http=_BoundedH11,
                                timeout_keep_alive=IDLE_SECONDS, limit_concurrency=MAX_CONNECTIONS,
                                backlog=ACCEPT_BACKLOG)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="http", daemon=True)
        self.warmed = threading.Event()  # set when the warm-up is done (benches wait for it)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> WebServer:
        self.thread.start()
        threading.Thread(target=_warm_up, args=(self.warmed,), name="web-warm-up", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _warm_up(done: threading.Event) -> None:
    """Load what the first rule preview needs (matcher, quoting, speakers: seconds of imports and
    tables) before a person waits for it. Pages served meanwhile share the CPU with it."""
    from monitor.match import Document, RuleSet

    try:
        RuleSet([("warm-up", "minister")]).match(Document(title="Warm-up", body='"It works," the minister said.'))
    except Exception as exc:  # only a head start; the real request reports real problems
        log.debug("console warm-up failed: %s", exc)
    finally:
        done.set()
