"""What meaning costs at ingest (issue 12): one command, one table, baseline in the same run.

    nice .venv/bin/python -m bench.about_cost [--runs 3] [--rules 1000]

Per article of ../shared/data/stories (88 reports, 13 languages), CPU time of what ingest does
with rules:

- **baseline**: 1,000 keyword rules, no model (today's ingest match step);
- **+ model**: the same, plus the article vector (embedded once, stored for stories and
  backtests) and 1,000 about() rules, each alone (the presearcher keeps every one: the worst
  case), evaluated the way the daemon does (article-vector gate, then sentence vectors once per
  article for the clauses that pass it);
- **+ model, combined**: the 1,000 about() rules each ANDed with a keyword, as rules are usually
  written: sentences are scored only for articles that pass the words.

Also the model's load time and the RSS of a process holding the model, the rules and every module
the daemon imports. Each run is
a fresh child process; the table gives the median of the runs and their spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from itertools import product
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "stories" / "corpus.jsonl"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/data/stories/corpus.jsonl")

_WHO = ["Kazakhstan", "Turkey", "Brazil", "India", "Japan", "Germany", "France", "Egypt", "Mexico", "Norway",
        "Poland", "Kenya", "Chile", "Vietnam", "Canada", "Spain", "Italy", "Greece", "Peru", "Ghana",
        "Uzbekistan", "Georgia", "Serbia", "Morocco", "Thailand"]
_WHAT = ["is ready to host peace talks between its neighbours", "raises its key interest rate to fight inflation",
         "signs a border treaty with its neighbour", "sends rescue teams after a strong earthquake",
         "dock workers strike over the automation of cranes", "opens a new railway line to the coast",
         "bans exports of grain for six months", "says it will not join the military alliance",
         "offers to mediate in the conflict", "expels diplomats over spying",
         "announces early parliamentary elections", "cuts taxes on small businesses",
         "builds its first nuclear power plant", "reports record wheat harvest",
         "ends fuel subsidies after protests", "hosts a summit on climate finance",
         "recalls its ambassador after the border incident", "doctors strike over unpaid wages",
         "floods force thousands to leave their homes", "launches a satellite to monitor crops",
         "wins the football world cup qualifier", "president pardons jailed journalists",
         "central bank sells gold reserves", "opens its airspace to foreign airlines",
         "says it is not a mediator but offers a venue for talks", "imposes a curfew after riots",
         "signs a gas supply deal for ten years", "court bans the opposition party",
         "parliament approves the new budget", "plans to switch its alphabet to Latin script",
         "unemployment falls to a ten-year low", "wildfires destroy forests in the south",
         "offers citizenship to foreign investors", "closes schools because of the flu epidemic",
         "joins the free trade agreement", "blames hackers for the power outage",
         "minister resigns after the corruption scandal", "orders fighter jets from abroad",
         "says the ceasefire is holding", "refuses to extradite the former minister"]
_KEYWORDS = ["talks", "rate", "treaty", "earthquake", "strike", "railway", "grain", "alliance", "mediator",
             "diplomats", "elections", "taxes", "nuclear", "harvest", "subsidies", "summit", "ambassador",
             "wages", "floods", "satellite"]


def statements(n: int) -> list[str]:
    return [f"{who} {what}" for who, what in product(_WHO, _WHAT)][:n]


def _rss() -> tuple[float, float]:
    vals = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                vals[line.split(":")[0]] = int(line.split()[1]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def child(n_rules: int) -> dict[str, Any]:
    from monitor.match import Document, RuleSet

    recs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    docs = [Document(title=r["title"], body=r["text"], lang=r["language"]) for r in recs]
    kw_rules = [(f"k{i}", f'{_KEYWORDS[i % len(_KEYWORDS)]} AND {_WHO[i % len(_WHO)]}') for i in range(n_rules)]
    base = RuleSet(kw_rules)
    rss_before = _rss()[0]

    t0, c0 = time.perf_counter(), time.process_time()
    from monitor.embed import article_text, get_embedder

    emb = get_embedder()
    load_wall, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    texts = statements(n_rules)
    alone = RuleSet(kw_rules + [(f"a{i}", f'about("{t}")') for i, t in enumerate(texts)])
    combined = RuleSet(kw_rules + [(f"c{i}", f'{_KEYWORDS[i % len(_KEYWORDS)]} AND about("{t}")')
                                   for i, t in enumerate(texts)])

    def per_article(fn: Any) -> list[float]:
        out = []
        for d in docs:
            c = time.process_time()
            fn(d)
            out.append((time.process_time() - c) * 1000)
        return out

    def with_model(rs: RuleSet) -> Any:
        def run(d: Document) -> None:
            vec = emb.embed([article_text(d.title, d.body)])[0]
            rs.match(Document(title=d.title, body=d.body, lang=d.lang, vector=vec))
        return run

    base_ms = per_article(base.match)
    alone_ms = per_article(with_model(alone))
    comb_ms = per_article(with_model(combined))
    import monitor.daemon  # noqa: F401  (everything the daemon process imports besides)
    import monitor.stages  # noqa: F401
    rss, hwm = _rss()
    return {"load_wall": load_wall, "load_cpu": load_cpu, "base": statistics.median(base_ms),
            "alone": statistics.median(alone_ms), "combined": statistics.median(comb_ms),
            "alone_p90": sorted(alone_ms)[int(0.9 * len(alone_ms))], "rss_before": rss_before,
            "rss": rss, "hwm": hwm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.rules)))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-m", "bench.about_cost", "--child", "--rules", str(args.rules)],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))

    def cell(key: str) -> str:
        xs = [r[key] for r in runs]
        return f"{statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})"

    base = statistics.median(r["base"] for r in runs)
    print(f"\n## Ingest CPU per median article, {args.rules} rules ({args.runs} runs: median (min-max))\n")
    print("| ingest match step | ms CPU / article | added by the model |")
    print("|---|---|---|")
    print(f"| baseline: {args.rules} keyword rules, no model | {cell('base')} | - |")
    for key, label in (("alone", f"+ article vector + {args.rules} about() rules alone"),
                       ("combined", f"+ article vector + {args.rules} about() rules AND a keyword")):
        added = statistics.median(r[key] for r in runs) - base
        print(f"| {label} | {cell(key)} | {added:.1f} ms |")
    print(f"\np90 article, about() alone: {cell('alone_p90')} ms")
    print("\n| model | value |")
    print("|---|---|")
    print(f"| load, wall s | {cell('load_wall')} |")
    print(f"| load, CPU s | {cell('load_cpu')} |")
    print(f"| RSS before the model (rules, corpus) MB | {cell('rss_before')} |")
    print(f"| RSS with the model, {2 * args.rules} about() rules and the daemon's modules MB | {cell('rss')} |")
    print(f"| peak RSS MB | {cell('hwm')} |")


if __name__ == "__main__":
    main()
