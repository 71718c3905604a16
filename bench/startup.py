"""Benchmark: start-up time of the command line and of the daemon, against bare Python.

    python -m bench.startup [--runs 3] [--compare CHECKOUT]

Each row is a fresh process, timed from outside, ``--runs`` times (interleaved, so a burst of
load from other work on the machine hits every row alike), after one warm-up run of each command
with bytecode caching on (as after ``pip install``):

- ``python -c pass`` and ``python -c "import httpx, feedparser"``: the baselines (the interpreter,
  and the two libraries any feed reader needs).
- ``monitor --help``.
- ``monitor check-config`` on the bundled ``config.toml`` (its ``${...}`` secrets set to dummy
  values): loads it and runs every stage's checks, including the sentence-model check its
  ``about()`` rule needs.
- ``monitor run``, to the first request reaching a loopback feed server: a fresh SQLite database,
  one feed, a keyword rule, a webhook channel, everything else default ("keyword rule"); the same
  again on that database with its source due ("restart": no migrations to apply); and the
  bundled ``config.toml`` with its five sources pointed at the loopback server ("bundled config":
  its ``about()`` rule makes the daemon load the sentence model).

Every command runs in a production-like venv (``bench.prodenv``: monitor's runtime dependencies
only, linked from this venv) unless ``--env dev``: the dev extras change what start-up imports
(httpcore imports trio when it is installed: ~60 ms), and a user's install has none of them. The
baselines run in the same venv as the daemon.

``--compare CHECKOUT`` adds the monitor rows for another checkout of the code (e.g. ``git archive
main | tar -x -C /tmp/before``), run by the same interpreter in the same loop: a before/after in
one run.

Printed: wall ms and CPU ms (user+sys; for ``run`` the daemon's CPU when the first request
arrives, read from /proc), median of the runs with min..max, and both ratios to
``import httpx, feedparser``. CPU time is shown because the machine is shared: wall time grows
with other people's load, CPU time much less. Targets (issue 15): ``--help`` <= 250 ms,
``check-config`` <= 400 ms, first poll <= 500 ms after start.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import loopback, prodenv
from bench.loopback import cpu_seconds, daemon_config

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"SMTP_HOST": "smtp.example.org", "SMTP_USERNAME": "alerts", "SMTP_PASSWORD": "dummy",
           "ALERT_EMAIL_FROM": "monitor@example.org", "ALERT_EMAIL_TO": "analyst@example.org",
           "WEBHOOK_URL": "https://hooks.example.org/news", "SLACK_WEBHOOK_URL": "https://hooks.example.org/s"}
FEED = (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        b"<link>http://127.0.0.1/</link><description>d</description></channel></rss>")
RUN_TIMEOUT = 60.0


def monitor_cmd(python: str = sys.executable) -> list[str]:
    """The installed ``monitor`` script next to ``python`` (what a user runs), else -m."""
    script = Path(python).parent / "monitor"
    return [str(script)] if script.exists() else [python, "-m", "monitor"]


def _env(root: Path = ROOT) -> dict[str, str]:
    """The secrets the bundled config names, the checkout ``root`` first on the path, and bytecode
    caching on (``pip install`` compiles it; without it every run compiles monitor's source
    again, which is not what a user waits for)."""
    return {**loopback.child_env(root), **SECRETS}


def timed(cmd: list[str], cwd: Path, root: Path = ROOT) -> tuple[float, float]:
    """(wall ms, CPU ms of the process and its children) of one command that must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000


