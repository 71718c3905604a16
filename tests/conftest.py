"""Fixtures every test may use: loopback servers and databases. Helpers live in tests/harness.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

import monitor.stages  # noqa: F401  (every stage's config checks, as in the CLI)
from tests.harness import FIXTURES, ROOT, SHARED, pg_database, run_monitor
from tests.servers import Mailbox, Page, Site

__all__ = ["FIXTURES", "ROOT", "SHARED", "run_monitor"]  # older imports from tests.conftest keep working


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core (at most 8). Most tests wait on subprocesses, servers and
    timeouts rather than compute, so one worker per core leaves the cores half idle."""
    return min(8, 2 * (os.cpu_count() or 1))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long test (scheduled first, so it does not end the run alone)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first (the longest job first keeps the workers' finishing times together), and
    every test using a session-scoped fixture of ours (a model, say) on one xdist worker, so the
    expensive thing is built once per run, not once per worker (``--dist loadgroup``)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept otherwise
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        shared = sorted(name for name, defs in (info.name2fixturedefs.items() if info else ())
                        if defs and defs[-1].scope == "session" and str(defs[-1].baseid).startswith("tests"))
        if shared and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(shared[0]))


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site().start()
    yield s
    s.stop()


@pytest.fixture
def webhook() -> Iterator[Site]:
    s = Site().start()
    s.pages["/hook"] = Page(b'{"ok": true}', "application/json")
    yield s
    s.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    m = Mailbox().start()
    yield m
    m.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store test runs on both backends: SQLite file and a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
    else:
        with pg_database() as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """PostgreSQL only (several instances sharing one database is a PostgreSQL deployment)."""
    with pg_database() as url:
        yield url


@pytest.fixture
def pravda_store(database_url: str) -> Iterator[Engine]:
    """A migrated store on each backend with one source, "Pravda": the ingest steps' tests."""
    from sqlmodel import Session

    from monitor.store import Source, create_db_engine, upgrade

    e = create_db_engine(database_url)
    upgrade(e)
    with Session(e) as s:
        s.add(Source(name="Pravda", url="http://pravda.test/feed"))
        s.commit()
    yield e
    e.dispose()
