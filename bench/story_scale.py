"""Event stories at scale: assigning one new article with 100,000 articles inside the window.

    python -m bench.story_scale [--articles N] [--checks N] [--backend sqlite|postgresql|both]

(column "caseless ms": the same for a new article in a script without capitals, Chinese, which
has no names to look candidates up by and is compared with the window's 200 newest reports)

Stores N synthetic articles published within the event window (3 days either side of now: the
worst case, all of them are candidates by time) with what the story stage keeps of each: its
vector (``article_vector``, float16, 1 KB), its names and figures (``story_event``), its
candidate keys (``story_event_key``) and its copy-detection bands. Names follow a Zipf law over
a vocabulary of 50,000 names and figures over 3,000 numbers, so common names ("Russia",
"President") have long key lists, as in real news.

Then times ``StoryIndex.assign`` (copy check and event decision; the vector is given, the
model's cost is separate: bench/story_events.py prints it) for new articles made of the same
names and figures, each in a rolled-back transaction so every check sees the same database. The
baseline in the same run is the copy-only stage of before (``events=False``) on the same full
database; "vs copies" is the ratio. Vectors are read only for the (at most 60) candidates that
share most keys, so the cost does not grow with the window: the key lists are read capped
(100 most recent entries per key, an index range scan).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text
from sqlmodel import Session

from bench.dedup_scale import CHUNK, databases
from monitor.embed import MODEL_NAME, pack
from monitor.store import Article, Source, create_db_engine, upgrade
from monitor.story import content_hash
from monitor.story.events import Signature, name_key, signature
from monitor.story.near import BANDS
from monitor.story.stories import StoryIndex

DIM = 512
NAMES = 50_000
FIGURES = 3_000
_SYL = ["ka", "ve", "lo", "dra", "mi", "ta", "sor", "ne", "vi", "ra", "ko", "ses", "al", "tor", "ba", "lin",
        "mar", "du", "pe", "zan", "hol", "ri", "ga", "ust"]


def vocabulary(rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < NAMES:
        out.add("".join(rng.choice(_SYL) for _ in range(rng.randint(2, 4))).capitalize())
    return sorted(out)


def zipf(rng: random.Random, n: int, k: int) -> list[int]:
    """k distinct ranks in [0, n), rank r drawn with weight 1/(r+1)."""
    out: set[int] = set()
    while len(out) < k:
        out.add(min(n - 1, int(n ** rng.random()) - 1))
    return sorted(out)


def fill(engine: Engine, n: int, rng: random.Random, names: list[str], now: datetime, window: float) -> float:
    started = time.perf_counter()
    keys = [name_key(w) for w in names]
    nrng = np.random.default_rng(3)
    with Session(engine) as s:
        s.add(Source(name="bulk", url="http://bulk.test/feed"))
        s.add(Source(name="new", url="http://new.test/feed"))
        s.commit()
    pg = engine.dialect.name == "postgresql"
    ph = "%s" if pg else "?"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if not pg:
            cur.execute("PRAGMA cache_size=-1000000")
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            ids = range(1 + lo, 1 + hi)
            pub = [now + timedelta(seconds=rng.uniform(-window, window)) for _ in ids]
            cur.executemany(f"INSERT INTO story (id, title, created_at) VALUES ({ph}, {ph}, {ph})",
                            [(i, f"story {i}", p) for i, p in zip(ids, pub, strict=True)])
            cur.executemany(
                "INSERT INTO article (id, source_id, guid, url, original_url, title, text, published, "
                "published_estimated, full_text, content_hash, first_seen_at, story_id) VALUES "
                f"({', '.join([ph] * 13)})",
                [(i, 1, f"g{i}", f"http://bulk.test/{i}", f"http://bulk.test/{i}", f"synthetic {i}",
                  f"synthetic article {i}", p, False, True, f"h{i}", p, i) for i, p in zip(ids, pub, strict=True)])
            vecs = nrng.standard_normal((hi - lo, DIM)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            cur.executemany(f"INSERT INTO article_vector (article_id, model, vector) VALUES ({ph}, {ph}, {ph})",
                            [(i, MODEL_NAME, pack(v)) for i, v in zip(ids, vecs, strict=True)])
            ev_rows: list[tuple[int, int, str]] = []
            key_rows: list[tuple[int, int, int]] = []
            for i, p in zip(ids, pub, strict=True):
                lead = frozenset(keys[r] for r in zipf(rng, NAMES, rng.randint(4, 12)))
                figs = frozenset(str(r + 2) for r in zipf(rng, FIGURES, rng.randint(0, 6)))
                sig = Signature(frozenset(list(lead)[:2]), lead, lead, figs)
                at = int(p.timestamp())
                ev_rows.append((i, at, json.dumps(sig.to_json())))
                key_rows.extend((k, at, i) for k in sig.index_keys())
            cur.executemany(f"INSERT INTO story_event (article_id, at, sig) VALUES ({ph}, {ph}, {ph})", ev_rows)
            cur.executemany(f"INSERT INTO story_event_key (key, at, article_id) VALUES ({ph}, {ph}, {ph})", key_rows)
            bands = nrng.integers(-(2 ** 31), 2 ** 31, size=(hi - lo, BANDS), dtype=np.int64)
            if pg:
                cur.executemany("INSERT INTO dedup_sig (article_id, bands) VALUES (%s, %s)",
                                list(zip(ids, bands.tolist(), strict=True)))
            else:
                cur.executemany("INSERT INTO dedup_band (band, article_id) VALUES (?, ?)",
                                [(int(b), i) for i, row in zip(ids, bands.tolist(), strict=True) for b in row])
            raw.commit()
            print(f"  {hi:,} articles stored ({time.perf_counter() - started:.0f} s)", flush=True)
        if pg:
            cur.execute("SELECT setval('story_id_seq', (SELECT max(id) FROM story))")
            cur.execute("SELECT setval('article_id_seq', (SELECT max(id) FROM article))")
            raw.commit()
    finally:
        raw.close()
    if pg:
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def query_article(rng: random.Random, names: list[str], i: int) -> tuple[str, str]:
    """A new report: a headline and four paragraphs naming people and places, with figures."""
    def sentence() -> str:
        ws = [names[r] for r in zipf(rng, NAMES, 3)]
        return (f"Officials in {ws[0]} said on Tuesday that {ws[1]} and {ws[2]} agreed on "
                f"{rng.randint(2, 3000)} points, up {rng.randint(2, 90)}.{rng.randint(1, 9)} percent.")
    title = f"{names[zipf(rng, NAMES, 1)[0]]} and {names[zipf(rng, NAMES, 1)[0]]} in talks ({i})"
    return title, "\n\n".join(" ".join(sentence() for _ in range(3)) for _ in range(4))


def caseless_article(rng: random.Random, i: int) -> tuple[str, str]:
    """A new report in a script without capitals (Chinese characters and figures): no names to
    look candidates up by, so it is compared with the window's newest reports."""
    han = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]

    def sentence() -> str:
        return "".join(rng.choice(han) for _ in range(30)) + f"{rng.randint(2, 3000)}" + "。"
    return f"{''.join(rng.choice(han) for _ in range(12))}（{i}）", "\n\n".join(
        "".join(sentence() for _ in range(3)) for _ in range(4))


