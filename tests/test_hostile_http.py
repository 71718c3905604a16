"""The daemon's HTTP endpoints under a connection flood, and /readyz when writes fail."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from monitor.config import load_config
from monitor.store.db import create_db_engine, upgrade, write_health
from monitor.web import Console
from monitor.web.server import IDLE_SECONDS, WebServer
from tests.harness import source, write_config


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
