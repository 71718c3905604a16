"""Story clustering quality on syndicated variants of real pages, through the real pipeline.

    python -m bench.dedup_quality [--pages N] [--variants N] [--seed N] [--db URL]

Serves the originals (../shared/data/articles) and their syndicated variants and negatives
(bench/syndicate.py) from loopback outlets, runs the pipeline in-process (fetch, extract,
dedup), and scores the stories it formed against the truth as pairwise precision and recall.
The baseline in the same run is exact-duplicate detection alone (same normalised body hash).
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlmodel import select

from bench.syndicate import Corpus, Item, articles_dir, build, load_ground_truth, page_html
from monitor.store import Article, Source, session_scope
from tests.dedup_support import Outlet, Runner, outlets_config, simple_page
from tests.servers import Site


@dataclass
class Score:
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int
    false_merges: list[tuple[str, str]] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)


def pairwise(truth: dict[str, str], predicted: Mapping[str, object]) -> Score:
    """Precision and recall over all pairs of articles: same story in truth vs. predicted."""
    tp = fp = fn = 0
    fm, miss = [], []
    for a, b in itertools.combinations(sorted(truth), 2):
        same_t = truth[a] == truth[b]
        same_p = predicted[a] == predicted[b]
        if same_t and same_p:
            tp += 1
        elif same_p:
            fp += 1
            fm.append((a, b))
        elif same_t:
            fn += 1
            miss.append((a, b))
    return Score(tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0, tp, fp, fn, fm, miss)


@dataclass
class Result:
    stories: Score
    exact: Score
    articles: int
    seconds: float
    lost: list[str]


def run(corpus: Corpus, database_url: str, workdir: Path, rounds: int = 3, seed: int = 1, events: bool = False
        ) -> Result:
    """Publish the corpus in ``rounds`` batches (random order), polling every outlet after each."""
    rng = random.Random(seed)
    sites: dict[str, Site] = {}
    outlets: dict[str, Outlet] = {}
    names = ["origin", *(o.name for o in corpus.outlets)]
    try:
        for name in names:
            sites[name] = Site().start()
            outlets[name] = Outlet(name, sites[name])
        by_name = {o.name: o for o in corpus.outlets}
        url_of: dict[str, Item] = {}
        items = list(corpus.items)
        rng.shuffle(items)
        # Copies only by default: this corpus' truth is copy-level, and its "topical" negatives (a
        # second reporter's write-up of the same news) are one event by design of event stories.
        cfg = outlets_config(workdir / "config.toml", database_url, list(outlets.values()), "",
                             "http://127.0.0.1:9/hook", extra=f"[dedup]\nevents = {'true' if events else 'false'}\n")
        runner = Runner(cfg)
        started = time.perf_counter()
        try:
            for r in range(rounds):
                for it in items[r::rounds]:
                    o = outlets[it.outlet]
                    if it.raw_html is not None:
                        body = it.raw_html
                    elif it.outlet in by_name:
                        body = page_html(it, by_name[it.outlet])
                    else:
                        body = simple_page(it.title, it.paragraphs or [])
                    url_of[o.publish(f"/a/{it.key}", it.title or it.key, body)] = it
                runner.cycle()
            seconds = time.perf_counter() - started
            with session_scope(runner.engine) as s:
                rows = s.exec(select(Article.original_url, Article.story_id, Article.content_hash, Source.name)
                              .join(Source, Source.id == Article.source_id)).all()  # type: ignore[arg-type]
        finally:
            runner.close()
    finally:
        for site in sites.values():
            site.stop()
    truth, story, exact = {}, {}, {}
    for url, story_id, chash, _src in rows:
        it = url_of[url]
        truth[it.key], story[it.key], exact[it.key] = it.story, story_id, chash or it.key
    lost = sorted(it.key for it in url_of.values() if it.key not in truth)
    return Result(pairwise(truth, story), pairwise(truth, exact), len(truth), seconds, lost)


def report(res: Result, out: TextIO = sys.stdout) -> None:
    def p(*a: object) -> None:
        print(*a, file=out)

    p(f"{'method':34} {'precision':>9} {'recall':>7} {'TP':>6} {'FP':>5} {'FN':>5}")
    for name, sc in (("exact body hash (baseline)", res.exact), ("stories: MinHash LSH + containment", res.stories)):
        p(f"{name:34} {sc.precision:9.3f} {sc.recall:7.3f} {sc.tp:6d} {sc.fp:5d} {sc.fn:5d}")
    gain = f"{res.stories.recall / res.exact.recall:.1f}x" if res.exact.recall else f"+{res.stories.tp - res.exact.tp} pairs"
    p(f"recall vs. baseline: {gain}; {res.articles} articles in {res.seconds:.1f} s "
      f"({1000 * res.seconds / max(res.articles, 1):.0f} ms per article, fetch and extraction included)")
    if res.lost:
        p(f"not stored (extraction found no text): {', '.join(res.lost)}")
    kinds = Counter(b.split("-", 1)[1].rstrip("0123456789") for a, b in res.stories.false_merges)
    if res.stories.false_merges:
        p(f"false merges: {len(res.stories.false_merges)} pairs {dict(kinds)}, e.g. {res.stories.false_merges[:5]}")
    if res.stories.misses:
        p(f"missed pairs: {len(res.stories.misses)}, e.g. {res.stories.misses[:8]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=None, help="how many of the real pages (default all)")
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--events", action="store_true",
                    help="event stories on (reports of one event join: the topical negatives join too)")
    args = ap.parse_args()
    d = articles_dir()
    if d is None:
        sys.exit("../shared/data/articles not found next to the repository")
    corpus = build(load_ground_truth(d, args.pages), variants=args.variants, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'quality.db'}"
        res = run(corpus, db, Path(tmp), seed=args.seed, events=args.events)
    kinds = Counter(it.kind for it in corpus.items)
    print(f"corpus: {dict(kinds)} from {args.pages or 'all'} real pages, {len(corpus.outlets)} outlets")
    report(res)
    ok = res.stories.precision >= 0.98 and res.stories.recall >= 0.95
    print("bar (precision >= 0.98, recall >= 0.95):", "MET" if ok else "NOT MET")


if __name__ == "__main__":
    main()
