"""How the default about() threshold was chosen (issue 12), on our own sentences only.

    nice .venv/bin/python -m bench.about_threshold

bench/data/meaning_pairs.json: ten statements, each in ten languages, written for this project
(not from ../shared/data/stories). Each statement's English text plays an about() clause; a
sentence in any language is a positive when it states the same thing (the seed statement and its
paraphrase are one meaning), else a negative (including the hard ones: the opposite claim,
another conflict, another country's offer, a trade "platform"). Printed: precision, recall and F1
of `similarity >= t` for t from 0.30 to 0.80, pooled over all clauses and languages; the F1-best
t; the recall-first choice, which is the default: the highest t that keeps recall >= RECALL_FLOOR
(a missed statement costs more than a spare alert, and a rule's other clauses and counterexamples
remove the rest); and, at the default, recall per language (the model does not know Kazakh).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monitor.embed import get_embedder
from monitor.match.meaning import DEFAULT_THRESHOLD

DATA = Path(__file__).resolve().parent / "data" / "meaning_pairs.json"
LANGS = ["en", "ru", "uk", "kk", "de", "fr", "es", "tr", "zh", "ar"]
SAME = {"seed": "seed", "seed-para": "seed"}  # statement id -> meaning id
RECALL_FLOOR = 0.75


def main() -> None:
    st = json.loads(DATA.read_text(encoding="utf-8"))["statements"]
    emb = get_embedder()
    meaning = [SAME.get(s["id"], s["id"]) for s in st]
    vec = {lang: emb.embed([s[lang] for s in st]) for lang in LANGS}
    rows: list[tuple[str, float, bool]] = []  # (language, similarity, same meaning)
    for i in range(len(st)):
        q = vec["en"][i]
        for lang in LANGS:
            for j in range(len(st)):
                if lang == "en" and i == j:
                    continue
                rows.append((lang, float(vec[lang][j] @ q), meaning[i] == meaning[j]))
    sims = np.array([r[1] for r in rows])
    gold = np.array([r[2] for r in rows])
    print(f"\n## Threshold sweep: {int(gold.sum())} same-meaning pairs, {int((~gold).sum())} others\n")
    print("| threshold | precision | recall | F1 |")
    print("|---|---|---|---|")
    best = (0.0, 0.0)
    recall_first = 0.0
    for t in np.round(np.arange(0.30, 0.801, 0.05), 2):
        pred = sims >= t
        tp, fp, fn = int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        best = max(best, (f, float(t)))
        if r >= RECALL_FLOOR:
            recall_first = float(t)
        mark = " (default)" if abs(t - DEFAULT_THRESHOLD) < 1e-9 else ""
        print(f"| {t:.2f}{mark} | {p:.2f} | {r:.2f} | {f:.2f} |")
    print(f"\nF1-best threshold: {best[1]:.2f} (F1 {best[0]:.2f}); recall-first (highest with recall >= "
          f"{RECALL_FLOOR}): {recall_first:.2f}; default in monitor/match/meaning.py: {DEFAULT_THRESHOLD}")
    print("\n| language | recall at default | hard negatives above default |")
    print("|---|---|---|")
    for lang in LANGS:
        sel = np.array([r[0] == lang for r in rows])
        pos = sel & gold
        print(f"| {lang} | {float((sims[pos] >= DEFAULT_THRESHOLD).mean()):.2f} | "
              f"{int(((sims >= DEFAULT_THRESHOLD) & sel & ~gold).sum())} |")


if __name__ == "__main__":
    main()
