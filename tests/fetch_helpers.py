"""Helpers for the fetch area's tests: misbehaving servers and an in-process monitor."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlmodel import select

from monitor.config import Config, load_config
from monitor.pipeline import Pipeline, PollReport
from monitor.store.db import create_db_engine, session_scope, upgrade
from monitor.store.models import Article, Source
from tests.servers import Site


class RawServer:
    """A loopback HTTP server whose handler writes the response itself (hang, endless, bomb,
    trickle; GET and POST)."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, threading.Event], None],
                 host: str = "127.0.0.1") -> None:
        self.stopping = threading.Event()
        self.paths: list[str] = []
        self.bodies: list[bytes] = []  # of POST requests
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.paths.append(self.path)
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    server.bodies.append(self.rfile.read(length))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    respond(self, server.stopping)

            do_POST = do_GET

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = host
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


async def run_once(cfg: Path | Config, everything: bool = False) -> list[PollReport]:
    """One ``run --once`` in this process, with a fresh pipeline (as a new process would have)."""
    config = cfg if isinstance(cfg, Config) else load_config(cfg)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    pipeline = Pipeline(config, engine)
    try:
        return await pipeline.run_once(everything=everything)
    finally:
        await pipeline.aclose()
        engine.dispose()


def source_row(cfg: Path, name: str) -> Source:
    config = load_config(cfg)
    engine = create_db_engine(config.database_url)
    try:
        with session_scope(engine) as s:
            return s.exec(select(Source).where(Source.name == name)).one()
    finally:
        engine.dispose()


def make_due(cfg: Path, name: str) -> None:
    """Let time pass for one source: its next poll time is now."""
    config = load_config(cfg)
    engine = create_db_engine(config.database_url)
    try:
        with session_scope(engine) as s:
            row = s.exec(select(Source).where(Source.name == name)).one()
            row.next_poll_at = datetime.now(UTC)
            s.add(row)
    finally:
        engine.dispose()


def articles(cfg: Path) -> list[Article]:
    config = load_config(cfg)
    engine = create_db_engine(config.database_url)
    try:
        with session_scope(engine) as s:
            return list(s.exec(select(Article).order_by(Article.id)).all())  # type: ignore[arg-type]
    finally:
        engine.dispose()


def requests_to(site: Site, path: str) -> int:
    return sum(1 for r in site.requests if r.path == path)


def site_on(host: str) -> Site:
    """A started ``Site`` listening on another loopback address (127.0.0.2, ...): another host."""
    s = Site()
    s.server.server_close()
    s.server = ThreadingHTTPServer((host, 0), s.server.RequestHandlerClass)
    s.server.daemon_threads = True
    s.port = s.server.server_address[1]
    s.thread = threading.Thread(target=s.server.serve_forever, daemon=True)
    old_base = type(s).base

    class _Site(type(s)):  # type: ignore[misc]
        @property
        def base(self) -> str:
            return f"http://{host}:{self.port}"

    del old_base
    s.__class__ = _Site
    return s.start()
