"""Benchmark: the extraction workers alone, against plain ``trafilatura.extract()``.

    python -m bench.extract_workers [--runs 3] [--compare DIR]

The ~300 pages of ``bench.ingest`` (the sixty real pages of ../shared/data/articles and their
syndicated copies), read from a file, each scenario in a fresh process timed from outside
(``bench.ingest.measure``: CPU of every process of the tree, peak PSS of the tree):

- ``baseline``: ``trafilatura.extract()`` on every page, one after another, in one process;
- ``monitor``: ``monitor.extract.pool.extract`` on every page at once: the forkserver, its
  workers (one per core) and the main process that hands them the pages.

Printed: CPU ms per page, wall seconds, peak MB (PSS) and the ratios to the baseline.
``--compare DIR`` runs another checkout's ``monitor`` package alongside (before/after).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
from pathlib import Path

# Nothing else at the top: a worker process imports this module again (as multiprocessing does
# with the main module; the daemon's ``python -m monitor`` is spared that), so what it imports
# here would count as the pool's CPU.


def _pages(path: Path) -> list[tuple[str, bytes]]:
    with open(path, "rb") as f:
        pages: list[tuple[str, bytes]] = pickle.load(f)
    return pages


def _baseline(path: Path) -> None:
    import trafilatura

    for url, html in _pages(path):
        trafilatura.extract(html.decode(), url=url)


def _monitor(path: Path) -> None:
    import asyncio

    from monitor.extract import pool

    async def run() -> None:
        pages = _pages(path)
        await asyncio.gather(*(pool.extract(html, url, "text/html; charset=utf-8") for url, html in pages))

    try:
        asyncio.run(run())
    finally:
        pool.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", type=Path, metavar="DIR", help="also run the monitor package of another checkout")
    ap.add_argument("--run", nargs=2, metavar=("SCENARIO", "PAGES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        (_baseline if args.run[0] == "baseline" else _monitor)(Path(args.run[1]))
        return

    from bench.ingest import ROOT, corpus_pages, measure

    # this bench's own module from here, whichever checkout's ``monitor`` a scenario runs
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    roots = {"baseline": ROOT, "monitor": ROOT} | ({"compare": args.compare.resolve()} if args.compare else {})
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pages.pickle"
        pages = [(f"http://outlet.example{p}", html) for p, (_, html) in sorted(corpus_pages(3).items())]
        data.write_bytes(pickle.dumps(pages))
        for _ in range(args.runs):  # interleaved, so a burst of load hits all alike
            for name, root in roots.items():
                scenario = "baseline" if name == "baseline" else "monitor"
                m, _ = measure([sys.executable, "-m", "bench.extract_workers", "--run", scenario, str(data)],
                               Path(tmp), root)
                rows[name].append(m)

    def med(rs: list[dict[str, float]], key: str, scale: float = 1.0) -> tuple[float, float, float]:
        vals = [scale * r[key] for r in rs]
        return statistics.median(vals), min(vals), max(vals)

    print(f"{len(pages)} pages; {args.runs} runs each, median (min..max); {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"| {'scenario':<9} | {'CPU ms/page':>18} | {'wall s':>17} | {'peak MB (PSS)':>17} | {'CPU x':>6} | {'wall x':>6} |")
    print("|" + "|".join("-" * w for w in (11, 20, 19, 19, 8, 8)) + "|")
    base = {}
    for name, rs in rows.items():
        cpu, wall, peak = med(rs, "cpu", 1000 / len(pages)), med(rs, "wall"), med(rs, "peak_mb")
        if name == "baseline":
            base = {"cpu": cpu[0], "wall": wall[0]}
        print(f"| {name:<9} | {cpu[0]:>6.1f} ({cpu[1]:.1f}..{cpu[2]:.1f}) | {wall[0]:>5.2f} ({wall[1]:.1f}..{wall[2]:.1f}) "
              f"| {peak[0]:>5.0f} ({peak[1]:.0f}..{peak[2]:.0f}) | {cpu[0] / base['cpu']:>6.2f} | {wall[0] / base['wall']:>6.2f} |")
    if args.compare:
        print(f"compare = {args.compare}")


if __name__ == "__main__":
    main()
