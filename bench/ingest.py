"""Benchmark: end-to-end ingest of ~300 article pages behind 10 feeds, against a plain script.

    python -m bench.ingest [--runs 3] [--variants 3]

A fast asyncio HTTP server in its own process serves 10 RSS feeds on loopback whose items link to
the pages of ``bench.syndicate`` (the 60 real pages of ../shared/data/articles, three syndicated
copies of each and a same-topic article: ~300 pages, as the dedup benchmark uses them), and a
webhook that answers 200. Each scenario runs in a fresh process, timed from outside:

- ``baseline``: a plain script: httpx GET of every feed, feedparser, then httpx GET of every page
  and ``trafilatura.extract()`` on it (concurrent fetches, extraction in the one thread).
- ``monitor``: ``monitor run --once --all`` on a fresh SQLite database with one rule that matches
  some of the pages and a webhook channel: fetch, extract, store, stories, match, outbox, delivery.
  Event stories by meaning are off (``[dedup] events = false``; ``--meaning`` turns them on): the
  sentence model has its own budget.

Printed per scenario (median of ``--runs`` runs, with min..max): wall seconds, articles per second,
CPU ms per article (every process of the tree), peak memory while ingesting (PSS of the process
tree, sampled every 20 ms: shared pages of forked workers are counted once; and the peak resident
size of the main process alone) and the ratios to the baseline; for ``monitor`` also the articles, stories and alerts stored (and the deliveries merged), and
the memory of the daemon started afterwards on that database, idle (nothing due), and the CPU of
its main process alone (the one that stores every article: the wall time's bound). Then each
scenario's ratio to the baseline run of the same round, median and range: the machine's speed
drifts between rounds more than within one. Then where the CPU goes: the main process and the
extraction processes, each against the plain script's whole CPU of the same round, and the
plain script's own ``extract()`` share of its CPU (the CPU target's bound). Targets (issue 15): CPU <= 1.3x, wall <= 1.2x,
peak <= 200 MB, idle <= 100 MB. ``--compare DIR`` runs another
checkout's ``monitor`` package (``git archive <commit> monitor | tar -x -C DIR``) alongside:
before/after in the same run. The measured processes (plain script included) run in a
production-like venv (``bench.prodenv``: no dev extras, whose trio httpx imports in every
process) unless ``--env dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import loopback, prodenv
from bench.loopback import NOT_FOUND, daemon_config, response

FEEDS = 10
ROOT = Path(__file__).resolve().parent.parent
RULE = "government OR minister OR president"


# -- the corpus and the server -------------------------------------------------------------------
def corpus_pages(variants: int) -> dict[str, tuple[str, bytes]]:
    """``{path: (title, html)}`` for every page, in a stable order."""
    from bench.syndicate import articles_dir, build, load_ground_truth, page_html

    directory = articles_dir()
    if directory is None:
        sys.exit("../shared/data/articles is missing")
    corpus = build(load_ground_truth(directory), variants=variants, n_outlets=FEEDS)
    outlets = {o.name: o for o in corpus.outlets}
    pages: dict[str, tuple[str, bytes]] = {}
    for it in corpus.items:
        if it.raw_html is not None:
            body = it.raw_html
        else:
            body = page_html(it, outlets.get(it.outlet) or corpus.outlets[0])
        pages[f"/a/{it.key}"] = (it.title, body)
    return pages


def host(f: int, port: int) -> str:
    """Feed ``f`` and its pages are on their own loopback address: ten outlets, ten hosts (the
    per-host connection limit applies to each, as it would to real outlets)."""
    return f"http://{loopback.host_address(f)}:{port}"


def feeds(pages: dict[str, tuple[str, bytes]], port: int) -> dict[str, bytes]:
    """The pages spread over ``FEEDS`` RSS feeds (shuffled, so each feed mixes originals and copies)."""
    paths = sorted(pages)
    random.Random(3).shuffle(paths)
    out = {}
    for f in range(FEEDS):
        base = host(f, port)
        items = "".join(
            f"<item><title>{html.escape(pages[p][0])}</title><link>{base}{p}</link><guid>{p}</guid>"
            f"<pubDate>Wed, 24 Sep 2025 {7 + k // 60:02d}:{k % 60:02d}:00 GMT</pubDate>"
            f"<description>{html.escape(pages[p][0])}</description></item>"
            for k, p in enumerate(paths[f::FEEDS]))
        out[f"/feed/{f}.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                                 f"<title>Feed {f}</title><link>{base}/</link><description>d</description>"
                                 f"{items}</channel></rss>").encode()
    return out


def serve(port: int, variants: int) -> None:
    pages = corpus_pages(variants)
    bodies: dict[bytes, tuple[bytes, bytes]] = {p.encode(): (b"text/html; charset=utf-8", b) for p, (_, b) in pages.items()}
    bodies.update({p.encode(): (b"application/rss+xml", b) for p, b in feeds(pages, port).items()})

    def respond(method: bytes, path: bytes, headers: dict[bytes, bytes]) -> bytes:
        if method == b"POST":
            return response(b"{}", b"application/json")
        found = bodies.get(path)
        return NOT_FOUND if found is None else response(found[1], found[0])

    loopback.serve(respond, FEEDS, port, ready=f"ready {len(pages)}")


# -- the baseline: a plain script ----------------------------------------------------------------
async def _plain(port: int) -> tuple[int, float]:
    """The articles extracted, and the CPU seconds spent in ``extract()`` (the part of the
    script's CPU that the monitor's extraction processes do)."""
    import feedparser
    import httpx
    import trafilatura

    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=30) as client:
        feed_bodies = await asyncio.gather(*(client.get(f"{host(f, port)}/feed/{f}.xml") for f in range(FEEDS)))
        links = [e.link for r in feed_bodies for e in feedparser.parse(r.content).entries]
        gate = asyncio.Semaphore(20)
        done = 0
        extracting = 0.0

        async def one(url: str) -> None:
            nonlocal done, extracting
            async with gate:
                r = await client.get(url)
            t = time.process_time()
            if trafilatura.extract(r.text, url=url):
                done += 1
            extracting += time.process_time() - t

        await asyncio.gather(*(one(u) for u in links))
    return done, extracting


# -- measuring a process from outside ------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _pss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def _env(root: Path) -> dict[str, str]:
    return loopback.child_env(root)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far; 0 for a process that has just gone."""
    try:
        return loopback.cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(cmd: list[str], cwd: Path, root: Path = ROOT) -> tuple[dict[str, float], str]:
    """Wall, CPU of the whole process tree and of the main process alone, and peak memory.

    CPU: the extraction workers are children of a forkserver that the main process never waits
    for, so its rusage leaves them out. Every process of the tree is sampled every 20 ms and its
    last reading counted (a process loses at most its last 20 ms); the main process's own rusage
    (itself and the children it waited for) is used if it is larger."""
    env = _env(root)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0.0, 0.0]
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _pss_mb(proc.pid))
            peak[1] = max(peak[1], _rss_mb(proc.pid))
            for p in _tree(proc.pid):
                if (c := _cpu_s(p)) > 0:
                    cpu[p] = c

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_err: list[bytes] = [b"", b""]

    def read(k: int, stream: Any) -> None:
        out_err[k] = stream.read()

    readers = [threading.Thread(target=read, args=(k, s), daemon=True) for k, s in enumerate((proc.stdout, proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{cmd} failed ({proc.returncode}):\n" + b"\n".join(out_err).decode(errors="replace")[-3000:])
    waited = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": max(waited, sum(cpu.values())), "peak_mb": peak[0], "main_mb": peak[1],
            "main_cpu": cpu.get(proc.pid, 0.0)}, out_err[0].decode()


def _config(port: int, db: Path, meaning: bool) -> str:
    # The budgets of issue 15 are without the sentence model (the meaning issue has its own).
    return daemon_config(
        f"sqlite:///{db}", [(f"feed {f}", f"{host(f, port)}/feed/{f}.xml") for f in range(FEEDS)],
        interval="1h", rule=("officials", RULE), hook=f"http://127.0.0.1:{port}/hook",
        # the pages are real, older articles: count their alerts as before
        monitor='alert_max_age = "3650d"\n', fetch='timeout = "30s"\n',
        extra="" if meaning else "[dedup]\nevents = false\n")


def idle_mb(config: Path, cwd: Path, root: Path = ROOT, settle: float = 5.0,
            python: str = sys.executable) -> tuple[float, float]:
    """(PSS of the process tree, RSS of the main process) of the daemon ``settle`` seconds after
    it started on the database the ingest left (every source polled: nothing is due)."""
    log = cwd / "idle.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([python, "-m", "monitor", "--config", str(config), "run"], cwd=cwd,
                                env=_env(root), stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while b"monitor running" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the daemon did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        time.sleep(settle)
        return _pss_mb(proc.pid), _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def _counts(db: Path) -> tuple[int, int, int, int]:
    import sqlite3  # here, as statistics in main: the measured --plain child imports this module

    with sqlite3.connect(db) as conn:
        articles = conn.execute("SELECT count(*) FROM article").fetchone()[0]
        stories = conn.execute("SELECT count(DISTINCT story_id) FROM article").fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM alert WHERE kind = 'match'").fetchone()[0]
        # deliveries of alerts taken back when their story merged with one that alerted
        # (monitor.alerts.settle): an alert's row stays, its delivery is not sent
        merged = conn.execute("SELECT count(*) FROM delivery WHERE status = 'merged'").fetchone()[0]
    return articles, stories, alerts, merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variants", type=int, default=3, help="syndicated copies per real page")
    ap.add_argument("--only", choices=("baseline", "monitor"), help="run one scenario")
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="also run the monitor package of another checkout (DIR holds its monitor/)")
    ap.add_argument("--meaning", action="store_true", help="with event stories by meaning (loads the sentence model)")
    ap.add_argument("--env", choices=("prod", "dev"), default="prod",
                    help="prod: a venv of the runtime dependencies only (default); dev: this venv")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--plain", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.variants)
        return
    if args.plain:
        done, extracting = asyncio.run(_plain(args.plain))
        print(json.dumps({"articles": done, "extract_cpu": extracting}))
        return

    import statistics  # not at the top: the measured --plain child (the baseline) would pay it

    from tests.servers import free_port

    port = free_port()
    venv_dir = tempfile.TemporaryDirectory()
    py = str(prodenv.build(Path(venv_dir.name))) if args.env == "prod" else sys.executable
    server = subprocess.Popen([sys.executable, "-m", "bench.ingest", "--serve", str(port), "--variants",
                               str(args.variants)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert server.stdout is not None
        pages = int(server.stdout.readline().split()[1])
        roots = {"monitor": ROOT} | ({"compare": args.compare.resolve()} if args.compare else {})
        rows: dict[str, list[dict[str, float]]] = {"baseline": []} | {name: [] for name in roots}
        counts: dict[str, list[tuple[int, int, int, int]]] = {name: [] for name in roots}
        for _ in range(args.runs):  # interleaved, so a burst of load hits both alike
            if args.only != "monitor":
                with tempfile.TemporaryDirectory() as tmp:
                    m, out = measure([py, "-m", "bench.ingest", "--plain", str(port)], Path(tmp))
                    plain = json.loads(out.strip().splitlines()[-1])
                    m["articles"], m["extract_cpu"] = plain["articles"], plain["extract_cpu"]
                    rows["baseline"].append(m)
            if args.only == "baseline":
                continue
            for name, root in roots.items():
                with tempfile.TemporaryDirectory() as tmp:
                    d = Path(tmp)
                    (d / "config.toml").write_text(_config(port, d / "m.db", args.meaning), encoding="utf-8")
                    m, _ = measure([py, "-m", "monitor", "--config", str(d / "config.toml"),
                                    "run", "--once", "--all"], d, root)
                    c = _counts(d / "m.db")
                    counts[name].append(c)
                    m["articles"] = c[0]
                    m["idle_mb"], m["idle_main_mb"] = idle_mb(d / "config.toml", d, root, python=py)
                    rows[name].append(m)
    finally:
        server.terminate()
        server.wait()
        venv_dir.cleanup()

    def med(rs: list[dict[str, float]], key: str) -> tuple[float, float, float]:
        vals = [r[key] for r in rs]
        return statistics.median(vals), min(vals), max(vals)

    print(f"{pages} pages behind {FEEDS} feeds on loopback; {args.runs} runs each, median (min..max); {args.env} venv; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"| {'scenario':<9} | {'articles':>8} | {'wall s':>17} | {'art/s':>6} | {'CPU ms/article':>17} "
          f"| {'peak MB (PSS)':>17} | {'main RSS MB':>11} | {'idle MB (PSS)':>13} | {'CPU x':>6} | {'wall x':>6} |")
    print("|" + "|".join("-" * w for w in (11, 10, 19, 8, 19, 19, 13, 15, 8, 8)) + "|")
    base: dict[str, float] = {}
    for name, rs in rows.items():
        if not rs:
            continue
        for r in rs:
            r["cpu_ms"] = 1000 * r["cpu"] / max(1, r["articles"])
        wall, cpu, peak, main_mb = med(rs, "wall"), med(rs, "cpu_ms"), med(rs, "peak_mb"), med(rs, "main_mb")
        n = statistics.median(r["articles"] for r in rs)
        if name == "baseline":
            base = {"wall": wall[0], "cpu": cpu[0]}
        ratio_cpu = f"{cpu[0] / base['cpu']:.2f}" if base else "-"
        ratio_wall = f"{wall[0] / base['wall']:.2f}" if base else "-"
        idle = f"{med(rs, 'idle_mb')[0]:>13.0f}" if "idle_mb" in rs[0] else f"{'-':>13}"
        print(f"| {name:<9} | {n:>8.0f} | {wall[0]:>6.2f} ({wall[1]:.1f}..{wall[2]:.1f}) | {n / wall[0]:>6.1f} "
              f"| {cpu[0]:>6.1f} ({cpu[1]:.0f}..{cpu[2]:.0f}) | {peak[0]:>6.0f} ({peak[1]:.0f}..{peak[2]:.0f}) "
              f"| {main_mb[0]:>11.0f} | {idle} | {ratio_cpu:>6} | {ratio_wall:>6} |")
    for name, rs in rows.items():
        # Each round runs the baseline, then the monitor(s): their ratio within a round is what
        # the machine's drift (this VM ran 1.4x slower for minutes at a time) leaves alone.
        if rs and name != "baseline" and len(rows["baseline"]) == len(rs):
            pairs = {key: sorted(r[key] / b[key] for r, b in zip(rs, rows["baseline"], strict=True))
                     for key in ("wall", "cpu_ms")}
            print(f"{name} / baseline of the same round: wall {statistics.median(pairs['wall']):.2f}x "
                  f"({pairs['wall'][0]:.2f}..{pairs['wall'][-1]:.2f}), CPU {statistics.median(pairs['cpu_ms']):.2f}x "
                  f"({pairs['cpu_ms'][0]:.2f}..{pairs['cpu_ms'][-1]:.2f})")
    for name, cs in counts.items():
        # Articles and stories must never vary. Alerts may by one or two: feeds are polled at once,
        # so the order copies of a story arrive in varies, and a later, longer copy can carry a
        # statement the first did not (a second alert by design: see the alert gate).
        print(f"{name} stored (articles, stories, alerts, deliveries merged) per run: {cs}"
              + ("" if len({c[:2] for c in cs}) == 1 else "; ARTICLES OR STORIES DIFFER BETWEEN RUNS"))
    for name, rs in rows.items():
        # The main process alone (its last 20 ms sample): it decides and stores every article on
        # one thread, so its CPU bounds the wall time while the extraction workers wait for it.
        if rs and name != "baseline":
            mc = med(rs, "main_cpu")
            print(f"{name} main-process CPU s: {mc[0]:.2f} ({mc[1]:.2f}..{mc[2]:.2f})")
            if len(rows["baseline"]) == len(rs):
                _split(name, rs, rows["baseline"])
    if args.compare:
        print(f"compare = {args.compare}")


def _split(name: str, rs: list[dict[str, float]], base: list[dict[str, float]]) -> None:
    """Where the CPU goes, each part as a ratio to the whole CPU of the same round's plain script:
    the main process (start-up, fetching, feeds, storing, stories, matching, delivery) and the
    extraction processes (the forkserver and its workers: extraction and the page's prints). The
    two add up to the CPU ratio, so the CPU target (<= 1.3x) needs main <= 1.3x - extraction:
    what this line shows is how far each side is from leaving the other room."""
    import statistics

    def ratio(parts: list[float]) -> str:
        parts = sorted(parts)
        return f"{statistics.median(parts):.2f}x ({parts[0]:.2f}..{parts[-1]:.2f})"

    pairs = list(zip(rs, base, strict=True))
    print(f"{name} CPU by process, x the plain script's whole CPU of the same round: main "
          f"{ratio([r['main_cpu'] / b['cpu'] for r, b in pairs])}, extraction processes "
          f"{ratio([(r['cpu'] - r['main_cpu']) / b['cpu'] for r, b in pairs])}; the plain script's "
          f"extract() calls are {ratio([b['extract_cpu'] / b['cpu'] for _, b in pairs])} of its CPU, "
          f"the extraction processes {ratio([(r['cpu'] - r['main_cpu']) / b['extract_cpu'] for r, b in pairs])} "
          f"of its extract() calls' CPU")


if __name__ == "__main__":
    main()
