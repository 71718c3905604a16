"""What the durable outbox costs: alerts per second to a loopback webhook, outbox vs plain POSTs.

Baseline: the same JSON bodies (rendered and signed by the webhook channel, from the very alerts
the outbox sends: made by the same helper in a scratch SQLite store) POSTed one after another by
one plain httpx client (its connection kept open, as a plain script would), no database, in a
child process as each outbox runs, to the same receiver in this process. Until issue 15's third
session the baseline sent a shorter body of its own (no published time, speaker or terms: ~0.08 ms
to build against the alerts' ~0.2 ms) from this process, beside the receiver's threads; it is still
run that way, as "short body", and the column "vs short body" gives each rate against it, for
comparison with earlier numbers. The mean body each variant sent, as the receiver counted it, is
printed with the table.
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
from collections.abc import Callable
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
    received = 0  # body bytes, all variants (each round's difference is one variant's)
    # As receivers in production do (nginx, uvicorn, ...): without it the answer's body waits
    # for the client's delayed ACK (40 ms) on a kept-alive connection, and the bench would
    # measure that instead of the outbox.
    disable_nagle_algorithm = True
    count = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        type(self).received += len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
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


SHORT = {"kind": "match", "rule": "kz", "title": "t", "url": "u", "outlet": "o", "article_id": 1,
         "statements": [{"text": "Kazakhstan is a venue for negotiations.", "highlights": [[16, 21]]}]}


def _alerts(n: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(alert id, delivery key, payload) of the ``n`` alerts each outbox child makes (``_add``),
    made the same way in a scratch SQLite store: what the outbox sends, for the baseline to send."""
    from sqlalchemy import text

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'alerts.db'}"
        _add(url, n)
        engine = create_db_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT d.alert_id, d.key, a.payload FROM delivery d "
                                     "JOIN alert a ON a.id = d.alert_id ORDER BY d.id")).all()
        engine.dispose()
    return [(int(i), str(k), json.loads(p)) for i, k, p in rows]


async def _baseline(hook_url: str, alerts: list[tuple[int, str, dict[str, Any]]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of the plain POSTs, timed as ``_outbox`` is:
    from after the channel is built."""
    channel = build_channel("hook", "webhook", {"url": hook_url, "secret": "s"})
    assert isinstance(channel, WebhookChannel)
    cpu, start = time.process_time(), time.perf_counter()
    async with httpx.AsyncClient() as client:  # one client, its connection kept, as a plain script
        for alert_id, key, payload in alerts:
            body, headers = channel.build(AlertMessage.from_payload(alert_id, key, payload))
            (await client.post(hook_url, content=body, headers=headers)).raise_for_status()
    return time.perf_counter() - start, time.process_time() - cpu


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


PLAIN = "plain"  # the child's "database" that runs the baseline instead of an outbox


def _child(db_url: str, hook: str, n: int, root: Path = ROOT) -> tuple[float, float]:
    """(wall, CPU) seconds the outbox of ``root``'s monitor took (or, for ``PLAIN``, the plain
    POSTs of the same alerts), set up and run in a process of its own (started outside the
    repository, so ``root`` comes first on its path)."""
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-m", "bench.deliver_outbox", str(n), "--child", db_url, hook],
                             cwd=cwd, env=child_env(root, ROOT), capture_output=True, text=True, check=False, timeout=600)
    if out.returncode:
        raise SystemExit(f"outbox run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["cpu"])


BASE = "plain POSTs (baseline)"
SHORT_BASE = "plain POSTs, short body"


def _round(hook: str, n: int, roots: dict[str, Path], sizes: dict[str, list[int]]) -> dict[str, tuple[float, float]]:
    took: dict[str, tuple[float, float]] = {}

    def run(name: str, variant: Callable[..., tuple[float, float]], *args: Any) -> None:
        received = _Hook.received
        took[name] = variant(*args)
        sizes.setdefault(name, []).append(_Hook.received - received)

    def plain(sent: list[tuple[int, str, dict[str, Any]]]) -> tuple[float, float]:
        return asyncio.run(_baseline(hook, sent))

    # The baseline in a child process, as each outbox is: the same receiver in another process
    # for both (in-process, the sender and the receiver's threads took turns on one interpreter).
    run(BASE, _child, PLAIN, hook, n)
    run(SHORT_BASE, plain, [(i, f"kz:{i}:hook", SHORT) for i in range(n)])
    for label, root in roots.items():
        with tempfile.TemporaryDirectory() as tmp:
            run(f"outbox on SQLite{label}", _child, f"sqlite:///{Path(tmp) / 'bench.db'}", hook, n, root)
        pg = create_database()
        if pg:
            try:
                run(f"outbox on PostgreSQL{label}", _child, pg[0], hook, n, root)
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
    if args.child and args.child[0] == PLAIN:
        took, cpu = asyncio.run(_baseline(args.child[1], _alerts(n)))
        print(json.dumps({"seconds": took, "cpu": cpu}))
        return
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
    sizes: dict[str, list[int]] = {}
    rounds = [_round(hook, n, roots, sizes) for _ in range(args.rounds)]
    srv.shutdown()
    print(f"{n} alerts to a loopback webhook ({_Hook.count} requests received), "
          f"{args.rounds} rounds; load {os.getloadavg()[0]:.1f}")
    print("CPU: the sending process's (the short-body POSTs' includes the receiver's threads, which share it)")
    print(f"{'variant':40} {'seconds':>8} {'alerts/s':>9} {'CPU ms/alert':>13} {'rate vs baseline':>17} "
          f"{'(min-max)':>14} {'vs short body':>14} {'body bytes':>11}")
    for name in rounds[0]:
        # Each round's rate against that round's baseline: load swings between rounds more
        # than within one.
        ratios = sorted(r[BASE][0] / r[name][0] for r in rounds)
        short = statistics.median(r[SHORT_BASE][0] / r[name][0] for r in rounds)
        took = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds) / n * 1000
        print(f"{name:40} {took:8.2f} {n / took:9.0f} {cpu:13.2f} {statistics.median(ratios):16.2f}x "
              f"{ratios[0]:6.2f}-{ratios[-1]:.2f}x {short:13.2f}x {statistics.median(sizes[name]) / n:11.0f}")


if __name__ == "__main__":
    main()
