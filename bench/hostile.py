"""Benchmark: hostile sources beside a good one, ``monitor run --once`` per case.

    python -m bench.hostile [--runs 3] [--repo PATH] [--cases br,zstd,...] [--bomb-mib 1024]

Each case is one config with a good feed (2 entries) and one hostile source, all on loopback,
run as a fresh ``monitor run --once`` process whose own peak RSS (VmHWM, read by the child at
exit) and wall time are measured. ``--repo`` runs another checkout's ``monitor`` package (e.g. a
``git worktree`` of the commit before issue 17) with the same cases: the "before" column.

Cases: ``br``/``zstd``/``gzip`` bombs (``--bomb-mib`` decoded, default 1 GiB), ``oddip`` (entry
links ``http://127.000.000.001/`` and ``http://0177.0.0.1/``), ``surrogate`` (``&#xD800;`` in a
title), ``nul`` (NUL in a title, on PostgreSQL: SQLite stores NUL), ``big`` (a feed of
``--big`` entries, on SQLite), ``plain`` (two good feeds: the baseline), ``listing`` (an HTML
listing page naming ``--links`` article pages, 2,000 by default), ``dates`` (a feed of 10 entries
dated 9999-12-31, 0001-01-01, "01 Jan 0000", year 99999 and so on), ``slop`` (one entry of
100,000 words and the rule ``"a a b"~500``).

Prints per case: exit status, peak RSS and wall (median of the runs, spread in brackets), what
the good source stored (of 2), what the hostile source stored (and of those, how many with an
estimated date), and when its first article was stored (seconds after the process started).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.harness import pg_database, source, write_config
from tests.hostile import MIB, Measured, bomb, run_measured

ALL = ("plain", "br", "zstd", "gzip", "oddip", "surrogate", "nul", "listing", "dates", "slop", "big")
DEFAULT = ALL[:-1]  # "big" ingests every entry: minutes after the fix; run it on its own
ABSURD_DATES = ("Fri, 31 Dec 9999 23:59:59 GMT", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                "Mon, 01 Jan 0001 00:00:00 GMT", "01 Jan 0000", "Mon, 01 Jan 0000 00:00:00 GMT", "99999-01-01",
                "Mon, 01 Jan 99999 00:00:00 GMT", "1970-01-01T00:00:00Z", "2031-06-01T00:00:00Z")


def _rss(items: list[tuple[str, str]], dates: tuple[str, ...] = (), body: str = "") -> bytes:
    body = "".join(f"<item><title>{t}</title><link>{link}</link><description>{body or t + ' body'}</description>"
                   f"<pubDate>{dates[i] if dates else 'Wed, 24 Sep 2025 07:00:00 GMT'}</pubDate></item>"
                   for i, (t, link) in enumerate(items))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>x</title>'
            f"<link>http://example.org/</link>{body}</channel></rss>").encode()


class Server:
    """Serves ``pages[path] = (body, headers)`` on 127.0.0.1 (hostile) and 127.0.0.2 (good)."""

    def __init__(self, host: str) -> None:
        self.pages: dict[str, tuple[bytes, dict[str, str]]] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body, headers = pages.get(self.path, (b"", {"X-Status": "404"}))
                self.send_response(int(headers.get("X-Status", "200")))
                self.send_header("Content-Type", headers.get("Content-Type", "application/rss+xml"))
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    if k not in ("X-Status", "Content-Type"):
                        self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # type: ignore[method-assign]  # clients cut bombs short
        self.base = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@contextlib.contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
        return
    with pg_database() as url:
        yield url


def _stored(database: str, name: str) -> tuple[int, int, datetime | None]:
    """Articles of source ``name``: how many, how many with an estimated date, the first one's time."""
    query = ("SELECT count(*), coalesce(sum(CASE WHEN published_estimated THEN 1 ELSE 0 END), 0), "
             "min(first_seen_at) FROM article JOIN source ON source.id = article.source_id "
             f"WHERE source.name = '{name}'")
    if database.startswith("sqlite"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            n, est, first = db.execute(query).fetchone()
        return int(n), int(est), datetime.fromisoformat(first).replace(tzinfo=UTC) if first else None
    import psycopg

    with psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), row[2].replace(tzinfo=UTC) if row[2] else None


def _article_page(i: int) -> bytes:
    paragraphs = "".join(f"<p>Paragraph {j} of report {i} says what the council decided about the bridge and "
                         f"the budget for the coming year.</p>" for j in range(5))
    return (f"<html><head><title>Report {i}</title></head><body><article><h1>Report {i}</h1>{paragraphs}"
            f"</article></body></html>").encode()


