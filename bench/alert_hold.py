"""Benchmark: alerts per event when a daemon meets many reports of one event at once.

    python -m bench.alert_hold [--runs 3] [--holds 0s,1m] [--compare DIR]

The 88 reports of ``../shared/data/stories`` (33 events, 13 languages) are served from loopback
as one RSS feed per outlet (53 feeds, the reports' full text in the feed), and a daemon
(``monitor run``, the sentence model loaded for event stories) polls them all at once on a new
SQLite database, with the bundled ``config.toml``'s entities and rule (``kz-mediation``: the seed
statement by meaning) alerting a webhook on loopback: the first poll of a backlog, where reports of
one event arrive in any order and can start several stories that merge later. Each run ends when
every report is stored and no delivery is still due; then it counts, per ``alert_hold``: the
stories of the seed event, the alerts stored, the webhook posts received (what an analyst reads)
and the deliveries merged (``monitor.alerts.settle``), median and range over the runs, and every
run's posts by event. ``alert_max_age`` is lifted: the corpus is dated 2025. ``--compare DIR``
runs another checkout's ``monitor`` package (``git archive <commit> monitor | tar -x -C DIR``)
alongside, with its own defaults (a code without ``alert_hold`` gets no such line).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "stories" / "corpus.jsonl"


def _records() -> list[dict[str, Any]]:
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} is missing: this bench needs ../shared/data/stories")
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _feeds(records: list[dict[str, Any]], base: str) -> dict[str, bytes]:
    """Path -> RSS document: one feed per outlet, its reports newest first, each item linking to
    the report's loopback URL and carrying its text."""
    outlets: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        outlets.setdefault(r["outlet"], []).append(r)
    feeds = {}
    for i, (outlet, rs) in enumerate(sorted(outlets.items())):
        items = "".join(
            f"<item><title>{escape(r['title'])}</title><link>{base}/a/{r['id']}</link><guid>{r['id']}</guid>"
            f"<pubDate>{format_datetime(datetime.fromisoformat(r['published']))}</pubDate>"
            f"<description>{escape(''.join(f'<p>{p}</p>' for p in r['text'].split(chr(10) * 2)))}</description>"
            f"</item>" for r in sorted(rs, key=lambda r: r["published"], reverse=True))
        feeds[f"/feed/{i}.xml"] = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                                   f"<title>{escape(outlet)}</title><link>{base}/</link>{items}</channel></rss>"
                                   ).encode()
    return feeds


class _Server:
    """The feeds and the webhook receiver on one loopback port, in threads of this process."""

    def __init__(self, records: list[dict[str, Any]]):
        self.posts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = server.feeds.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    server.posts.append(json.loads(data))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.feeds = _feeds(records, self.base)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return "[" + ", ".join(_toml(x) for x in v) + "]"


def _config(path: Path, server: _Server, hold: str | None) -> None:
    bundled = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    lines = [f'[monitor]\ndatabase = "sqlite:///{path.parent / "m.db"}"\n'
             + (f'alert_hold = "{hold}"\n' if hold is not None else "")
             + 'alert_max_age = "3650d"\nclaim_interval = "0.2s"\n',
             "[fetch]\nallow_private_networks = true\nper_host = 60\n"]
    for i in range(len(server.feeds)):
        lines.append(f'[[source]]\nname = "outlet {i}"\nurl = "{server.base}/feed/{i}.xml"\n'
                     'interval = "1h"\nfull_text = false\n')
    for name, entity in bundled.get("entity", {}).items():
        lines.append(f"[entity.{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in entity.items()))
    for rule in bundled["rule"]:
        rule = {**rule, "channels": ["hook"]}
        for key in ("examples", "counterexamples"):  # files relative to the bundled config
            rule[key] = [str(ROOT / f) if f.endswith(".txt") else f for f in rule.get(key, [])]
        lines.append("[[rule]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in rule.items()))
    lines.append(f'[[channel]]\nname = "hook"\ntype = "webhook"\nurl = "{server.base}/hook"\n')
    path.write_text("\n".join(lines), encoding="utf-8")


def _settled(db: Path, n: int) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            stored = conn.execute("SELECT count(*) FROM article").fetchone()[0]
            due = conn.execute("SELECT count(*) FROM delivery WHERE status IN ('pending', 'sending')").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return False
    return bool(stored == n and due == 0)


def _run(records: list[dict[str, Any]], hold: str | None, code: Path = ROOT) -> dict[str, Any]:
    server = _Server(records)
    event = {f"{server.base}/a/{r['id']}": r["event"] for r in records}
    seed_ids = {r["id"] for r in records if r["event"] == "seed"}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        _config(cfg, server, hold)
        db = Path(tmp) / "m.db"
        log = (Path(tmp) / "log").open("w")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cfg), "run"], cwd=tmp,
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 600
            while not _settled(db, len(records)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the daemon stopped or took too long:\n" + (Path(tmp) / "log").read_text()[-3000:])
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            log.close()
        with sqlite3.connect(db) as conn:
            alerts = conn.execute("SELECT count(*) FROM alert WHERE kind = 'match'").fetchone()[0]
            merged = conn.execute("SELECT count(*) FROM delivery WHERE status = 'merged'").fetchone()[0]
            seed_alerts = conn.execute(
                "SELECT count(*) FROM alert JOIN match ON match.id = alert.match_id "
                "JOIN article ON article.id = match.article_id WHERE alert.kind = 'match' AND article.guid IN ("
                + ",".join("?" * len(seed_ids)) + ")", sorted(seed_ids)).fetchone()[0]
            seed_stories = len({s for (guid, s) in conn.execute("SELECT guid, story_id FROM article")
                                if guid in seed_ids})
    server.http.shutdown()
    posts = Counter(event.get(p.get("url", ""), "?") for p in server.posts if p.get("kind") == "alert")
    return {"alerts": alerts, "posts": sum(posts.values()), "merged": merged, "seed_stories": seed_stories,
            "seed_alerts": seed_alerts, "by_event": dict(posts)}


def _cell(xs: list[int]) -> str:
    return f"{statistics.median(xs):g} ({min(xs)}..{max(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--holds", default="0s,1m", help="alert_hold values to compare, comma-separated")
    ap.add_argument("--compare", type=Path, help="another checkout's monitor package, run alongside")
    args = ap.parse_args()
    records = _records()
    scenarios: dict[str, tuple[str | None, Path]] = {h: (h, ROOT) for h in args.holds.split(",")}
    if args.compare:
        scenarios[f"before ({args.compare})"] = (None, args.compare.resolve())
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in scenarios}
    for _ in range(args.runs):  # interleaved
        for name, (hold, code) in scenarios.items():
            results[name].append(_run(records, hold, code))
    print(f"{len(records)} reports, {len({r['outlet'] for r in records})} feeds polled at once; {args.runs} runs each, "
          "median (min..max)")
    print("| alert_hold | seed event's stories | alerts stored (of seed reports) | webhook posts | deliveries merged |")
    print("|---|---|---|---|---|")
    for h, rs in results.items():
        print(f"| {h} | {_cell([r['seed_stories'] for r in rs])} | {_cell([r['alerts'] for r in rs])} "
              f"({_cell([r['seed_alerts'] for r in rs])}) "
              f"| {_cell([r['posts'] for r in rs])} | {_cell([r['merged'] for r in rs])} |")
    for h, rs in results.items():
        print(f"posts by event, alert_hold {h}: " + "; ".join(
            ", ".join(f"{e} {n}" for e, n in sorted(r["by_event"].items())) for r in rs))


if __name__ == "__main__":
    main()
