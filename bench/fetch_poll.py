"""Benchmark: polling 1,000 feeds on a loopback server with the default limits.

    python -m bench.fetch_poll [--feeds 1000] [--hosts 100] [--rounds 3] [--compare DIR]

A fast asyncio HTTP server runs in its own process and serves the feeds on ``--hosts`` loopback
addresses (127.0.0.1, 127.0.0.2, ...: separate hosts for the per-host limit, as real outlets
are). Each scenario runs in a fresh child process, so its peak RSS is its own:

- ``baseline``: a bare httpx client doing the same conditional GETs with the same limits
  (per host 2, overall 20), no parsing, no database: what HTTP alone costs here.
- ``all 304``: the real ``Pipeline.poll`` path (SSRF guard, validators sent back, the next poll
  time computed and written to SQLite) from the steady state: every source has its ETag. The
  process starts as the daemon does: the database upgraded, the sources synced, what start-up
  built frozen (``monitor.collector``), then one round of polls, timed.
- ``mix``: the same, but one feed in five answers 200 with its full feed (10 entries, parsed,
  each checked against the stored articles; all already stored, so nothing new is written).
- ``304 PG``: ``all 304`` on PostgreSQL (a fresh database at MONITOR_TEST_PG), when reachable.

``--compare DIR`` adds the ``all 304`` and ``304 PG`` rows for another checkout's ``monitor``
(say, ``/tmp/before``, a ``git archive`` of main before a change) in each round.

Prints wall time, polls per second, CPU seconds per poll (client process, timed round only),
peak RSS of the whole process, the rate as a ratio of the baseline's, and the baseline's CPU per
poll over the scenario's (column ``baseline CPU/this``, below 1 when a poll costs more than the
bare client's; what the rate's ratio would be if both were CPU-bound alone: on a
loaded machine the rate swings with the load, the CPU a poll needs much less).
Targets on the 2-core machine: >= 200 polls/s when all answer 304; < 150 MB resident.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loopback
from bench.pg import create_database, drop_database

ITEMS = 10
SCENARIOS = ("baseline", "all 304", "mix", "304 PG")


# -- the server ------------------------------------------------------------------------------
def _feed(i: int) -> bytes:
    items = "".join(
        f"<item><title>Feed {i} story {k}: a headline of typical length for a news item</title>"
        f"<link>http://example.org/{i}/story-{k}</link><guid>feed{i}-story{k}</guid>"
        f"<pubDate>Wed, 24 Sep 2025 07:{k:02d}:00 GMT</pubDate>"
        f"<description>{'Some words of the summary. ' * 12}</description></item>" for k in range(ITEMS))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed {i}</title>'
            f"<link>http://example.org/{i}/</link><description>d</description>{items}</channel></rss>").encode()


def serve(port: int, hosts: int) -> None:
    """Answer ``/<mode>/<i>.xml``: 304 when If-None-Match matches, except that in mode ``mix``
    every fifth feed always answers 200."""
    bodies: dict[int, bytes] = {}

    def respond(path: bytes, inm: bytes | None) -> bytes:
        try:
            _, mode, name = path.split(b"/", 2)
            i = int(name.split(b".")[0])
        except ValueError:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        etag = b'"v1-%d"' % i
        fresh = mode == b"mix" and i % 5 == 0
        if inm == etag and not fresh:
            return b"HTTP/1.1 304 Not Modified\r\nETag: " + etag + b"\r\nContent-Length: 0\r\n\r\n"
        body = bodies.get(i)
        if body is None:
            body = bodies[i] = _feed(i)
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: " + etag
                + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    loopback.serve(lambda method, path, headers: respond(path, headers.get(b"if-none-match")), hosts, port)


# -- the clients -----------------------------------------------------------------------------
def _urls(port: int, feeds: int, hosts: int, mode: str) -> list[str]:
    return [f"http://127.0.0.{i % hosts + 1}:{port}/{mode}/{i}.xml" for i in range(feeds)]


async def _baseline(urls: list[str]) -> tuple[int, float, float]:
    import httpx

    from monitor.config import FetchSettings

    s = FetchSettings()
    overall = asyncio.Semaphore(s.concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}
    limits = httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        async def one(url: str, etag: str | None) -> str | None:
            host = hosts.setdefault(url.split("/")[2], asyncio.Semaphore(s.per_host))
            async with host, overall:
                r = await client.get(url, headers={"If-None-Match": etag} if etag else {})
                return r.headers.get("etag")

        etags = await asyncio.gather(*(one(u, None) for u in urls))  # untimed: learn the ETags
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(u, e) for u, e in zip(urls, etags, strict=True)))
        return len(urls), time.perf_counter() - t0, time.process_time() - cpu0


def _steady_state(engine: Any, n: int) -> None:
    """The state earlier polls leave, written directly: every source has its ETag and its feed's
    entries are stored articles (ingesting 10,000 articles is other benchmarks' subject)."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select, update

    from monitor.parse.urls import canonical_url
    from monitor.store.models import Article, Source

    now = datetime.now(UTC)
    t = Source.__table__
    with engine.begin() as conn:
        ids = {name: sid for name, sid in conn.execute(select(t.c.name, t.c.id)).all()}
        for i in range(n):
            conn.execute(update(t).where(t.c.id == ids[f"feed {i}"]).values(etag=f'"v1-{i}"', last_success_at=now))
        conn.execute(insert(Article), [
            {"source_id": ids[f"feed {i}"], "guid": f"feed{i}-story{k}",
             "url": canonical_url(f"http://example.org/{i}/story-{k}"),
             "original_url": f"http://example.org/{i}/story-{k}", "title": "t", "text": "x", "published": now,
             "published_estimated": False, "full_text": False, "first_seen_at": now}
            for i in range(n) for k in range(ITEMS)])


def _config(urls: list[str], db: str) -> Any:
    from monitor.config import Config, FetchSettings, MonitorSettings, SourceConfig

    sources = tuple(SourceConfig(name=f"feed {i}", url=u, interval=300.0, full_text=False,
                                 allow_private_networks=True) for i, u in enumerate(urls))
    url = db if "://" in db else f"sqlite:///{db}"  # a PostgreSQL URL, or an SQLite file
    return Config(path=Path(tempfile.gettempdir()) / "config.toml", monitor=MonitorSettings(database=url),
                  fetch=FetchSettings(), sources=sources, rules=(), channels=())


def setup(urls: list[str], db: str) -> None:
    """Run in its own process, so the bulk insert's memory is not counted as polling's."""
    from monitor.pipeline import Pipeline
    from monitor.store.db import create_db_engine, upgrade

    config = _config(urls, db)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    Pipeline(config, engine).sync_sources()
    _steady_state(engine, len(urls))
    engine.dispose()


async def _pipeline(urls: list[str], db: str) -> tuple[int, float, float, float]:
    from monitor.pipeline import Pipeline
    from monitor.store.db import create_db_engine, upgrade

    config = _config(urls, db)
    engine = create_db_engine(config.database_url)
    upgrade(engine)  # as the daemon does at start (a no-op on an up-to-date database)
    p = Pipeline(config, engine)
    try:
        p.sync_sources()
        # As the daemon does once start-up is over (``Daemon.run``): what start-up imported and
        # built is moved out of the collector's reach. Without it, each full pass during the
        # round walked ~95,000 objects of the imports that a daemon never walks (two passes,
        # ~8 % of the round's CPU), which measured the bench's process, not the daemon's.
        from monitor import collector

        collector.freeze()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu0, t0 = time.process_time(), time.perf_counter()
        reports = await asyncio.gather(*(p.poll(sc, force=True) for sc in config.sources))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        bad = [r for r in reports if r.status == "error"]
        if bad:
            raise SystemExit(f"{len(bad)} polls failed, e.g. {bad[0].error}")
        if any(r.new_articles for r in reports):
            raise SystemExit("steady state incomplete: new articles were stored")
        return len(reports), wall, cpu, rss_before
    finally:
        await p.aclose()
        engine.dispose()


def child(scenario: str, port: int, feeds: int, hosts: int, db: str | None) -> None:
    urls = _urls(port, feeds, hosts, "mix" if scenario.endswith("mix") else "all304")
    if scenario.startswith("setup:"):
        assert db is not None
        setup(urls, db)
        return
    if scenario == "baseline":
        n, wall, cpu = asyncio.run(_baseline(urls))
        before = 0.0
    else:
        assert db is not None
        n, wall, cpu, before = asyncio.run(_pipeline(urls, db))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"scenario": scenario, "polls": n, "wall": wall, "cpu_per_poll": cpu / n,
                      "peak_rss_mb": peak, "rss_growth_mb": peak - before if before else 0.0}))


