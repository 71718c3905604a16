"""Server time of each web console page with 100,000 stored articles, on SQLite and PostgreSQL.

    python -m bench.web_pages [--articles N] [--requests N] [--backend sqlite|postgresql|both]

Stores N synthetic articles over the last 30 days (400 words each, from a 5,000-word vocabulary;
2 % mention Kazakhstan, a quarter of those near "mediator"), grouped into stories of 1-4 articles
from 40 sources, with a match, an alert and two deliveries for each article the seed rule
matches, and each article's folded words as ingest stores them (the preview narrows on them).
Then serves the console (the real app under uvicorn on loopback, as ``monitor web``), waits for
its warm-up (the matcher's first use) so that no page shares the CPU with it, and times each page: the server's own time (its Server-Timing header: database, evaluation,
rendering) and the client's, request to last byte, ``--requests`` times after a first request
(timed apart: it fills caches, e.g. the sources page's per-day counts, kept five minutes).
The baseline in the same run is ``/healthz`` (HTTP and framework cost with no database work).
Targets: p95 <= 300 ms per page, <= 1 s for a 30-day rule preview.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, insert, text

from monitor.config import load_config
from monitor.match.text import terms
from monitor.store import create_db_engine, upgrade
from monitor.store.models import Alert, Article, Delivery, Match, Source, Story
from monitor.store.terms import save_terms_bulk
from monitor.web import Console, Passwords, WebServer

PG_ADMIN = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUERY = 'Kazakhstan NEAR/15 (mediator* OR "venue for negotiations")'


def populate(engine: Engine, n: int, seed: int = 7) -> dict[str, int]:
    rnd = random.Random(seed)
    vocab = [f"w{i}x" for i in range(5000)]
    now = datetime.now(UTC)
    sources = [{"id": i + 1, "name": f"Outlet {i + 1}", "url": f"https://outlet{i + 1}.example/feed",
                "kind": "feed", "consecutive_failures": 0, "last_polled_at": now} for i in range(40)]
    with engine.begin() as conn:
        conn.execute(insert(Source), sources)
    articles: list[dict[str, object]] = []
    stories: list[dict[str, object]] = []
    matches: list[dict[str, object]] = []
    story_id = 0
    left = 0
    stats = {"articles": n, "matching": 0}
    for i in range(1, n + 1):
        seen = now - timedelta(seconds=rnd.uniform(0, 30 * 86400))
        words = rnd.choices(vocab, k=400)
        kz = rnd.random() < 0.02
        if kz:
            at = rnd.randrange(380)
            words[at] = "Kazakhstan"
            if rnd.random() < 0.25:
                words[at + rnd.randrange(1, 12)] = "mediator"
        if left == 0:
            story_id += 1
            left = rnd.randint(1, 4)
            stories.append({"id": story_id, "title": " ".join(words[:8]), "created_at": seen})
        left -= 1
        body = ". ".join(" ".join(words[j:j + 20]) for j in range(0, 400, 20)) + "."
        articles.append({"id": i, "source_id": rnd.randint(1, 40), "guid": f"g{i}", "url": f"https://a.example/{i}",
                         "original_url": f"https://a.example/{i}", "title": " ".join(words[:10]), "text": body,
                         "published": seen, "published_estimated": False, "language": "en", "full_text": True,
                         "story_id": story_id, "first_seen_at": seen})
        if kz and "mediator" in words:
            stats["matching"] += 1
            matches.append({"id": len(matches) + 1, "article_id": i, "rule": "kz-mediation", "hits": [],
                            "statements": [{"field": "body", "start": 0, "end": 40, "text": body[:200],
                                            "highlights": [[0, 10]], "speaker": None}],
                            "created_at": seen, "quote": body[:200]})
        if len(articles) >= 5000:
            _flush(engine, stories, articles)
    _flush(engine, stories, articles)
    with engine.begin() as conn:
        for k in range(0, len(matches), 5000):
            conn.execute(insert(Match), matches[k:k + 5000])
        alerts = [{"id": m["id"], "key": f"kz:{m['article_id']}", "match_id": m["id"], "rule": "kz-mediation",
                   "kind": "match", "payload": {}, "created_at": m["created_at"]} for m in matches]
        if alerts:
            conn.execute(insert(Alert), alerts)
            conn.execute(insert(Delivery), [
                {"key": f"{a['key']}:{ch}", "alert_id": a["id"], "channel": ch, "status": "sent", "attempts": 1,
                 "created_at": a["created_at"]} for a in alerts for ch in ("mail", "hook")])
        if conn.dialect.name == "postgresql":
            for table in ("source", "story", "article", "match", "alert", "delivery"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT coalesce(max(id), 1) FROM {table}))"))
            conn.execute(text("ANALYZE"))
    stats["stories"] = story_id
    return stats


def _flush(engine: Engine, stories: list[dict[str, object]], articles: list[dict[str, object]]) -> None:
    with engine.begin() as conn:
        if stories:
            conn.execute(insert(Story), stories)
        if articles:
            conn.execute(insert(Article), articles)
            # Each article's folded words, as ingest stores them (the preview narrows on them).
            save_terms_bulk(conn, [(int(str(a["id"])), terms(str(a["title"]), str(a["text"]))) for a in articles])
    stories.clear()
    articles.clear()


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{Path(d) / 'bench.db'}"
        return
    import psycopg

    name = f"bench_web_{uuid.uuid4().hex[:8]}"
    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pages(stats: dict[str, int]) -> list[tuple[str, str]]:
    story = stats["stories"] // 2
    return [
        ("baseline: /healthz", "/healthz"),
        ("matches", "/matches"),
        ("matches, filtered by rule and source", "/matches?rule=kz-mediation&source=Outlet+3"),
        ("matches, page 20", "/matches?page=20"),
        ("rules", "/rules"),
        ("rule page (with 30-day preview)", "/rules/kz-mediation"),
        ("30-day rule preview", f"/rules/preview?days=30&query={httpx.QueryParams({'q': QUERY})['q']}"),
        ("7-day rule preview", f"/rules/preview?days=7&query={httpx.QueryParams({'q': QUERY})['q']}"),
        ("explain one article", f"/rules/explain?article={stats['articles'] // 2}&query=Kazakhstan"),
        ("stories", "/stories"),
        ("stories, page 50", "/stories?page=50"),
        ("one story", f"/stories/{story}"),
        ("one article (every rule explained)", f"/articles/{stats['articles'] // 3}"),
        ("sources (40, with sparklines)", "/sources"),
    ]


def _server_ms(r: httpx.Response) -> float | None:
    """The app's own time from its Server-Timing header (None: not a console page)."""
    timing = r.headers.get("server-timing", "")
    return float(timing.split("dur=")[1]) if "dur=" in timing else None


