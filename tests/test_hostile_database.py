"""A database that refuses writes (issue 17.10): every command that writes, and ``run``, ends with
one message naming the database and what to do, never a traceback; commands that only read
keep working."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.harness import pg_database, run_monitor, source, write_config
from tests.servers import free_port

WRITERS = [("run", "--once"), ("run",), ("db", "upgrade"), ("prune",)]
READERS = [("sources",), ("articles",)]


@pytest.fixture(scope="module")
def read_only_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A monitor database file that cannot be written: ``chmod a-w``, or for root (who ignores
    modes) the immutable attribute. Shared by the module's tests: none of them may change it."""
    tmp_path = tmp_path_factory.mktemp("read-only")
    db = tmp_path / "monitor.db"
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{db}", source("Feed", "http://127.0.0.1:9/feed.xml"))
    done = run_monitor(cfg, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(db)], check=True)
    else:
        db.chmod(0o444)
    try:
        yield cfg
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(db)], check=True)


@pytest.mark.parametrize("command", WRITERS, ids=" ".join)
def test_a_read_only_database_file_is_named_with_what_to_do(read_only_file: Path, command: tuple[str, ...]) -> None:
    done = run_monitor(read_only_file, *command, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out, out
    db = read_only_file.parent / "monitor.db"
    assert f"the database file {db} cannot be written (attempt to write a readonly database)" in out, out
    assert f"chmod u+w {db} {db.parent}" in out, out


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_commands_that_only_read_work_on_a_read_only_database_file(read_only_file: Path,
                                                                   command: tuple[str, ...]) -> None:
    done = run_monitor(read_only_file, *command, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_read_only_postgresql_database_is_named_with_what_to_do(tmp_path: Path) -> None:
    with pg_database() as url:
        cfg = write_config(tmp_path / "config.toml", url, source("Feed", "http://127.0.0.1:9/feed.xml"))
        assert run_monitor(cfg, "db", "upgrade").returncode == 0
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        for command in (("run", "--once"), ("db", "upgrade")):
            done = run_monitor(cfg, *command, timeout=60)
            out = done.stdout + done.stderr
            assert done.returncode == 1, out
            assert "Traceback" not in out, out
            assert f"/{name} refuses writes (" in out and "read-only transaction" in out, out
            assert "not a standby" in out, out


@pytest.mark.parametrize("command", [("run", "--once"), ("run",), ("db", "upgrade"), ("sources",)], ids=" ".join)
def test_a_postgresql_server_that_is_not_there_is_one_line_naming_the_entry(tmp_path: Path,
                                                                             command: tuple[str, ...]) -> None:
    """QA: nothing listening at the database's address gave a 140-line SQLAlchemy traceback that
    named neither the config nor its entry; the password (from the environment) stays masked."""
    port = free_port()
    cfg = write_config(tmp_path / "config.toml", f"postgresql+psycopg://monitor:${{QA_PGPW}}@127.0.0.1:{port}/monitor",
                       source("Feed", "http://127.0.0.1:9/feed.xml"))
    done = run_monitor(cfg, *command, env={"QA_PGPW": "pg-pw-6643"}, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out and "pg-pw-6643" not in out, out
    assert (f"{cfg}: [monitor] database postgresql+psycopg://monitor:***@127.0.0.1:{port}/monitor: "
            f"connection refused at 127.0.0.1:{port}") in out, out


@pytest.mark.parametrize("command", [("run", "--once"), ("run",), ("db", "upgrade"), ("sources",)], ids=" ".join)
def test_a_file_that_is_not_a_database_is_one_line_naming_the_entry(tmp_path: Path, command: tuple[str, ...]) -> None:
    db = tmp_path / "monitor.db"
    db.write_bytes(bytes(range(256)) * 32)  # no SQLite header: "file is not a database"
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{db}", source("Feed", "http://127.0.0.1:9/feed.xml"))
    done = run_monitor(cfg, *command, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out, out
    assert f"{cfg}: [monitor] database sqlite:///{db}: not a database file at {db} (file is not a database)" in out, out
