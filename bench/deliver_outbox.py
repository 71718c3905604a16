"""What the durable outbox costs: alerts per second to a loopback webhook, outbox vs plain POSTs.

Baseline: the same JSON bodies (rendered and signed by the webhook channel) POSTed one after
another by one plain httpx client (its connection kept open, as a plain script would), no database.
Outbox: the real worker (claim with a lease, render, sign, POST, record) on SQLite and, when it
is reachable, PostgreSQL. The ratio is what durability and exactly-once bookkeeping cost.
Each variant runs ``--rounds`` times, interleaved (load on a shared machine swings all alike);
the table shows the median and the spread.

    python -m bench.deliver_outbox [N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.pg import create_database, drop_database
from monitor.alerts.render import AlertMessage
from monitor.deliver.base import build_channel
from monitor.deliver.channels.webhook import WebhookChannel
from monitor.deliver.worker import Deliverer
from monitor.store import create_db_engine, upgrade


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # As receivers in production do (nginx, uvicorn, ...): without it the answer's body waits
    # for the client's delayed ACK (40 ms) on a kept-alive connection, and the bench would
    # measure that instead of the outbox.
    disable_nagle_algorithm = True
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
    assert isinstance(channel, WebhookChannel)
    start = time.perf_counter()
    async with httpx.AsyncClient() as client:  # one client, its connection kept, as a plain script
        for i in range(n):
            body, headers = channel.build(AlertMessage.from_payload(i, f"kz:{i}:hook", payload))
            (await client.post(hook_url, content=body, headers=headers)).raise_for_status()
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


def _round(hook: str, n: int) -> dict[str, float]:
    took = {"plain POSTs (baseline)": asyncio.run(_baseline(hook, n))}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        _add(url, n)
        took["outbox on SQLite"] = asyncio.run(_outbox(url, hook))
    pg = create_database()
    if pg:
        try:
            _add(pg[0], n)
            took["outbox on PostgreSQL"] = asyncio.run(_outbox(pg[0], hook))
        finally:
            drop_database(pg[1])
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, nargs="?", default=300, help="alerts per variant")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.n
    srv, hook = _serve()
    rounds = [_round(hook, n) for _ in range(args.rounds)]
    srv.shutdown()
    print(f"{n} alerts to a loopback webhook ({_Hook.count} requests received), {args.rounds} rounds")
    print(f"{'variant':28} {'seconds':>8} {'alerts/s':>9} {'time vs baseline':>17} {'(min-max)':>14}")
    for name in rounds[0]:
        ratios = sorted(r[name] / r["plain POSTs (baseline)"] for r in rounds)
        took = statistics.median(r[name] for r in rounds)
        print(f"{name:28} {took:8.2f} {n / took:9.0f} {statistics.median(ratios):16.2f}x "
              f"{ratios[0]:6.2f}-{ratios[-1]:.2f}x")


if __name__ == "__main__":
    main()
