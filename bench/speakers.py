"""Benchmark: who said it, and which sentence is quoted, per language, beside a baseline commit.

    python -m bench.speakers [--baseline 20e05d6] [--compare DIR] [--runs 3] [--json]

Sets: the 18 seed reports of ``../shared/data/stories/corpus.jsonl`` (each labelled with its
``quote`` and ``speaker``), matched by ``SEED_RULE`` (the seed statement as an analyst would
write it for the languages the set holds), and ``bench/data/speakers.jsonl``: short reports
written for this benchmark in the other languages we alert in, each with its own rule, gold
quote, speaker and the speaker's entity (or none).

Scores per language:
- speaker: the alert's speaker, normalised to an entity key, equals the gold entity (for a
  speaker who is no configured entity: the gold name's last word is in the alert's speaker; for
  a report that names no speaker: the alert names none);
- quote: the alert's quote (its first statement) contains the gold quote.

The baseline column runs this same script on the code of another commit (``git archive`` into a
temporary folder, imported first), so both columns score the same sets the same way. A baseline
without ``speaker_entity`` is normalised by this script's own alias check (``_entity_of``).

Cost rows (CPU time; the ingest pages' and cold rows also beside ``--compare DIR``, another
checkout's ``monitor`` package, e.g. ``git archive <commit> monitor | tar -x -C DIR``, in the
same run):
- first match of a fresh process per language (``--first-langs``);
- cold: a fresh process's first match of one report in each language, all nine in turn (the
  one-off cost: speaker patterns, gates, country names), and the same matches again; ``--runs``
  processes each, median and min..max; "cache kept": the process loads what an earlier one left
  in ``$MONITOR_CACHE_DIR`` (compiled patterns, country names), "empty cache": a new directory
  each (a machine's first process);
- bench.ingest's pages: match + the gate's body_statements per article, steady state, a fresh
  process's first pass (its one-off costs on these pages), a digest of every statement and
  speaker, and of the speaker ``Attributor.find`` gives every sentence of every page: the codes
  must agree on both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STORIES = ROOT.parent / "shared" / "data" / "stories" / "corpus.jsonl"
OWN = ROOT / "bench" / "data" / "speakers.jsonl"
BASELINE = "20e05d6"  # main before issue 18


@dataclass(frozen=True)
class Entity:
    name: str
    aliases: tuple[str, ...]
    inflect: bool = True
    display: str | None = None


ENTITIES = {e.name: e for e in [
    Entity("kazakhstan", ("Kazakhstan", "Kasachstan", "Kazakistan", "Kazajistán", "Казахстан",
                          "Қазақстан", "哈萨克斯坦")),
    Entity("tokayev", ("Tokayev", "Tokaev", "Tokajew", "Tokaïev", "Tokáyev", "Токаев", "Тоқаев",
                       "Токаєв", "托卡耶夫"), display="Tokayev"),
]}
for _line in OWN.read_text(encoding="utf-8").splitlines() if OWN.exists() else []:
    if _line.strip() and json.loads(_line).get("entities"):
        for _k, _v in json.loads(_line)["entities"].items():
            ENTITIES.setdefault(_k, Entity(_k, tuple(_v["aliases"]), display=_v.get("display")))

# The seed statement: Kazakhstan + "not a mediator" + "a venue / good services", in the words of
# each language of the set (the renderings listed in the set's README).
SEED_RULE = (
    "@kazakhstan AND (mediator* OR Vermittler* OR arabulucu* OR посредни* OR посередни* OR делдал* "
    "OR 调解 OR médiateur* OR mediador*) AND (\"good services\" OR \"good offices\" OR venue OR "
    "platform OR \"добрые услуги\" OR площадк* OR \"добрі послуги\" OR майданчик* OR "
    "\"игі қызмет\" OR алаң* OR \"gute Dienste\" OR Verhandlungsort OR 良好服务 OR 场所 OR "
    "\"iyi hizmetler\" OR mekân OR \"bons offices\" OR \"buenos oficios\")")


def _load() -> list[dict[str, Any]]:
    recs = []
    if STORIES.exists():
        for line in STORIES.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["seed_rule"] == "yes":
                r["rule"] = SEED_RULE
                r["set"] = "stories"
                recs.append(r)
    if OWN.exists():
        for line in OWN.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                r["set"] = "own"
                recs.append(r)
    return recs


def _entity_of(phrase: str | None) -> str | None:
    """The configured entity one of whose aliases (any inflection) ends last in ``phrase`` (the
    head of "Kazakhstan's President Tokaev" is its end)."""
    if not phrase:
        return None
    from monitor.match.query import inflections
    from monitor.match.text import words
    have = words(phrase)
    best: tuple[int, str] | None = None
    for e in ENTITIES.values():
        for alias in e.aliases:
            parts = alias.split()
            for f in inflections(parts[-1]):
                form = words(" ".join([*parts[:-1], f]))
                n = len(form)
                for i in range(len(have) - n, -1, -1):
                    if n and have[i:i + n] == form:
                        if best is None or i + n > best[0]:
                            best = (i + n, e.name)
                        break
    return best[1] if best else None


def _gold_entity(r: dict[str, Any]) -> str | None:
    return r["speaker_entity"] if "speaker_entity" in r else _entity_of(r.get("speaker"))


def score(recs: list[dict[str, Any]]) -> dict[str, Any]:
    from monitor.match import Document, RuleSet
    rows: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "speaker": 0, "quote": 0})
    misses: list[str] = []
    for r in recs:
        rules = RuleSet([("r", r["rule"])], ENTITIES)
        ms = rules.match(Document(title=r["title"], body=r["text"], lang=r["language"]))
        row = rows[r["language"]]
        row["n"] += 1
        if not ms:
            misses.append(f"{r['id']}: no match")
            continue
        m = ms[0]
        quote = m.quote or ""
        first = m.statements[0] if m.statements else None
        pred_ent = (first.speaker_entity if first is not None and hasattr(first, "speaker_entity")
                    and m.speaker == first.speaker else _entity_of(m.speaker))
        gold_ent = _gold_entity(r)
        if gold_ent is not None:
            ok_sp = pred_ent == gold_ent
        elif r.get("speaker"):
            said = (m.speaker or "").lower()
            ok_sp = pred_ent is None and bool(said) and r["speaker"].split()[-1].lower() in said
        else:
            ok_sp = m.speaker is None
        ok_q = bool(r.get("quote")) and r["quote"] in quote
        row["speaker"] += ok_sp
        row["quote"] += ok_q
        if not ok_sp:
            misses.append(f"{r['id']}: speaker {m.speaker!r} ({pred_ent}) want {r.get('speaker')!r} ({gold_ent})")
        if not ok_q:
            misses.append(f"{r['id']}: quote {quote[:90]!r}")
    return {"rows": dict(rows), "misses": misses}


LANGS = ("en", "ru", "uk", "kk", "de", "fr", "es", "tr", "zh")


def main_speaker() -> dict[str, Any]:
    """Second score, on the stories corpus' other reports (not the seed): is the article's most
    often attributed person the one labelled ``speaker`` ("who makes the main statement")?

    Uses the speaker module directly (no rule matches these reports), so it runs only on code
    that has ``monitor.match.speakers``; the baseline has no such score.
    """
    from collections import Counter

    from monitor.match.speakers import Attributor, Entities, make_speaker
    from monitor.match.text import fold
    ents = Entities(ENTITIES)
    rows: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "ok": 0})
    misses = []
    for line in STORIES.read_text(encoding="utf-8").splitlines() if STORIES.exists() else []:
        r = json.loads(line)
        if r["seed_rule"] == "yes" or r["language"] not in LANGS:
            continue
        att = Attributor(r["text"], ents, title=r["title"])
        keys = []
        for f in att.all_speakers():
            g = att._resolve(f, f.pos)
            sp = make_speaker(g.phrase, ents) if g is not None and g.kind == "person" else None
            if sp:
                keys.append(sp.entity or fold(sp.name.split()[-1])[:5])
        pred = Counter(keys).most_common(1)[0][0] if keys else None
        gold = None
        if r["speaker"]:
            sp = make_speaker(r["speaker"], ents)
            gold = (sp.entity or fold(sp.name.split()[-1])[:5]) if sp else fold(r["speaker"].split()[-1])[:5]
        rows[r["language"]]["n"] += 1
        rows[r["language"]]["ok"] += pred == gold
        if pred != gold:
            misses.append(f"{r['id']}: {pred} want {r['speaker']}")
    return {"rows": dict(rows), "misses": misses}


def first_match(lang: str) -> dict[str, float]:
    """CPU ms of a fresh process's first ``match`` of a report in ``lang`` (what its first alert
    waits for: speaker patterns, country names, gates) and of the same match again."""
    import time

    from monitor.match import Document, RuleSet
    r = next(r for r in _load() if r["language"] == lang)
    rules = RuleSet([("r", r["rule"])], ENTITIES)
    doc = Document(title=r["title"], body=r["text"], lang=r["language"])
    out = {}
    for key in ("first", "again"):
        t0 = time.process_time()
        rules.match(doc)
        out[key] = (time.process_time() - t0) * 1000
    return out


def cold() -> dict[str, float]:
    """CPU ms of a fresh process's first ``match`` of one report in each language (what the
    first statement of each language costs on top of the same match again: the speaker patterns
    and gates it compiles, the country names it loads), summed over the languages, and of the
    same matches again. The rules compile before the clock starts."""
    import time

    from monitor.match import Document, RuleSet
    recs = _load()
    todo = []
    for lang in LANGS:
        r = next((r for r in recs if r["language"] == lang), None)
        if r is not None:
            todo.append((RuleSet([("r", r["rule"])], ENTITIES),
                         Document(title=r["title"], body=r["text"], lang=r["language"])))
    out = {}
    for key in ("first", "again"):
        t0 = time.process_time()
        for rules, doc in todo:
            rules.match(doc)
        out[key] = (time.process_time() - t0) * 1000
    out["langs"] = len(todo)
    return out


def ingest_cost() -> dict[str, Any]:
    """CPU ms per article of what ingest's main process spends on matching and quoting: the
    pages of ``bench.ingest`` (real bodies, their syndicated copies and same-topic articles),
    its rule, ``match`` (statements, speakers) and the gate's ``body_statements`` for each match
    (what a later copy of a story needs), after one warm-up pass (steady state). ``digest``:
    every statement and speaker, to show both codes quote the same."""
    import hashlib
    import time

    if str(ROOT) not in sys.path:  # run on a baseline's code: that code first, then these benches
        sys.path.append(str(ROOT))
    from bench.ingest import FEEDS, RULE
    from bench.syndicate import articles_dir, build, load_ground_truth
    from monitor.match import Document, RuleSet, body_statements
    directory = articles_dir()
    if directory is None:
        return {}
    corpus = build(load_ground_truth(directory), variants=3, n_outlets=FEEDS)
    originals = {pid[:12]: paras for pid, paras, _ in load_ground_truth(directory)}
    docs = [Document(title=it.title, body="\n\n".join(it.paragraphs or originals[it.story]))
            for it in corpus.items]
    rules = RuleSet([("r", RULE)])
    quoted: list[Any] = []

    def one_pass() -> None:
        quoted.clear()
        for d in docs:
            for m in rules.match(d):
                st = body_statements(d.body, m, d.title, rules.entities)
                quoted.append([(s.text, s.speaker) for s in (*m.statements, *st)])
    t0 = time.process_time()
    one_pass()  # the first: what the process compiles or loads on the way (speaker patterns)
    first = (time.process_time() - t0) * 1000
    t0 = time.process_time()
    one_pass()
    ms = (time.process_time() - t0) * 1000 / len(docs)
    from monitor.match.speakers import Attributor
    from monitor.match.text import split_sentences
    every = []  # the speaker of every sentence of every page, as attribution finds it
    for d in docs:
        att = Attributor(d.body, rules.entities, title=d.title)
        every.append([str(att.find(a, b)) for a, b in split_sentences(d.body)])
    return {"ms": ms, "first_pass": first, "articles": len(docs), "matches": len(quoted),
            "digest": hashlib.sha256(repr(quoted).encode()).hexdigest()[:12],
            "sentences": sum(map(len, every)),
            "every": hashlib.sha256(repr(every).encode()).hexdigest()[:12]}


def _run(args: list[str], pythonpath: str | None = None, cache: str | None = None) -> Any:
    """This script's JSON output in a fresh process (the code under ``pythonpath`` first, with
    ``cache`` as its ``$MONITOR_CACHE_DIR``)."""
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    if cache:
        env["MONITOR_CACHE_DIR"] = cache
    out = subprocess.run([sys.executable, __file__, "--json", "--no-baseline", *args], env=env,
                         capture_output=True, text=True, cwd=pythonpath or ROOT)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout)


def _baseline(ref: str, first_langs: Sequence[str] = (), ingest: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """This script run on the code of ``ref`` (imported from a temporary export): the scores,
    the first-match cost per language of ``first_langs`` and with ``ingest`` the ingest cost."""
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "monitor"], capture_output=True)
        if arch.returncode:
            print(f"baseline {ref}: {arch.stderr.decode().strip()}", file=sys.stderr)
            return None, {}
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
        firsts = {lang: _run(["--first-match", lang], tmp) for lang in first_langs}
        if ingest:
            firsts["ingest"] = _run(["--ingest-cost"], tmp)
        return _run([], tmp), firsts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--baseline", default=BASELINE, help="commit to compare with")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true", help="list every wrong speaker or quote")
    ap.add_argument("--first-match", metavar="LANG", help=argparse.SUPPRESS)  # one fresh process's row
    ap.add_argument("--first-langs", default="en,ru,zh",
                    help="languages of the first-match cost rows (comma-separated; '' for none)")
    ap.add_argument("--no-ingest", action="store_true", help="skip the ingest pages' cost row")
    ap.add_argument("--ingest-cost", action="store_true", help=argparse.SUPPRESS)  # one fresh process's row
    ap.add_argument("--compare", type=Path, metavar="DIR",
                    help="another checkout's monitor package: cold and ingest rows beside it")
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per cold row")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold row")
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)  # one fresh process's row
    args = ap.parse_args()
    if args.first_match:
        print(json.dumps(first_match(args.first_match)))
        return 0
    if args.cold:
        print(json.dumps(cold()))
        return 0
    if args.ingest_cost:
        print(json.dumps(ingest_cost()))
        return 0
    recs = _load()
    now = score(recs)
    if args.json:
        print(json.dumps(now))
        return 0
    first_langs = [x for x in args.first_langs.split(",") if x]
    base, base_first = (None, {}) if args.no_baseline else _baseline(args.baseline, first_langs, not args.no_ingest)
    now_first = {lang: _run(["--first-match", lang]) for lang in first_langs}
    base_ingest = base_first.pop("ingest", None)
    now_ingest = None if args.no_ingest else _run(["--ingest-cost"])
    compare = str(args.compare.resolve()) if args.compare else None  # before/after in one run
    comp_ingest = _run(["--ingest-cost"], compare) if compare and not args.no_ingest else None
    colds: dict[str, list[dict[str, float]]] = {"now, cache kept": [], "now, empty cache": [], "compare": []}
    with tempfile.TemporaryDirectory() as kept:
        if not args.no_cold:
            _run(["--cold"], cache=kept)  # fills the cache the "kept" rows load from
        for _ in range(0 if args.no_cold else args.runs):  # interleaved: all see the same load
            colds["now, cache kept"].append(_run(["--cold"], cache=kept))
            with tempfile.TemporaryDirectory() as empty:
                colds["now, empty cache"].append(_run(["--cold"], cache=empty))
            if compare:
                colds["compare"].append(_run(["--cold"], compare))
    print(f"speaker and quote accuracy per language ({len(recs)} reports; baseline {args.baseline})")
    print(f"{'lang':<5} {'n':>3}  {'speaker base':>12} {'speaker now':>11}  {'quote base':>10} {'quote now':>9}")
    ok = True
    for lang in sorted(now["rows"]):
        r = now["rows"][lang]
        b = base["rows"].get(lang) if base else None
        sp, qu = r["speaker"] / r["n"], r["quote"] / r["n"]
        ok &= sp >= 0.95 and qu >= 0.9
        bs = f"{b['speaker'] / b['n']:.2f}" if b else "-"
        bq = f"{b['quote'] / b['n']:.2f}" if b else "-"
        print(f"{lang:<5} {r['n']:>3}  {bs:>12} {sp:>11.2f}  {bq:>10} {qu:>9.2f}")
    tot = {k: sum(r[k] for r in now["rows"].values()) for k in ("n", "speaker", "quote")}
    if base:
        bt = {k: sum(r[k] for r in base["rows"].values()) for k in ("n", "speaker", "quote")}
        print(f"{'all':<5} {tot['n']:>3}  {bt['speaker'] / bt['n']:>12.2f} {tot['speaker'] / tot['n']:>11.2f}  "
              f"{bt['quote'] / bt['n']:>10.2f} {tot['quote'] / tot['n']:>9.2f}")
    if args.misses or not ok:
        for m in now["misses"]:
            print("  miss", m)
    print("targets (speaker >= 0.95, quote >= 0.90 in every language):", "met" if ok else "NOT met")
    ms = main_speaker()
    if ms["rows"]:
        print("\nmain speaker of the stories' other reports (the most attributed person = label)")
        print(f"{'lang':<5} {'n':>3} {'accuracy':>9}")
        for lang in sorted(ms["rows"]):
            r = ms["rows"][lang]
            print(f"{lang:<5} {r['n']:>3} {r['ok'] / r['n']:>9.2f}")
        n, k = sum(r["n"] for r in ms["rows"].values()), sum(r["ok"] for r in ms["rows"].values())
        print(f"{'all':<5} {n:>3} {k / n:>9.2f}")
        if args.misses:
            for m in ms["misses"]:
                print("  miss", m)
    if now_first:
        print("\nfirst match of a fresh process (CPU ms; 'again': the same match once more)")
        print(f"{'lang':<5} {'first base':>10} {'again base':>10} {'first now':>10} {'again now':>10}")
        for lang, now_ms in now_first.items():
            b_ms = base_first.get(lang) or {}
            cells = [f"{d[k]:.0f}" if d and k in d else "-" for d in (b_ms, now_ms) for k in ("first", "again")]
            print(f"{lang:<5} " + " ".join(f"{c:>10}" for c in cells))
    if now_ingest:
        print(f"\nbench.ingest's {now_ingest['articles']} pages, its rule: match + the gate's body_statements "
              f"({now_ingest['matches']} matches), CPU ms per article, steady state; load average "
              f"{os.getloadavg()[0]:.1f}")
        b = base_ingest or {}
        ratio = f"{now_ingest['ms'] / b['ms']:.2f}x" if b.get("ms") else "-"
        same = "-" if not b else ("yes" if b.get("digest") == now_ingest["digest"] else "NO")
        print(f"base {b.get('ms', float('nan')):.2f}  now {now_ingest['ms']:.2f}  now/base {ratio}  "
              f"same statements and speakers: {same}")
        ok &= same != "NO"
        if comp_ingest:
            c = comp_ingest
            same_st = "yes" if c["digest"] == now_ingest["digest"] else "NO"
            same_all = "yes" if c.get("every") == now_ingest["every"] else "NO"
            print(f"compare {c['ms']:.2f}  now {now_ingest['ms']:.2f}  now/compare {now_ingest['ms'] / c['ms']:.2f}x  "
                  f"same statements and speakers: {same_st}; same speaker of all {now_ingest['sentences']} "
                  f"sentences: {same_all}")
            ok &= same_st == "yes" and same_all == "yes"
            print(f"first pass of a fresh process, CPU ms in all (its one-off costs on these pages, "
                  f"cache kept): compare {c.get('first_pass', float('nan')):.0f}  "
                  f"now {now_ingest['first_pass']:.0f}")
    if colds["now, cache kept"]:
        _print_cold(colds)
    if compare:
        print(f"compare = {compare}")
    return 0 if ok else 1


def _spread(xs: list[float]) -> str:
    """Median (min..max)."""
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}..{max(xs):.0f})"


def _print_cold(colds: dict[str, list[dict[str, float]]]) -> None:
    """The cold rows: "cache kept" loads the compiled speaker patterns an earlier process left in
    ``$MONITOR_CACHE_DIR``, "empty cache" compiles them (a machine's first process)."""
    rows = [(name, runs) for name, runs in colds.items() if runs]
    print(f"\ncold: a fresh process's first match of one report in each of {int(rows[0][1][0]['langs'])} "
          f"languages, then the same again (CPU ms, all languages; {len(rows[0][1])} processes each: "
          f"median (min..max)); load average {os.getloadavg()[0]:.1f}")
    print(f"{'code':<17} {'first':>16} {'again':>16} {'one-off':>16} {'one-off/compare':>16}")
    med = {name: statistics.median(r["first"] - r["again"] for r in runs) for name, runs in rows}
    for name, runs in rows:
        cells = [_spread([r[k] for r in runs]) for k in ("first", "again")]
        cells.append(_spread([r["first"] - r["again"] for r in runs]))
        cells.append(f"{med[name] / med['compare']:.2f}x" if "compare" in med else "-")
        print(f"{name:<17} " + " ".join(f"{c:>16}" for c in cells))

if __name__ == "__main__":
    sys.exit(main())
