"""``[http] listen``: /healthz (alive), /readyz (database reachable, scheduler running), /metrics.

A small WSGI app on the standard library's threaded server: the endpoints answer even while the
event loop is busy, and a slow scrape never delays polling.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

from monitor.ops import metrics

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (signature from the stdlib)
        pass


class HealthServer:
    """Serves the three endpoints; ``ready`` returns (ok, reason) and runs in a server thread."""

    def __init__(self, host: str, port: int, ready: Callable[[], tuple[bool, str]]):
        self.ready = ready
        self.server = make_server(host, port, self.app, server_class=_Server, handler_class=_QuietHandler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _reply(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            try:
                ok, reason = self.ready()
            except Exception as exc:  # the check itself failing means not ready
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            return _reply(start_response, "200 OK" if ok else "503 Service Unavailable", f"{reason}\n".encode())
        if path == "/metrics":
            try:
                body = metrics.render()
            except Exception as exc:
                log.warning("metrics scrape failed: %s", exc)
                return _reply(start_response, "503 Service Unavailable", f"metrics unavailable: {exc}\n".encode())
            return _reply(start_response, "200 OK", body, CONTENT_TYPE_LATEST)
        return _reply(start_response, "404 Not Found", b"not found; try /healthz, /readyz or /metrics\n")


def _reply(start_response: StartResponse, status: str, body: bytes,
           content_type: str = "text/plain; charset=utf-8") -> Iterable[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
