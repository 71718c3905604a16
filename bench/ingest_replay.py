"""Benchmark: the main process's ingest thread alone, on bench.ingest's 299 articles.

    python -m bench.ingest_replay [--runs 3] [--compare DIR] [--variants 3]

``bench.ingest`` times a whole ``run --once --all``; its main process (fetch, feeds, and the one
thread that stores every article) bounds the wall time, and its figures move by a quarter with
the machine's load. This replays only the ingest thread's part: the pages of bench.ingest's
feeds are extracted once, in this process, with their story prints (``monitor.pagework.work``,
what the extraction workers hand over), then each run, in a fresh process, feeds every article
through ``Pipeline._ingest`` (new article, story, store, match, quotes and speakers, gate,
outbox; one transaction each) on a new SQLite database with bench.ingest's config, and measures
the CPU time of that loop alone (no imports, no start-up, no fetch).

Printed: CPU seconds of the loop and ms per article, median (min..max) of ``--runs``; the
articles, stories and alerts stored; a digest of every stored table's decisions (articles'
stories and copies, matches with their quotes and speakers, alerts, claims, stories), which must
be equal in every run. ``--compare DIR`` runs another checkout's ``monitor`` package (``git
archive <commit> monitor | tar -x -C DIR``) alternately in the same invocation: before/after,
its ratio, and whether its tables are the same. The loop is deterministic, so it can also be
counted in instructions (``valgrind --tool=callgrind`` on ``--child``, minus a ``--no-loop`` run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loopback
from bench.ingest import FEEDS, _config, corpus_pages, feeds, host

ROOT = Path(__file__).resolve().parent.parent
PORT = 8000  # the feeds' links only: nothing is fetched
TABLES = ("match", "alert", "story_alert", "story")


def prepare(path: Path, variants: int) -> int:
    """Every feed entry with its page as the extraction worker hands it over, pickled."""
    from monitor import pagework
    from monitor.parse.feed import parse_feed

    pages = corpus_pages(variants)
    xml = feeds(pages, PORT)
    items = []
    for f in range(FEEDS):
        name = f"/feed/{f}.xml"
        for e in parse_feed(xml[name], f"{host(f, PORT)}{name}", "application/rss+xml").entries:
            html = pages[e.url.split(str(PORT), 1)[1]][1]
            items.append((f, e, pagework.work(html, e.url, "text/html; charset=utf-8", None, e.url, e.title, False)))
    path.write_bytes(pickle.dumps(items))
    return len(items)


def _digest(engine: Any) -> str:
    """Every decision the ingest stored, without times and in a stable order."""
    from sqlalchemy import text

    h = hashlib.sha256()
    with engine.connect() as c:
        h.update(repr(c.execute(text("SELECT url, story_id, duplicate_of, content_hash, language FROM article "
                                     "ORDER BY url")).all()).encode())
        for t in TABLES:
            rows = c.execute(text(f'SELECT * FROM "{t}"')).all()
            h.update(repr(sorted(repr(tuple(v for k, v in zip(r._fields, r, strict=True) if not k.endswith("_at")))
                                 for r in rows)).encode())
    return h.hexdigest()[:16]


def child(pages: Path, loop: bool) -> None:
    """One run: the loop's CPU time, the counts and the digest, as JSON on stdout."""
    from sqlalchemy import text

    from monitor.config.loader import load_config
    from monitor.pipeline import Pipeline
    from monitor.store import create_db_engine, upgrade

    items = pickle.loads(pages.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "config.toml").write_text(_config(PORT, d / "m.db", False), encoding="utf-8")
        cfg = load_config(d / "config.toml")
        engine = create_db_engine(cfg.monitor.database)
        upgrade(engine)
        pipeline = Pipeline(cfg, engine)
        pipeline.sync_sources()
        pipeline.prepare()
        with engine.connect() as c:
            ids: dict[str, int] = dict(c.execute(text("SELECT name, id FROM source")).all())
        by_name = {sc.name: sc for sc in cfg.sources}
        work = [(ids[f"feed {f}"], by_name[f"feed {f}"], entry, page) for f, entry, page in items]
        t0 = time.process_time()
        stored = sum(pipeline._ingest(sid, sc, entry, page, None) is not None for sid, sc, entry, page in
                     (work if loop else []))
        cpu = time.process_time() - t0
        with engine.connect() as c:
            counts = [c.execute(text(q)).scalar() for q in (
                "SELECT count(*) FROM article", "SELECT count(DISTINCT story_id) FROM article",
                "SELECT count(*) FROM alert WHERE kind = 'match'")]
        import monitor

        print(json.dumps({"cpu": cpu, "stored": stored, "counts": counts, "digest": _digest(engine),
                          "monitor": monitor.__file__}))
        engine.dispose()


def run(pages: Path, root: Path) -> dict[str, Any]:
    """One fresh process running ``root``'s monitor package (started outside any checkout: ``-m``
    puts the working directory first on the path)."""
    out = subprocess.run([sys.executable, "-m", "bench.ingest_replay", "--child", str(pages)], cwd=pages.parent,
                         env=loopback.child_env(root, ROOT), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"the replay with {root} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result["monitor"]).is_relative_to(root):
        sys.exit(f"the replay with {root} ran {result['monitor']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variants", type=int, default=3, help="syndicated copies per real page")
    ap.add_argument("--compare", type=Path, metavar="DIR", help="also run the monitor package in DIR")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--no-loop", action="store_true", help=argparse.SUPPRESS)  # set-up only (instruction counts)
    args = ap.parse_args()
    if args.child:
        child(args.child, not args.no_loop)
        return
    with tempfile.TemporaryDirectory() as tmp:
        pages = Path(tmp) / "pages.pickle"
        n = prepare(pages, args.variants)
        roots = {"this code": ROOT} | ({"compare": args.compare.resolve()} if args.compare else {})
        for root in roots.values():  # each code's first process compiles what it keeps on disk (speakers)
            run(pages, root)
        res: dict[str, list[dict[str, Any]]] = {name: [] for name in roots}
        for _ in range(args.runs):  # alternated: a burst of load hits both alike
            for name, root in roots.items():
                res[name].append(run(pages, root))
    print(f"{n} articles of bench.ingest's feeds through Pipeline._ingest (SQLite), CPU of the loop; "
          f"{args.runs} runs, median (min..max); load average {os.getloadavg()[0]:.1f}")
    print("| code | CPU s | ms per article | vs compare | stored (articles, stories, alerts) | tables digest |")
    print("|---|---|---|---|---|---|")
    med = {name: statistics.median(r["cpu"] for r in rs) for name, rs in res.items()}
    for name, rs in res.items():
        cpus = [r["cpu"] for r in rs]
        ratio = f"{med[name] / med['compare']:.2f}x" if "compare" in med and name != "compare" else "-"
        counts = sorted({tuple(r["counts"]) for r in rs})
        digests = sorted({r["digest"] for r in rs})
        print(f"| {name} | {med[name]:.3f} ({min(cpus):.3f}..{max(cpus):.3f}) | {1000 * med[name] / n:.2f} | {ratio} "
              f"| {', '.join(map(str, counts))} | {', '.join(digests)} |")
    if args.compare:
        same = {r["digest"] for rs in res.values() for r in rs}
        print(f"compare = {args.compare}; same tables in every run of both: {'yes' if len(same) == 1 else 'NO'}")


if __name__ == "__main__":
    main()
