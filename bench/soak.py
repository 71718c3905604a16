"""Soak: the real daemon against many loopback feeds that keep publishing, for minutes.

Every feed publishes a new article every ``--publish`` seconds (feeds staggered evenly); every
article matches a rule and its alert goes to a loopback webhook. Measured:

- latency from an article's publication to its alert's arrival at the webhook (p50, p95, max),
  split into the wait for the next poll (the baseline: what polling every ``--interval`` costs
  by itself, measured in the same run) and what the daemon adds after the poll;
- the daemon's CPU and resident memory over time (memory must stay flat), and the outbox's
  pending count and oldest age from its own /metrics.

Target: p95 latency under the poll interval plus 10 s; memory flat (last-quarter RSS / first-
quarter RSS near 1).

    python -m bench.soak                          # 500 feeds, 60 s interval, 10 minutes
    python -m bench.soak --duration 120 --feeds 100   # a shorter run
    python -m bench.soak --database postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx

from bench.loopback import cpu_seconds, daemon_config
from tests.servers import Page, Request, Site, free_port

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["minister", "parliament", "budget", "harvest", "railway", "election", "court", "energy",
         "border", "summit", "pipeline", "drought", "festival", "museum", "bank", "tariff", "reform",
         "hospital", "school", "bridge", "satellite", "export", "wheat", "uranium", "steppe",
         "delegation", "treaty", "council", "province", "mayor", "airline"]


class Newsroom:
    """``feeds`` feeds; feed i publishes item k at t0 + phase_i + k * every."""

    def __init__(self, site: Site, feeds: int, every: float, keep: int = 5):
        self.site, self.feeds, self.every, self.keep = site, feeds, every, keep
        self.t0 = time.time()
        self.lock = threading.Lock()
        self.polls: dict[int, list[float]] = {i: [] for i in range(feeds)}
        self.arrivals: dict[str, float] = {}  # article URL -> first webhook arrival (wall clock)
        self.repeats = 0
        for i in range(feeds):
            site.pages[f"/feed/{i}.xml"] = self._feed_handler(i)
        site.pages["/hook"] = self.hook

    def _feed_handler(self, i: int) -> Callable[[Request], Page]:
        return lambda req: self.feed(i)

    def published(self, i: int, k: int) -> float:
        return self.t0 + i * self.every / self.feeds + k * self.every

    def url(self, i: int, k: int) -> str:
        return self.site.url(f"/a/{i}/{k}")

    def feed(self, i: int) -> Page:
        now = time.time()
        with self.lock:
            self.polls[i].append(now)
        last = int((now - self.t0 - i * self.every / self.feeds) // self.every)
        items = []
        for k in range(max(0, last - self.keep + 1), last + 1):
            rnd = random.Random(i * 1_000_003 + k)
            text = (f"Report {i}-{k}: {' '.join(rnd.choice(WORDS) for _ in range(60))}. Officials said "
                    f"Kazakhstan could act as a mediator in talks number {rnd.randint(1, 10**9)}.")
            # The article's page, for --full-text runs (same statement as the feed's summary).
            self.site.pages.setdefault(f"/a/{i}/{k}", Page(
                f"<html><body><article><h1>Feed {i} item {k}</h1><p>{text}</p></article></body></html>".encode()))
            items.append(f"<item><title>Feed {i} item {k}</title><link>{self.url(i, k)}</link>"
                         f"<guid>{i}-{k}</guid><pubDate>{format_datetime(datetime.fromtimestamp(self.published(i, k), UTC))}"
                         f"</pubDate><description>{text}</description></item>")
        body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>'
                f"<link>{self.site.base}/</link><description>x</description>{''.join(items)}</channel></rss>")
        return Page(body.encode(), "application/rss+xml")

    def hook(self, req: Request) -> Page:
        now = time.time()
        url = json.loads(req.body).get("url", "")
        with self.lock:
            if url in self.arrivals:
                self.repeats += 1
            else:
                self.arrivals[url] = now
        return Page(b'{"ok": true}', "application/json")


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, resident MiB) of a process, from /proc."""
    cpu = cpu_seconds(pid)
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return cpu, rss_kb / 1024


def metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def write_config(path: Path, database: str, site: Site, feeds: int, interval: float, port: int,
                 full_text: bool) -> None:
    path.write_text(daemon_config(
        database, [(f"feed-{i}", site.url(f"/feed/{i}.xml")) for i in range(feeds)], interval=f"{interval:g}s",
        rule=("kz", "Kazakhstan AND mediator"), hook=site.url("/hook"),
        monitor='delivery_interval = "5s"\nretry_delay = "5s"\n',
        fetch='timeout = "10s"\nper_host = 64\nconcurrency = 64\n',
        source=f"full_text = {str(full_text).lower()}\n", extra=f'[http]\nlisten = "127.0.0.1:{port}"\n'),
        encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of measurement (default 600)")
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--interval", type=float, default=60, help="poll interval of every feed, seconds")
    ap.add_argument("--publish", type=float, default=60, help="each feed publishes every N seconds")
    ap.add_argument("--database", default=None, help="default: a SQLite file in a temporary folder")
    ap.add_argument("--full-text", action="store_true", help="fetch and extract every article page too")
    ap.add_argument("--sample", type=float, default=10, help="seconds between resource samples")
    args = ap.parse_args(argv)

    site = Site().start()
    news = Newsroom(site, args.feeds, args.publish)
    tmp = Path(tempfile.mkdtemp(prefix="monitor-soak-"))
    database = args.database or f"sqlite:///{tmp / 'monitor.db'}"
    port = free_port()
    cfg = tmp / "config.toml"
    write_config(cfg, database, site, args.feeds, args.interval, port, args.full_text)
    log = tmp / "monitor.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cfg), "run"],
                                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=out)
    print(f"soak: {args.feeds} feeds, poll every {args.interval:g}s, publish every {args.publish:g}s, "
          f"{args.duration:g}s, {database.split(':')[0]}; daemon pid {proc.pid}, log {log}", flush=True)
    samples: list[tuple[float, float, float, float | None, float | None]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "monitor running" not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                print(log.read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.2)
        start_wall, start = time.time(), time.monotonic()
        last_cpu, last_t = proc_sample(proc.pid)[0], start
        print(f"{'t (s)':>6} {'CPU %':>6} {'RSS MiB':>8} {'pending':>8} {'oldest s':>9} {'delivered':>10}")
        while time.monotonic() - start < args.duration:
            time.sleep(args.sample)
            now = time.monotonic()
            cpu, rss = proc_sample(proc.pid)
            try:
                m = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                pending, oldest = metric(m, "monitor_outbox_pending"), metric(m, "monitor_outbox_oldest_pending_age_seconds")
            except httpx.HTTPError:
                pending = oldest = None
            share = 100 * (cpu - last_cpu) / (now - last_t)
            last_cpu, last_t = cpu, now
            samples.append((now - start, share, rss, pending, oldest))
            print(f"{now - start:6.0f} {share:6.1f} {rss:8.1f} {pending if pending is not None else '-':>8} "
                  f"{oldest if oldest is not None else '-':>9} {len(news.arrivals):>10}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        site.stop()

    # Articles published after the first interval (the start-up burst is not steady state) and
    # at least one interval + 10 s before the end (they had their chance to arrive).
    end_wall = start_wall + args.duration
    totals, waits, added = [], [], []
    missing = 0
    for i in range(args.feeds):
        polls = news.polls[i]
        k = 0
        while (pub := news.published(i, k)) < end_wall - args.interval - 10:
            if pub >= start_wall + args.interval:
                arrived = news.arrivals.get(news.url(i, k))
                first_poll = next((p for p in polls if p >= pub), None)
                if arrived is None:
                    missing += 1
                else:
                    totals.append(arrived - pub)
                    if first_poll is not None:
                        waits.append(first_poll - pub)
                        added.append(arrived - first_poll)
            k += 1
    target = args.interval + 10
    q = max(1, len(samples) // 4)
    rss_first = statistics.median(s[2] for s in samples[:q]) if samples else float("nan")
    rss_last = statistics.median(s[2] for s in samples[-q:]) if samples else float("nan")
    cpu_mean = statistics.mean(s[1] for s in samples[1:]) if len(samples) > 1 else float("nan")
    oldest_max = max((s[4] for s in samples if s[4] is not None), default=float("nan"))
    print()
    print(f"{'':34} {'p50':>8} {'p95':>8} {'max':>8}")
    for name, vals in (("publication -> alert delivered (s)", totals),
                       ("  wait for the next poll (baseline)", waits),
                       ("  added by the daemon after the poll", added)):
        print(f"{name:34} {pct(vals, 50):8.1f} {pct(vals, 95):8.1f} {max(vals, default=float('nan')):8.1f}")
    print()
    print(f"articles measured {len(totals)}, not delivered {missing}, delivered twice {news.repeats}")
    print(f"p95 latency / target ({target:g} s): {pct(totals, 95) / target:.2f}  "
          f"({'OK' if pct(totals, 95) < target else 'MISSED'})")
    print(f"p95 latency / baseline p95 (the poll wait alone): {pct(totals, 95) / max(pct(waits, 95), 1e-9):.2f}")
    print(f"RSS last quarter / first quarter: {rss_last / rss_first:.2f}  ({rss_first:.0f} -> {rss_last:.0f} MiB)")
    print(f"daemon CPU: {cpu_mean:.0f}% of one core on average; outbox oldest pending max {oldest_max:.1f} s")
    return 0 if totals and not missing and pct(totals, 95) < target else 2


if __name__ == "__main__":
    sys.exit(main())
