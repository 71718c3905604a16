"""The daemon's HTTP endpoints under a connection flood, and /readyz when writes fail."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from monitor.config import load_config
from monitor.store.db import create_db_engine, upgrade, write_health
from monitor.web import Console
from monitor.web.server import IDLE_SECONDS, WebServer
from tests.harness import ROOT, source, write_config
from tests.servers import free_port, wait_for


def test_idle_connections_are_closed_and_health_answers(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("a", "http://example.org/feed"))
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    config = load_config(cfg)
    server = WebServer("127.0.0.1", 0, Console(engine=engine, config=lambda: config, reload=lambda: (True, ""))).start()
    flood: list[socket.socket] = []
    try:
        for _ in range(100):  # half-open: connected, never a byte sent
            flood.append(socket.create_connection(("127.0.0.1", server.port), timeout=IDLE_SECONDS + 5))
        assert httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200
        t0 = time.monotonic()
        closed = 0
        for s in flood:  # the server hangs up on each after its idle time, freeing its descriptor
            with contextlib.suppress(TimeoutError):
                closed += s.recv(1) == b""
        assert closed == len(flood) and time.monotonic() - t0 < IDLE_SECONDS + 3
    finally:
        for s in flood:
            s.close()
        server.stop()
        engine.dispose()


def test_failed_writes_make_the_store_not_ready_until_a_write_succeeds(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    health = write_health(engine)
    assert health.ready()[0]
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA query_only = ON")  # as a read-only file or a full disk refuses
        with pytest.raises(OperationalError):
            conn.execute(text("INSERT INTO story (created_at) VALUES (CURRENT_TIMESTAMP)"))
        conn.rollback()
        conn.execute(text("SELECT 1"))  # reads still work: not what readiness is about
        ok, why = health.ready()
        assert not ok and "writes failing" in why and "readonly" in why, why
        conn.exec_driver_sql("PRAGMA query_only = OFF")
        conn.execute(text("UPDATE source SET name = name"))
        conn.commit()
    assert health.ready()[0]
    engine.dispose()


def test_a_failed_write_without_a_message_is_reported_by_its_type(tmp_path: Path) -> None:
    """A driver error with no text (str() empty) still makes the store not ready, named by its
    type; the listener that records it failed on the empty message before (IndexError)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE"):
            raise sqlite3.OperationalError()

    with engine.connect() as conn, pytest.raises(OperationalError):
        conn.execute(text("UPDATE source SET name = name"))
    ok, why = write_health(engine).ready()
    assert not ok and why.endswith(": OperationalError"), why
    engine.dispose()


def _flood(port: int, stop: threading.Event, most: int, opened: list[socket.socket]) -> None:
    """Open connections that never send a byte, as fast as the server takes them, until ``stop``."""
    while not stop.is_set() and len(opened) < most:
        with contextlib.suppress(OSError):
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=0.2))


def test_health_answers_through_a_burst_of_connections_beyond_the_descriptor_limit(tmp_path: Path) -> None:
    """More half-open connections within the idle window than the server has file descriptors:
    the oldest idle ones are closed to make room, so the descriptors never run out and every
    /healthz probe meanwhile is answered (before: the accept loop failed with EMFILE and probes
    timed out until the idle connections expired)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = 1500 if hard == resource.RLIM_INFINITY else min(1500, hard - 300)
    assert most > 600, f"the test needs ~1,800 descriptors for its own side of the flood (hard limit {hard})"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, most + 300), hard))
    port = free_port()
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("a", "http://example.org/feed"))

    def server_limits() -> None:  # 300 descriptors: 12 at rest, at most ~200 for connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cfg), "web", "--listen",
                             f"127.0.0.1:{port}"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=server_limits)
    opened: list[socket.socket] = []
    stop = threading.Event()
    try:
        assert wait_for(lambda: _healthy(port, 1), timeout=90), "the console did not start"
        flood = threading.Thread(target=_flood, args=(port, stop, most, opened), daemon=True)
        flood.start()
        assert wait_for(lambda: len(opened) >= 400, timeout=20), len(opened)  # past the server's 300
        probes = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < IDLE_SECONDS + 2:  # the whole window the flood holds
            probes.append(_healthy(port, 4))
            time.sleep(0.3)
        assert len(opened) > 400
        assert all(probes), f"{probes.count(False)} of {len(probes)} /healthz probes failed; {len(opened)} opened"
    finally:
        stop.set()
        for s in opened:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"Too many open files" not in err, err.decode()[-2000:]


def _healthy(port: int, timeout: float) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