def _one(engine: Engine, idx: StoryIndex, i: int, title: str, body: str, vec: np.ndarray, now: datetime
         ) -> tuple[float, int]:
    with Session(engine) as s:
        a = Article(source_id=2, guid=f"q{i}", url=f"http://new.test/{i}", original_url=f"http://new.test/{i}",
                    title=title, text=body, content_hash=content_hash(body), published=now, first_seen_at=now)
        s.add(a)
        s.flush()
        t0 = time.perf_counter()
        idx.assign(s, a, now=now, vector=vec)
        dt = (time.perf_counter() - t0) * 1000
        s.rollback()
    return dt, len(signature(title, body).query_keys())


def sizes(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            return {rel: int(c.execute(text(f"SELECT pg_total_relation_size('{rel}')")).scalar_one())
                    for rel in ("story_event", "story_event_key", "article_vector")}
        rows = c.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all()
        return {str(k): int(v) for k, v in rows if str(k).startswith(("story_event", "ix_story_event", "article_vector",
                                                                      "sqlite_autoindex_article_vector"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--checks", type=int, default=220)
    ap.add_argument("--backend", default="both", choices=["sqlite", "postgresql", "both"])
    args = ap.parse_args()
    rng = random.Random(11)
    names = vocabulary(rng)
    now = datetime.now(UTC)
    window = 3 * 86400.0
    queries = [query_article(rng, names, i) for i in range(args.checks)]
    caseless = [caseless_article(rng, i) for i in range(args.checks)]
    qv = np.random.default_rng(9).standard_normal((args.checks, DIM)).astype(np.float32)
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmpdir:
        for label, url, _ in databases(args.backend, Path(tmpdir)):
            print(f"{label}: storing {args.articles:,} articles in the window ...", flush=True)
            full = create_db_engine(url)
            upgrade(full)
            build = fill(full, args.articles, rng, names, now, window)
            events, copies = StoryIndex(events=True), StoryIndex(events=False)
            te: list[float] = []
            tc: list[float] = []
            tz: list[float] = []
            nkeys: list[int] = []
            for i, (title, body) in enumerate(queries):  # interleaved: both see the same noise
                de, k = _one(full, events, i, title, body, qv[i], now)
                dc, _ = _one(full, copies, i, title, body, qv[i], now)
                dz, _ = _one(full, events, i, *caseless[i], qv[i], now)
                if i >= 20:
                    te.append(de)
                    tc.append(dc)
                    tz.append(dz)
                    nkeys.append(k)
            rows.append((label, te, tc, tz, sizes(full), build, statistics.median(nkeys)))
            full.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"{'backend':10} {'in window':>10} {'events median ms':>16} {'p95':>6} {'copies only ms':>14} "
          f"{'vs copies':>9} {'caseless ms':>11} {'event data':>10}")
    for label, te, tc, tz, sz, build, mk in rows:
        me, mc, mz = statistics.median(te), statistics.median(tc), statistics.median(tz)
        spread = f"{min(te):.1f}-{statistics.quantiles(te, n=20)[-1]:.1f}"
        print(f"{label:10} {args.articles:>10,} {me:16.2f} {statistics.quantiles(te, n=20)[-1]:6.1f} {mc:14.2f} "
              f"{me / mc:8.1f}x {mz:11.2f} {sum(sz.values()) / 2**20:7.0f} MB   (built in {build:.0f} s; range {spread} ms)")
        print("           " + ", ".join(f"{n} {v / 2**20:.0f} MB" for n, v in sorted(sz.items(), key=lambda kv: -kv[1])
                                        if v > 2**20))
        print(f"           bar (median <= 20 ms): {'MET' if me <= 20 else 'NOT MET'}; median {mk:.0f} lookup keys per new article; "
              f"caseless: an article in a script without capitals (Chinese), compared with the window's "
              f"newest reports: {'MET' if mz <= 20 else 'NOT MET'}")
    print(f"({len(queries) - 20} timed checks per row; process peak RSS {rss:.0f} MB: nothing of the window "
          "is held in memory, entries older than twice the window are pruned from the tables)")


if __name__ == "__main__":
    main()
