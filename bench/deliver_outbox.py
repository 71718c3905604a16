"""What the durable outbox costs: alerts per second to a loopback webhook, outbox vs plain POSTs.

Baseline: the same JSON bodies POSTed one after another with the same HTTP code and no database.
Outbox: the real worker (claim with a lease, render, sign, POST, record) on SQLite and, when it
is reachable, PostgreSQL. The ratio is what durability and exactly-once bookkeeping cost.

    python -m bench.deliver_outbox [N]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor.alerts.render import AlertMessage
from monitor.deliver.base import build_channel
from monitor.deliver.worker import Deliverer
from monitor.store import create_db_engine, upgrade

PG_ADMIN = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).count += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _serve() -> tuple[ThreadingHTTPServer, str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/hook"


def _add(url: str, n: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.deliver_helpers import add_alerts

    engine = create_db_engine(url)
    upgrade(engine)
    add_alerts(engine, n, ("hook",))
    engine.dispose()


async def _baseline(hook_url: str, n: int) -> float:
    channel = build_channel("hook", "webhook", {"url": hook_url, "secret": "s"})
    payload = {"kind": "match", "rule": "kz", "title": "t", "url": "u", "outlet": "o", "article_id": 1,
               "statements": [{"text": "Kazakhstan is a venue for negotiations.", "highlights": [[16, 21]]}]}
    start = time.perf_counter()
    for i in range(n):
        await channel.send(AlertMessage.from_payload(i, f"kz:{i}:hook", payload))
    return time.perf_counter() - start


async def _outbox(db_url: str, hook_url: str) -> float:
    engine = create_db_engine(db_url)
    channel = build_channel("hook", "webhook", {"url": hook_url, "secret": "s"})
    start = time.perf_counter()
    report = await Deliverer(engine, {"hook": channel}).run()
    took = time.perf_counter() - start
    engine.dispose()
    assert report.sent > 0
    return took


def _pg_url() -> tuple[str, str] | None:
    try:
        import psycopg

        admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name
    except Exception:
        return None


def _pg_drop(name: str) -> None:
    import psycopg

    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    srv, hook = _serve()
    rows: list[tuple[str, float]] = [("plain POSTs (baseline)", asyncio.run(_baseline(hook, n)))]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        _add(url, n)
        rows.append(("outbox on SQLite", asyncio.run(_outbox(url, hook))))
    pg = _pg_url()
    if pg:
        try:
            _add(pg[0], n)
            rows.append(("outbox on PostgreSQL", asyncio.run(_outbox(pg[0], hook))))
        finally:
            _pg_drop(pg[1])
    srv.shutdown()
    base = rows[0][1]
    print(f"{n} alerts to a loopback webhook ({_Hook.count} requests received)")
    print(f"{'variant':28} {'seconds':>8} {'alerts/s':>9} {'time vs baseline':>17}")
    for name, took in rows:
        print(f"{name:28} {took:8.2f} {n / took:9.0f} {took / base:16.2f}x")


if __name__ == "__main__":
    main()