def run(backend: str, n: int, requests: int) -> list[tuple[str, float, float, float, float, float]]:
    with database(backend) as url:
        engine = create_db_engine(url)
        upgrade(engine)
        t = time.perf_counter()
        stats = populate(engine, n)
        print(f"{backend}: stored {n:,} articles ({stats['matching']} matching, {stats['stories']:,} stories) "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        with tempfile.TemporaryDirectory() as d:
            cfg = Path(d) / "config.toml"
            cfg.write_text(f'[monitor]\ndatabase = "{url}"\n\n[[rule]]\nname = "kz-mediation"\n'
                           f"query = '{QUERY}'\nchannels = []\n", encoding="utf-8")
            config = load_config(cfg)
            server = WebServer("127.0.0.1", 0, Console(engine=engine, config=lambda: config,
                                                       reload=lambda: (True, ""), passwords=Passwords())).start()
            out = []
            t = time.perf_counter()
            # Pages served while the warm-up (the matcher's first use: seconds of regex
            # compiling) runs share the CPU with it; the page times are those after it.
            server.warmed.wait(300)
            print(f"{backend}: console warm-up done {time.perf_counter() - t:.1f} s after start", flush=True)
            try:
                # A new connection per request: keep-alive with httpx's sync client adds a ~40 ms
                # delayed-ACK stall per request on loopback that is no part of the server's time.
                with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=120,
                                  headers={"Connection": "close"}) as c:
                    for label, path in pages(stats):
                        t0 = time.perf_counter()
                        r = c.get(path)
                        first = (time.perf_counter() - t0) * 1000
                        assert r.status_code == 200, (path, r.status_code, r.text[:300])
                        times, client = [], []
                        for _ in range(requests):
                            t0 = time.perf_counter()
                            r = c.get(path)
                            client.append((time.perf_counter() - t0) * 1000)
                            times.append(_server_ms(r) or client[-1])
                        times.sort()
                        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                        out.append((label, first, statistics.median(times), p95, max(times), statistics.median(client)))
            finally:
                server.stop()
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        rows = run(backend, args.articles, args.requests)
        print(f"\n{backend}, {args.articles:,} articles, {args.requests} requests per page")
        print("| page | first request ms | server median ms | server p95 ms | server max ms | client median ms | target |")
        print("|---|---|---|---|---|---|---|")
        for label, first, med, p95, mx, cl in rows:
            target = 1000 if "preview" in label else 300
            ok = "" if label.startswith("baseline") else ("ok" if p95 <= target else f"OVER {target}")
            print(f"| {label} | {first:.1f} | {med:.1f} | {p95:.1f} | {mx:.1f} | {cl:.1f} | {ok} |")


if __name__ == "__main__":
    main()
