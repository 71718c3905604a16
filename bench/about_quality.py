"""Quality of the bundled kz-mediation rule on ../shared/data/stories (issue 12): one table.

    nice .venv/bin/python -m bench.about_quality [--config config.toml]

Every report of the corpus is matched, as the daemon would, against the bundled rule (about()
clause, examples, counterexamples from config.toml) and, as the baseline, against the keyword
rule config.toml shipped before (`BASELINE`). Precision and recall on the `seed_rule` labels per
language and overall; the false positives and misses by id; whether the quote holds the labelled
sentence. The corpus is a test set only: nothing from it is in the rule, its examples or the
threshold (chosen on bench/data/meaning_pairs.json, see bench/about_threshold.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

from monitor.config import load_config
from monitor.match import Document, RuleSet, rule_set

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "stories" / "corpus.jsonl"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/data/stories/corpus.jsonl")
RULE = "kz-mediation"
BASELINE = ('@kazakhstan NEAR/15 (mediator* OR "venue for negotiations" OR "good services" OR посредни* '
            'OR "площадку для переговоров" OR "добрые услуги")')
ENV = {k: "x" for k in ("SMTP_HOST", "SMTP_USERNAME", "SMTP_PASSWORD", "ALERT_EMAIL_FROM", "ALERT_EMAIL_TO")}
ENV["WEBHOOK_URL"] = "https://127.0.0.1/hook"


def _pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config.toml"))
    args = ap.parse_args()
    os.environ.update({k: v for k, v in ENV.items() if k not in os.environ})
    import monitor.stages  # noqa: F401  (registers the stages' config checks)

    cfg = load_config(Path(args.config))
    t0 = time.process_time()
    ents = {e.name: e for e in cfg.entities}
    bundled = next(r for r in cfg.rules if r.name == RULE)
    words_only = bundled.query[:bundled.query.index(" AND about(")]
    rules = {"about": rule_set(cfg, {RULE}),
             "baseline": RuleSet([(RULE, BASELINE)], ents),
             # Ablations: the rule's entity clauses alone; its about() clause alone (with its
             # examples and counterexamples); the about() statement alone, default threshold.
             "entities": RuleSet([(RULE, words_only)], ents),
             "about_only": RuleSet([(RULE, bundled.query[bundled.query.index("about("):])], ents,
                                   {RULE: (bundled.examples, bundled.counterexamples)}),
             "bare_about": RuleSet([(RULE, bundled.query[bundled.query.index("about("):])], ents)}
    build = time.process_time() - t0
    recs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    counts: dict[str, dict[str, list[int]]] = {k: defaultdict(lambda: [0, 0, 0]) for k in rules}
    wrong: dict[str, list[str]] = {k: [] for k in rules}
    quotes = [0, 0, 0]
    for r in recs:
        doc = Document(title=r["title"], body=r["text"], lang=r["language"])
        gold = r["seed_rule"] == "yes"
        for name, rs in rules.items():
            ms = rs.match(doc)
            hit = bool(ms)
            for key in (r["language"], "all"):
                c = counts[name][key]
                c[0] += hit and gold
                c[1] += hit and not gold
                c[2] += gold and not hit
            if hit != gold:
                wrong[name].append(("FP " if hit else "FN ") + r["id"])
            if name == "about" and hit and gold:
                quotes[1] += 1
                same = [bool(st.text.strip() and (r["quote"] in st.text or st.text.strip() in r["quote"]))
                        for st in ms[0].statements]
                quotes[0] += bool(same and same[0])
                quotes[2] += any(same)
    langs = sorted(k for k in counts["about"] if k != "all") + ["all"]
    print(f"\n## {RULE} on stories/corpus.jsonl ({len(recs)} reports, 18 yes)\n")
    print("| language | yes | no | bundled P | bundled R | old keywords P | old keywords R |")
    print("|---|---|---|---|---|---|---|")
    for lang in langs:
        yes = sum(1 for r in recs if (lang == "all" or r["language"] == lang) and r["seed_rule"] == "yes")
        no = sum(1 for r in recs if (lang == "all" or r["language"] == lang)) - yes
        cells = []
        for name in ("about", "baseline"):
            p, rc = _pr(*counts[name][lang])
            cells += [f"{p:.2f}", f"{rc:.2f}" if yes else "-"]
        print(f"| {lang} | {yes} | {no} | " + " | ".join(cells) + " |")
    print("\n| rule (all languages) | P | R | wrong |")
    print("|---|---|---|---|")
    for name, label in (("about", "bundled: " + bundled.query[:60] + "…"), ("baseline", "old keyword rule"),
                        ("entities", "its entity clauses only: " + words_only),
                        ("about_only", "its about() only, with examples/counterexamples"),
                        ("bare_about", "its about() statement only, default threshold")):
        p, rc = _pr(*counts[name]["all"])
        print(f"| {label} | {p:.2f} | {rc:.2f} | {len(wrong[name])}: {' '.join(wrong[name][:8])}"
              f"{' …' if len(wrong[name]) > 8 else ''} |")
    print(f"labelled quote sentence quoted first: {quotes[0]} of {quotes[1]} matched yes reports; "
          f"among the quoted sentences: {quotes[2]}")
    print(f"rule build (embeds statement, examples, counterexamples): {build * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
