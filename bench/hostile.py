"""Benchmark: hostile sources beside a good one, ``monitor run --once`` per case.

    python -m bench.hostile [--runs 3] [--repo PATH] [--cases br,zstd,...] [--bomb-mib 1024]

Each case is one config with a good feed (2 entries) and one hostile source, all on loopback,
run as a fresh ``monitor run --once`` process whose own peak RSS (VmHWM, read by the child at
exit) and wall time are measured. ``--repo`` runs another checkout's ``monitor`` package (e.g. a
``git worktree`` of the commit before issue 17) with the same cases: the "before" column.

Cases: ``br``/``zstd``/``gzip`` bombs (``--bomb-mib`` decoded, default 1 GiB), ``oddip`` (entry
links ``http://127.000.000.001/`` and ``http://0177.0.0.1/``), ``surrogate`` (``&#xD800;`` in a
title), ``nul`` (NUL in a title, on PostgreSQL: SQLite stores NUL), ``big`` (a feed of
``--big`` entries, on SQLite), ``plain`` (two good feeds: the baseline).

Prints per case: exit status, peak RSS and wall (median of the runs, spread in brackets), and
what the good source stored (of 2).
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.harness import pg_database, source, write_config
from tests.hostile import MIB, Measured, bomb, run_measured

ALL = ("plain", "br", "zstd", "gzip", "oddip", "surrogate", "nul", "big")
DEFAULT = ALL[:-1]  # "big" ingests every entry: minutes after the fix; run it on its own


def _rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(f"<item><title>{t}</title><link>{link}</link><description>{t} body</description>"
                   f"<pubDate>Wed, 24 Sep 2025 07:00:00 GMT</pubDate></item>" for t, link in items)
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
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    if k != "X-Status":
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


def _good_stored(database: str) -> int:
    query = "SELECT count(*) FROM article JOIN source ON source.id = article.source_id WHERE source.name = 'Good'"
    if database.startswith("sqlite"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            return int(db.execute(query).fetchone()[0])
    import psycopg

    with psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def setup(bad: Server, good: Server, bomb_mib: int, big: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
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
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    bad, good = Server("127.0.0.1"), Server("127.0.0.2")
    cases = setup(bad, good, args.bomb_mib, args.big)
    env = {"PYTHONPATH": str(args.repo.resolve())} if args.repo else None
    print(f"code: {args.repo or 'this checkout'}; {args.runs} runs per case; bombs {args.bomb_mib} MiB decoded")
    print("| case | exit | peak RSS | wall | good stored (of 2) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for case in args.cases.split(","):
            url, kind, extra = cases[case]
            runs: list[Measured] = []
            stored: list[int] = []
            for i in range(args.runs):
                with _database(kind, tmp) as database:
                    cfg = write_config(tmp / f"{case}-{i}.toml", database,
                                       source("Good", good.base + "/good.xml", full_text=False),
                                       source("Bad", url, **extra), fetch='timeout = "120s"\nmax_bytes = 10485760\n'
                                       if case != "big" else 'timeout = "120s"\nmax_bytes = 104857600\n')
                    runs.append(run_measured("monitor", "--config", str(cfg), "run", "--once", env=env,
                                             timeout=args.timeout, cwd=tmp))
                    stored.append(_good_stored(database))
            codes = sorted({r.returncode for r in runs})
            print(f"| {case} | {','.join(map(str, codes))} | {_fmt([r.peak_mb for r in runs], 'MB')} | "
                  f"{_fmt([r.wall for r in runs], 's')} | {','.join(map(str, stored))} |", flush=True)


if __name__ == "__main__":
    main()
