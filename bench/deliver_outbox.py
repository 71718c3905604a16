"""What the durable outbox costs: alerts per second to a loopback webhook, outbox vs plain POSTs.

Baseline: the same JSON bodies (rendered and signed by the webhook channel) POSTed one after
another by one plain httpx client (its connection kept open, as a plain script would), no database.
Outbox: the real worker (claim with a lease, render, sign, POST, record) on SQLite and, when it
is reachable, PostgreSQL. The ratio is what durability and exactly-once bookkeeping cost.
Each variant runs ``--rounds`` times, interleaved (load on a shared machine swings all alike);
the table shows the median and the spread. Each outbox variant runs in a child process (store
set up, then the timed run); ``--compare DIR`` adds the outbox rows of another checkout's
``monitor`` (say, ``/tmp/before``, a ``git archive`` of main before a change) in the same rounds.

    python -m bench.deliver_outbox [N] [--rounds 3] [--compare DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.loopback import child_env
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


async def _outbox(db_url: str, hook_url: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one delivery run."""
    engine = create_db_engine(db_url)
    channel = build_channel("hook", "webhook", {"url": hook_url, "secret": "s"})
    cpu, start = time.process_time(), time.perf_counter()
    report = await Deliverer(engine, {"hook": channel}).run()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    engine.dispose()
    assert report.sent > 0
    return took, cpu


ROOT = Path(__file__).resolve().parent.parent


def _child(db_url: str, hook: str, n: int, root: Path) -> tuple[float, float]:
    """(wall, CPU) seconds the outbox of ``root``'s monitor took, set up and run in a process of
    its own (started outside the repository, so ``root`` comes first on its path)."""
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-m", "bench.deliver_outbox", str(n), "--child", db_url, hook],
                             cwd=cwd, env=child_env(root, ROOT), capture_output=True, text=True, check=False, timeout=600)
    if out.returncode:
        raise SystemExit(f"outbox run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["cpu"])


def _round(hook: str, n: int, roots: dict[str, Path]) -> dict[str, tuple[float, float]]:
    cpu = time.process_time()
    wall = asyncio.run(_baseline(hook, n))
    took = {"plain POSTs (baseline)": (wall, time.process_time() - cpu)}
    for label, root in roots.items():
        with tempfile.TemporaryDirectory() as tmp:
            took[f"outbox on SQLite{label}"] = _child(f"sqlite:///{Path(tmp) / 'bench.db'}", hook, n, root)
        pg = create_database()
        if pg:
            try:
                took[f"outbox on PostgreSQL{label}"] = _child(pg[0], hook, n, root)
            finally:
                drop_database(pg[1])
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, nargs="?", default=300, help="alerts per variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="also run the outbox of another checkout's monitor (e.g. /tmp/before) in each round")
    ap.add_argument("--child", nargs=2, metavar=("DB_URL", "HOOK_URL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n
    if args.child:
        db_url, hook_url = args.child
        _add(db_url, n)
        # A daemon has loaded the fetcher (it polls) and the ingest stages (stories, NumPy) by the
        # time an alert exists: a fresh process would time their import instead of the outbox.
        import monitor.fetch.client  # noqa: F401
        import monitor.story.stories  # noqa: F401
        took, cpu = asyncio.run(_outbox(db_url, hook_url))
        print(json.dumps({"seconds": took, "cpu": cpu}))
        return
    roots = {"": ROOT, **({f" [{args.compare.name}]": args.compare.resolve()} if args.compare else {})}
    srv, hook = _serve()
    rounds = [_round(hook, n, roots) for _ in range(args.rounds)]
    srv.shutdown()
    print(f"{n} alerts to a loopback webhook ({_Hook.count} requests received), "
          f"{args.rounds} rounds; load {os.getloadavg()[0]:.1f}")
    print("CPU: the sending process's (the baseline's includes the receiver's threads, which share it)")
    print(f"{'variant':40} {'seconds':>8} {'alerts/s':>9} {'CPU ms/alert':>13} {'rate vs baseline':>17} {'(min-max)':>14}")
    base = "plain POSTs (baseline)"
    for name in rounds[0]:
        # Each round's rate against that round's baseline: load swings between rounds more
        # than within one.
        ratios = sorted(r[base][0] / r[name][0] for r in rounds)
        took = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds) / n * 1000
        print(f"{name:40} {took:8.2f} {n / took:9.0f} {cpu:13.2f} {statistics.median(ratios):16.2f}x "
              f"{ratios[0]:6.2f}-{ratios[-1]:.2f}x")


if __name__ == "__main__":
    main()