class FeedServer:
    """A loopback HTTP server that serves an empty RSS feed at any path and notes when the first
    request arrived."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.arrived = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if server.first is None:
                    server.first = time.perf_counter()
                    server.arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(FEED)))
                self.end_headers()
                self.wfile.write(FEED)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.first = None
        self.arrived.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def keyword_config(d: Path, port: int) -> Path:
    path = d / "config.toml"
    path.write_text(daemon_config(f"sqlite:///{d / 'm.db'}", [("feed", f"http://127.0.0.1:{port}/feed.xml")],
                                  interval="5m", rule=("officials", "government OR minister OR president"),
                                  hook=f"http://127.0.0.1:{port}/hook"), encoding="utf-8")
    return path


def bundled_config(d: Path, port: int | None = None) -> Path:
    """The bundled config.toml (and its rules/ files) in ``d``; with ``port``, its sources on
    loopback and its database in ``d``."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    shutil.copytree(ROOT / "rules", d / "rules")
    if port is not None:
        n = iter(range(100))
        text = re.sub(r'(?m)^url = "https://[^"]+/(rss|feed)[^"]*"',
                      lambda m: f'url = "http://127.0.0.1:{port}/feed{next(n)}.xml"', text)
        text = text.replace("allow_private_networks = false", "allow_private_networks = true")
        text = re.sub(r'(?m)^database = "[^"]*"', f'database = "sqlite:///{d / "m.db"}"', text)
    path = d / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def due_again(db: Path) -> None:
    """The database of a daemon that has stopped, its source due now: a restart (migrations done)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE source SET next_poll_at = NULL, lease_owner = NULL, lease_expires_at = NULL")


def first_poll(config: Path, server: FeedServer, root: Path = ROOT,
               python: str = sys.executable) -> tuple[float, float]:
    """(ms from starting ``monitor run`` to the first request at the feed server, the daemon's
    CPU ms by then)."""
    server.reset()
    t0 = time.perf_counter()
    proc = subprocess.Popen([*monitor_cmd(python), "--config", str(config), "run"], cwd=config.parent, env=_env(root),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not server.arrived.wait(RUN_TIMEOUT):
            proc.terminate()
            err = proc.communicate(timeout=30)[1].decode(errors="replace")
            sys.exit(f"monitor run: no request within {RUN_TIMEOUT:g} s:\n{err[-3000:]}")
        cpu = cpu_seconds(proc.pid) * 1000
        assert server.first is not None
        return (server.first - t0) * 1000, cpu
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", type=Path, metavar="CHECKOUT",
                    help="also time the monitor of another checkout (say, main before a change) in the same run")
    ap.add_argument("--env", choices=("prod", "dev"), default="prod",
                    help="prod: a venv of the runtime dependencies only (default); dev: this venv")
    args = ap.parse_args()
    roots = {"": ROOT, **({f" [{args.compare.name}]": args.compare.resolve()} if args.compare else {})}
    server = FeedServer()
    rows: dict[str, list[tuple[float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            py = str(prodenv.build(d / "venv")) if args.env == "prod" else sys.executable
            (d / "check").mkdir()
            checked = bundled_config(d / "check")
            commands: dict[str, tuple[list[str], Path]] = {
                "python -c pass": ([py, "-c", "pass"], ROOT),
                "python -c 'import httpx, feedparser'": ([py, "-c", "import httpx, feedparser"], ROOT),
            }
            for label, root in roots.items():
                commands[f"monitor --help{label}"] = ([*monitor_cmd(py), "--help"], root)
                commands[f"monitor check-config{label}"] = ([*monitor_cmd(py), "--config", str(checked), "check-config"],
                                                            root)
            for cmd, root in commands.values():  # warm-up: bytecode written, files in the page cache
                timed(cmd, d, root)
            for run in range(args.runs):
                for name, (cmd, root) in commands.items():
                    rows.setdefault(name, []).append(timed(cmd, d, root))
                for label, root in roots.items():
                    for kind, make in (("keyword rule", keyword_config), ("bundled config", bundled_config)):
                        where = d / f"run{run}-{kind.split()[0]}{label.strip(' []')}"
                        where.mkdir()
                        config = make(where, server.port)
                        rows.setdefault(f"run -> first poll ({kind}){label}", []).append(
                            first_poll(config, server, root, py))
                        if kind == "keyword rule":
                            due_again(where / "m.db")
                            rows.setdefault(f"run -> first poll (keyword rule, restart){label}", []).append(
                                first_poll(config, server, root, py))
    finally:
        server.close()

    def stat(vals: list[float]) -> str:
        return f"{statistics.median(vals):,.0f} ({min(vals):,.0f}..{max(vals):,.0f})"

    base = rows["python -c 'import httpx, feedparser'"]
    base_wall, base_cpu = statistics.median(w for w, _ in base), statistics.median(c for _, c in base)
    print(f"{args.runs} runs each, median (min..max); {args.env} venv; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; x: median / median of import httpx, feedparser")
    width = max(len(n) for n in rows)
    print(f"| {'what':<{width}} | {'wall ms':>22} | {'CPU ms':>22} | {'wall x':>6} | {'CPU x':>6} |")
    print("|" + "|".join("-" * w for w in (width + 2, 24, 24, 8, 8)) + "|")
    for name, rs in rows.items():
        walls, cpus = [w for w, _ in rs], [c for _, c in rs]
        print(f"| {name:<{width}} | {stat(walls):>22} | {stat(cpus):>22} "
              f"| {statistics.median(walls) / base_wall:>6.2f} | {statistics.median(cpus) / base_cpu:>6.2f} |")


if __name__ == "__main__":
    main()