def setup(bad: Server, good: Server, bomb_mib: int, big: int,
          links: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """case -> (hostile URL, database kind, extra source options)."""
    good.pages["/good.xml"] = (_rss([("Good one", "http://example.org/g1"), ("Good two", "http://example.org/g2")]), {})
    cases: dict[str, tuple[str, str, dict[str, Any]]] = {}
    bad.pages["/plain.xml"] = (_rss([("Plain", "http://example.org/p1")]), {})
    cases["plain"] = (bad.base + "/plain.xml", "sqlite", {"full_text": False})
    for enc in ("br", "zstd", "gzip"):
        bad.pages[f"/{enc}.xml"] = (bomb(enc, bomb_mib * MIB), {"Content-Encoding": enc})
        cases[enc] = (f"{bad.base}/{enc}.xml", "sqlite", {})
    port = bad.base.rsplit(":", 1)[1]
    bad.pages["/oddip.xml"] = (_rss([("Odd one", f"http://127.000.000.001:{port}/a"),
                                     ("Odd two", f"http://0177.0.0.1:{port}/b")]), {})
    cases["oddip"] = (bad.base + "/oddip.xml", "sqlite", {})
    bad.pages["/surrogate.xml"] = (_rss([("Lone &#xD800; surrogate", "http://example.org/s1")]), {})
    cases["surrogate"] = (bad.base + "/surrogate.xml", "sqlite", {"full_text": False})
    bad.pages["/nul.xml"] = (_rss([("Raw \x00 NUL", "http://example.org/n1"),
                                   ("After", "http://example.org/n2")]), {})
    cases["nul"] = (bad.base + "/nul.xml", "postgresql", {"full_text": False})
    bad.pages["/big.xml"] = (_rss([(f"Entry {i}", f"http://example.org/big/{i}") for i in range(big)]), {})
    cases["big"] = (bad.base + "/big.xml", "sqlite", {"full_text": False})
    html = {"Content-Type": "text/html; charset=utf-8"}
    items = "".join(f'<li><a href="/news/2025/09/council-report-{i}">Council report number {i} on the bridge</a></li>'
                    for i in range(links))
    bad.pages["/section"] = (f"<html><body><main><ul>{items}</ul></main></body></html>".encode(), html)
    for i in range(links):
        bad.pages[f"/news/2025/09/council-report-{i}"] = (_article_page(i), html)
    cases["listing"] = (bad.base + "/section", "sqlite", {"type": "html", "robots": False})
    bad.pages["/dates.xml"] = (_rss([(f"Dated {i}", f"http://example.org/d{i}") for i in range(len(ABSURD_DATES))],
                                    ABSURD_DATES), {})
    cases["dates"] = (bad.base + "/dates.xml", "sqlite", {"full_text": False})
    bad.pages["/slop.xml"] = (_rss([("Many words", "http://example.org/w1")], body="a " * 99_999 + "b"), {})
    cases["slop"] = (bad.base + "/slop.xml", "sqlite", {"full_text": False})
    return cases


def _fmt(values: list[float], unit: str) -> str:
    med = statistics.median(values)
    spread = max(values) - min(values)
    return f"{med:.0f} {unit} (±{spread / 2:.0f})" if unit == "MB" else f"{med:.1f} s (±{spread / 2:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repo", type=Path, default=None, help="checkout whose monitor package to run")
    ap.add_argument("--cases", default=",".join(DEFAULT), help=f"of {','.join(ALL)}")
    ap.add_argument("--bomb-mib", type=int, default=1024)
    ap.add_argument("--big", type=int, default=130_000)
    ap.add_argument("--links", type=int, default=2_000)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    bad, good = Server("127.0.0.1"), Server("127.0.0.2")
    cases = setup(bad, good, args.bomb_mib, args.big, args.links)
    env = {"PYTHONPATH": str(args.repo.resolve())} if args.repo else None
    print(f"code: {args.repo or 'this checkout'}; {args.runs} runs per case; bombs {args.bomb_mib} MiB decoded")
    print("| case | exit | peak RSS | wall | good stored (of 2) | hostile stored (estimated dates) | "
          "first hostile article after |\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for case in args.cases.split(","):
            url, kind, extra = cases[case]
            runs: list[Measured] = []
            stored: list[int] = []
            hostile: list[str] = []
            first: list[float] = []
            for i in range(args.runs):
                with _database(kind, tmp) as database:
                    cfg = write_config(tmp / f"{case}-{i}.toml", database,
                                       source("Good", good.base + "/good.xml", full_text=False),
                                       source("Bad", url, **extra), fetch='timeout = "120s"\nmax_bytes = 10485760\n'
                                       if case != "big" else 'timeout = "120s"\nmax_bytes = 104857600\n',
                                       tables="" if case != "slop" else "[[rule]]\nname = \"slop\"\n"
                                                                       "query = '\"a a b\"~500'\n")
                    started = datetime.now(UTC)
                    runs.append(run_measured("monitor", "--config", str(cfg), "run", "--once", env=env,
                                             timeout=args.timeout, cwd=tmp))
                    stored.append(_stored(database, "Good")[0])
                    n, estimated, at = _stored(database, "Bad")
                    hostile.append(f"{n} ({estimated})")
                    if at is not None:
                        first.append((at - started).total_seconds())
            codes = sorted({r.returncode for r in runs})
            print(f"| {case} | {','.join(map(str, codes))} | {_fmt([r.peak_mb for r in runs], 'MB')} | "
                  f"{_fmt([r.wall for r in runs], 's')} | {','.join(map(str, stored))} | {', '.join(hostile)} | "
                  f"{_fmt(first, 's') if first else '-'} |", flush=True)


if __name__ == "__main__":
    main()