def _import_rss_mb() -> float:
    """Peak RSS of a process that only imports the pipeline (every stage's libraries)."""
    out = subprocess.run([sys.executable, "-c", "import resource, monitor.pipeline; "
                          "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                         capture_output=True, text=True, check=True, env=_env())
    return float(out.stdout)


ROOT = Path(__file__).resolve().parent.parent


def _env(root: Path = ROOT) -> dict[str, str]:
    """Children started outside the repository with ``root`` first on their path: its
    ``monitor``, this checkout's ``bench``."""
    return loopback.child_env(root, ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="runs per scenario; the median is shown")
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="also run all 304 / 304 PG with another checkout's monitor (e.g. /tmp/before)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.hosts)
        return
    if args.child:
        child(args.child, args.port, args.feeds, args.hosts, args.db)
        return

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bench.fetch_poll", "--serve", str(port), "--hosts", str(args.hosts)],
                              stdout=subprocess.PIPE, text=True, env=_env())
    results: dict[str, list[dict[str, float]]] = {}
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        runs = [(scenario, "", ROOT) for scenario in SCENARIOS]
        if args.compare:
            runs += [(scenario, f" [{args.compare.name}]", args.compare.resolve()) for scenario in ("all 304", "304 PG")]
        for _ in range(args.rounds):
            for scenario, label, root in runs:
                pg = create_database() if scenario.endswith("PG") else None
                if scenario.endswith("PG") and pg is None:
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    db = pg[0] if pg else str(Path(tmp) / "bench.db")
                    steps = ["setup", scenario] if scenario != "baseline" else [scenario]
                    for step in steps:
                        out = subprocess.run([sys.executable, "-m", "bench.fetch_poll", "--child",
                                              f"setup:{scenario}" if step == "setup" else step,
                                              "--port", str(port), "--feeds", str(args.feeds), "--hosts", str(args.hosts),
                                              "--db", db], capture_output=True, text=True, env=_env(root), check=False,
                                             timeout=600, cwd=tmp)
                        if out.returncode:
                            raise SystemExit(f"{step}{label} failed:\n{out.stderr[-3000:]}")
                    results.setdefault(scenario + label, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
                if pg:
                    drop_database(pg[1])
    finally:
        server.terminate()
        server.wait()

    def med(rows: list[dict[str, float]], key: str) -> float:
        vals = sorted(r[key] for r in rows)
        return vals[len(vals) // 2]

    print(f"{args.feeds} feeds on {args.hosts} loopback hosts, default limits (per_host 2, concurrency 20), "
          f"median of {args.rounds} runs; rate/baseline: median and spread of each run against its round's baseline")
    print(f"load {os.getloadavg()[0]:.1f} (1 min average, at the end)")
    print(f"{'scenario':<19} {'wall s':>7} {'polls/s':>8} {'CPU ms/poll':>12} {'peak RSS MB':>12} "
          f"{'RSS growth MB':>14} {'rate/baseline':>14} {'(min-max)':>12} {'baseline CPU/this':>18}")
    for scenario, rows in results.items():
        wall = med(rows, "wall")
        rate = args.feeds / wall
        # Each run against the baseline of its own round: load on a shared machine swings
        # between rounds more than within one.
        ratios = sorted(b["wall"] / r["wall"] for b, r in zip(results["baseline"], rows, strict=False))
        # The same for the CPU a poll took (the baseline's over this one's): the machine's load
        # swings the rate of every run, much less the CPU each poll needs.
        cpus = sorted(b["cpu_per_poll"] / r["cpu_per_poll"] for b, r in zip(results["baseline"], rows, strict=False))
        print(f"{scenario:<19} {wall:>7.2f} {rate:>8.0f} {med(rows, 'cpu_per_poll') * 1000:>12.2f} "
              f"{med(rows, 'peak_rss_mb'):>12.0f} {med(rows, 'rss_growth_mb'):>14.1f} "
              f"{ratios[len(ratios) // 2]:>13.2f}x {ratios[0]:>5.2f}-{ratios[-1]:.2f}x {cpus[len(cpus) // 2]:>17.2f}x")
    rate_304 = args.feeds / med(results["all 304"], "wall")
    rss = max(r["peak_rss_mb"] for r in results["all 304"] + results["mix"])
    print(f"importing monitor.pipeline alone (all stages' libraries): {_import_rss_mb():.0f} MB peak RSS; "
          "RSS growth = peak during the timed round over the peak before it")
    print(f"target all-304 >= 200 polls/s: {'met' if rate_304 >= 200 else 'MISSED'} ({rate_304:.0f}); "
          f"target peak RSS < 150 MB: {'met' if rss < 150 else 'MISSED'} ({rss:.0f} MB)")


if __name__ == "__main__":
    main()
