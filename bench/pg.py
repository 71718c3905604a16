"""A throwaway PostgreSQL database for a benchmark (the test server at 127.0.0.1:5432 by default)."""

from __future__ import annotations

import os
import uuid

PG_ADMIN = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def create_database() -> tuple[str, str] | None:
    """(SQLAlchemy URL, name) of a new empty database, or None when PostgreSQL is not reachable
    (the benchmark then shows SQLite only)."""
    try:
        import psycopg

        admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name
    except Exception:
        return None


def drop_database(name: str) -> None:
    import psycopg

    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
