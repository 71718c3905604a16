"""Near-duplicate checking at scale: one new article against 1,000,000 stored ones.

    python -m bench.dedup_scale [--articles N] [--checks N] [--backend sqlite|postgresql|both]

Stores N synthetic articles (all inside the 7-day window: the worst case) with their LSH band
rows, plus real copies of the query articles, then times ``StoryIndex.assign`` -- everything a
new article costs dedup: boilerplate lookup, MinHash, claims, exact and LSH candidate lookups,
verification of candidates, story assignment, storing its bands -- for new articles of which
half are copies of a stored one. Each check runs in a transaction that is rolled back, so every
check sees the same database. The baseline in the same run is the same check on an empty
database; the ratio shows how the cost grows with the stored volume. Also prints the size of the
dedup data (band table and index, stories, the article.story_id index).

Not part of the test suite: building the SQLite database takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text
from sqlmodel import Session

from monitor.store import Article, Source, create_db_engine, upgrade
from monitor.story import content_hash
from monitor.story.near import BANDS
from monitor.story.stories import StoryIndex

PG_ADMIN = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHUNK = 20_000

_WORDS = re.findall(r"\w+", """the of and to in a is that for on was with he it as at by from his an
were are which this be or has had not but their its have they one been who more also after new
first two than year other would into over some people when about there could only government
president minister said says told police court city state country election party report market
company bank prices trade talks war troops border deal union leaders vote week month officials
statement agreement energy oil gas security health school water climate team season game club
coach players league final win loss research study scientists data space launch mission""")


def synthetic_text(rng: random.Random, words: int = 400) -> str:
    """Zipf-ish news-like word salad: unrelated texts share common words, rarely trigrams."""
    vocab = _WORDS + [f"w{i}" for i in range(20000)]
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(vocab))]
    out = rng.choices(vocab, weights, k=words)
    return "\n".join(" ".join(out[i:i + 60]) + "." for i in range(0, words, 60))


def copy_of(body: str, rng: random.Random) -> str:
    w = body.split()
    w = w[: int(len(w) * rng.uniform(0.5, 0.7))]
    for i in rng.sample(range(len(w)), len(w) // 15):
        w[i] = rng.choice(_WORDS)
    return " ".join(w)


def fill(engine: Engine, n: int, rng: random.Random, copies: list[str]) -> float:
    """N synthetic articles with random band rows, then the originals the copies are made of."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    nrng = np.random.default_rng(1)
    with Session(engine) as s:
        s.add(Source(name="bulk", url="http://bulk.test/feed"))
        s.add(Source(name="wire", url="http://wire.test/feed"))
        s.add(Source(name="new", url="http://new.test/feed"))
        s.commit()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("PRAGMA cache_size=-1000000")
        first = 1
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            ids = range(first + lo, first + hi)
            story_rows = [(i, f"story {i}", now) for i in ids]
            art_rows = [(i, 1, f"g{i}", f"http://bulk.test/{i}", f"http://bulk.test/{i}", f"synthetic {i}",
                         f"synthetic article {i}", now, False, True, uuid.uuid4().hex,
                         now - timedelta(seconds=rng.uniform(0, 6.9 * 86400)), i) for i in ids]
            bands = nrng.integers(-(2 ** 31), 2 ** 31, size=(hi - lo, BANDS), dtype=np.int64)
            ph = "?" if engine.dialect.name == "sqlite" else "%s"
            cur.executemany(f"INSERT INTO story (id, title, created_at) VALUES ({ph}, {ph}, {ph})", story_rows)
            cur.executemany(
                "INSERT INTO article (id, source_id, guid, url, original_url, title, text, published, "
                "published_estimated, full_text, content_hash, first_seen_at, story_id) VALUES "
                f"({', '.join([ph] * 13)})", art_rows)
            if engine.dialect.name == "sqlite":
                cur.executemany("INSERT INTO dedup_band (band, article_id) VALUES (?, ?)",
                                [(int(b), i) for i, row in zip(ids, bands.tolist(), strict=True) for b in row])
            else:
                cur.executemany("INSERT INTO dedup_sig (article_id, bands) VALUES (%s, %s)",
                                list(zip(ids, bands.tolist(), strict=True)))
            raw.commit()
            if (hi // CHUNK) % 10 == 0:
                print(f"  {hi:,} articles stored ({time.perf_counter() - started:.0f} s)", flush=True)
        if engine.dialect.name == "postgresql":
            cur.execute("SELECT setval('story_id_seq', (SELECT max(id) FROM story))")
            cur.execute("SELECT setval('article_id_seq', (SELECT max(id) FROM article))")
            raw.commit()
    finally:
        raw.close()
    idx = StoryIndex()
    with Session(engine) as s:
        for i, body in enumerate(copies):
            a = Article(source_id=2, guid=f"orig{i}", url=f"http://wire.test/{i}", original_url=f"http://wire.test/{i}",
                        title=f"original {i}", text=body, content_hash=content_hash(body), first_seen_at=now)
            s.add(a)
            s.flush()
            idx.assign(s, a, now=now)
        s.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def _one(engine: Engine, idx: StoryIndex, i: int, body: str) -> tuple[float, bool]:
    with Session(engine) as s:
        a = Article(source_id=3, guid=f"q{i}", url=f"http://new.test/{i}", original_url=f"http://new.test/{i}",
                    title=f"query {i}", text=body, content_hash=content_hash(body), first_seen_at=datetime.now(UTC))
        s.add(a)
        s.flush()
        t0 = time.perf_counter()
        res = idx.assign(s, a)
        dt = (time.perf_counter() - t0) * 1000
        s.rollback()
    return dt, not res.new_story


def check(base: Engine, full: Engine, queries: list[str], warmup: int = 20) -> tuple[list[float], list[float], int, int]:
    """Milliseconds per assign of each query article (rolled back) on the empty and the full
    database, interleaved so that both see the same machine noise; and how many joined a story."""
    idx = StoryIndex()
    tb, tf, jb, jf = [], [], 0, 0
    for i, body in enumerate(queries):
        db, b_joined = _one(base, idx, i, body)
        df, f_joined = _one(full, idx, i, body)
        if i >= warmup:
            tb.append(db)
            tf.append(df)
            jb += b_joined
            jf += f_joined
    return tb, tf, jb, jf


def dedup_bytes(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            out = {}
            for rel in ("dedup_band", "dedup_sig", "dedup_boilerplate", "dedup_claim", "story", "story_alert"):
                out[rel] = int(c.execute(text(f"SELECT pg_total_relation_size('{rel}')")).scalar_one())
            out["ix_article_story_id"] = int(c.execute(text("SELECT pg_relation_size('ix_article_story_id')")).scalar_one())
            return out
        rows = c.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all()
        sizes = {str(n): int(b) for n, b in rows}
        keep = ("dedup_band", "dedup_boilerplate", "dedup_claim", "story", "story_alert", "ix_article_story_id",
                "ix_story_created_at", "ix_story_alert_story_id")
        return {k: v for k, v in sizes.items() if k.startswith(keep) or k.startswith("sqlite_autoindex_dedup")
                or k.startswith("sqlite_autoindex_story")}


def databases(backend: str, tmp: Path) -> Iterator[tuple[str, str, str]]:
    """(label, full database URL, empty baseline database URL)."""
    if backend in ("sqlite", "both"):
        yield "SQLite", f"sqlite:///{tmp / 'scale.db'}", f"sqlite:///{tmp / 'empty.db'}"
    if backend in ("postgresql", "both"):
        import psycopg
        names = [f"monitor_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN.rsplit("/", 1)[0] + "/"
            yield "PostgreSQL", base + names[0], base + names[1]
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                for name in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--checks", type=int, default=300)
    ap.add_argument("--backend", default="both", choices=["sqlite", "postgresql", "both"])
    args = ap.parse_args()
    rng = random.Random(5)
    originals = [synthetic_text(rng) for _ in range(args.checks // 2)]
    queries = [copy_of(o, rng) for o in originals] + [synthetic_text(rng) for _ in range(args.checks // 2)]
    rng.shuffle(queries)
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmpdir:
        tmp = Path(tmpdir)
        for label, url, base_url in databases(args.backend, tmp):
            print(f"{label}: storing {args.articles:,} articles ...", flush=True)
            base, full = create_db_engine(base_url), create_db_engine(url)
            upgrade(base)
            upgrade(full)
            fill(base, 0, rng, originals)
            build = fill(full, args.articles, rng, originals)
            tb, tf, jb, jf = check(base, full, queries)
            sizes = dedup_bytes(full)
            base.dispose()
            full.dispose()
            rows.append((label, tb, jb, tf, jf, sizes, build))
    print()
    print(f"{'backend':10} {'stored':>10} {'median ms':>9} {'p95 ms':>7} {'joined':>7} {'vs empty':>8} {'dedup data':>11}")
    for label, base_ms, base_joined, full_ms, joined, sizes, build in rows:
        med_b, med_f = statistics.median(base_ms), statistics.median(full_ms)
        p95 = statistics.quantiles(full_ms, n=20)[-1]
        total = sum(sizes.values())
        print(f"{label:10} {0:>10,} {med_b:9.2f} {statistics.quantiles(base_ms, n=20)[-1]:7.2f} {base_joined:>7} {'1.0x':>8} {'':>11}")
        print(f"{label:10} {args.articles:>10,} {med_f:9.2f} {p95:7.2f} {joined:>7} {med_f / med_b:7.1f}x "
              f"{total / 2**20:8.0f} MB   (built in {build:.0f} s)")
        print("           " + ", ".join(f"{k} {v / 2**20:.0f} MB" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]) if v > 2**20))
        ok = med_f <= 5.0 and total < 2**30
        print(f"           bar (median <= 5 ms, dedup data < 1 GB): {'MET' if ok else 'NOT MET'}")
    print(f"({len(queries) - 20} timed checks per row, interleaved between the two databases; about half "
          "of the new articles are trimmed, edited copies of a stored one: 'joined' counts those found)")


if __name__ == "__main__":
    main()
