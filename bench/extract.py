"""Article extraction on ../shared/data/articles, scored with the benchmark's own metric.

    python -m bench.extract [--data DIR] [--show-worst N]

Prints precision, recall, F1 and milliseconds per page for monitor's extractor and, in the same
run on the same pages, trafilatura's plain ``extract()`` as the baseline, plus the ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r"\w+")


def shingles(text: str) -> Counter[tuple[str, ...]]:
    """Runs of 4 tokens as a multiset; a text of 1-3 tokens is one shingle of all of them."""
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < 4:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + 4]) for i in range(len(tokens) - 3))


def page_score(truth: str, pred: str) -> tuple[float, float, float, float]:
    """(tp, fp, fn) as fractions of their sum, then per-page precision and recall."""
    t, p = shingles(truth), shingles(pred)
    tp = fp = fn = 0.0
    for sh in t.keys() | p.keys():
        a, b = t.get(sh, 0), p.get(sh, 0)
        tp += min(a, b)
        fp += max(0, b - a)
        fn += max(0, a - b)
    total = tp + fp + fn
    if total:
        tp, fp, fn = tp / total, fp / total, fn / total
    if fp == 0 and fn == 0:
        return tp, fp, 1.0, 1.0
    precision = 0.0 if tp == 0 and fp == 0 else tp / (tp + fp)
    recall = 0.0 if tp == 0 and fn == 0 else tp / (tp + fn)
    return tp, fp, precision, recall


@dataclass
class Result:
    name: str
    precision: float
    recall: float
    f1: float
    ms_per_page: float
    per_page: dict[str, tuple[float, float]]


def evaluate(name: str, extract: Callable[[str, str], str], pages: dict[str, tuple[str, str, str]]) -> Result:
    precisions, recalls = [], []
    per_page: dict[str, tuple[float, float]] = {}
    elapsed = 0.0
    for pid, (html, url, truth) in pages.items():
        start = time.perf_counter()
        pred = extract(html, url) or ""
        elapsed += time.perf_counter() - start
        tp, fp, precision, recall = page_score(truth, pred)
        if tp + fp > 0:
            precisions.append(precision)
        recalls.append(recall)
        per_page[pid] = (precision, recall)
    p = sum(precisions) / len(precisions) if precisions else 0.0
    r = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return Result(name, p, r, f1, 1000 * elapsed / max(1, len(pages)), per_page)


def load_pages(data: Path) -> dict[str, tuple[str, str, str]]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {}
    for pid, gt in sorted(truth.items()):
        path = data / "html" / f"{pid}.html"
        if path.exists():
            pages[pid] = (path.read_text(encoding="utf-8"), gt.get("url", ""), gt.get("articleBody", ""))
    return pages


def baseline(html: str, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


def ours(html: str, url: str) -> str:
    from monitor.extract import extract_article

    ex = extract_article(html, url)
    return ex.text if ex else ""


def default_data() -> Path:
    repo = Path(__file__).resolve().parents[1]
    for cand in (repo.parent / "shared", repo.parent.parent / "shared"):
        if (cand / "data" / "articles" / "ground-truth.json").exists():
            return cand / "data" / "articles"
    return repo.parent / "shared" / "data" / "articles"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--show-worst", type=int, default=0, help="list the N pages with the lowest F1 for ours")
    args = ap.parse_args(argv)
    if not (args.data / "ground-truth.json").exists():
        print(f"no benchmark data at {args.data}", file=sys.stderr)
        return 2
    pages = load_pages(args.data)
    ours("<html><body><p>warm up</p></body></html>", "")  # imports and models, not timed
    baseline("<html><body><p>warm up</p></body></html>", "")
    results = [evaluate("trafilatura extract() (baseline)", baseline, pages), evaluate("monitor", ours, pages)]
    print(f"{len(pages)} pages from {args.data}")
    print(f"{'extractor':36} {'precision':>9} {'recall':>7} {'F1':>7} {'ms/page':>8}")
    for res in results:
        print(f"{res.name:36} {res.precision:9.3f} {res.recall:7.3f} {res.f1:7.3f} {res.ms_per_page:8.1f}")
    base, mine = results
    print(f"{'ratio monitor / baseline':36} {mine.precision / base.precision:9.3f} {mine.recall / base.recall:7.3f} "
          f"{mine.f1 / base.f1:7.3f} {mine.ms_per_page / base.ms_per_page:8.2f}")
    if args.show_worst:
        def f1(pr: tuple[float, float]) -> float:
            return 2 * pr[0] * pr[1] / (pr[0] + pr[1]) if sum(pr) else 0.0
        worst = sorted(mine.per_page.items(), key=lambda kv: f1(kv[1]))[:args.show_worst]
        for pid, (p, r) in worst:
            bp, br = base.per_page[pid]
            print(f"  {pid[:16]} ours P={p:.3f} R={r:.3f}   baseline P={bp:.3f} R={br:.3f}  {pages[pid][1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
