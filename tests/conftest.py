"""Fixtures every test may use: loopback servers and databases. Helpers live in tests/harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import monitor.stages  # noqa: F401  (every stage's config checks, as in the CLI)
from tests.harness import FIXTURES, ROOT, SHARED, pg_database, run_monitor
from tests.servers import Mailbox, Page, Site

__all__ = ["FIXTURES", "ROOT", "SHARED", "run_monitor"]  # older imports from tests.conftest keep working


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
