"""What every test shares: where things are, the one config builder, the one way to run the CLI and
to start the daemon, and throwaway PostgreSQL databases.

Config files are written as TOML text (not built as objects) on purpose: the tests then go through
the same loader, line numbers and error messages a user meets. Blocks (``source``, ``rule``,
``channel``) are plain TOML strings, so a test can still append a hand-written table when it tests
the config syntax itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get("MONITOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONTACT = "https://example.org/contact"


# -- config ---------------------------------------------------------------------------------------

def toml_value(v: Any) -> str:
    """A Python value as a TOML value (strings, booleans, numbers, lists of those)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def block(kind: str, **values: Any) -> str:
    """One ``[[kind]]`` entry; ``None`` values are left out. ``from_`` is written as ``from``."""
    lines = [f"[[{kind}]]"]
    lines += [f"{k.rstrip('_')} = {toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n\n"


def source(name: str, url: str, interval: str = "5m", **extra: Any) -> str:
    return block("source", name=name, url=url, interval=interval, **extra)


def rule(name: str, query: str, channels: Sequence[str], **extra: Any) -> str:
    # single-quoted TOML literal: queries are full of double quotes
    assert "'" not in query, "use block('rule', ...) for a query with a single quote"
    return f"[[rule]]\nname = {toml_value(name)}\nquery = '{query}'\nchannels = {toml_value(list(channels))}\n" + \
        "".join(f"{k} = {toml_value(v)}\n" for k, v in extra.items() if v is not None) + "\n"


def webhook_channel(name: str, url: str, **extra: Any) -> str:
    return block("channel", name=name, type="webhook", url=url, **extra)


def email_channel(name: str, port: int, host: str = "127.0.0.1", to: Sequence[str] = ("analyst@loopback.test",),
                  **extra: Any) -> str:
    return block("channel", name=name, type="email", host=host, port=port, from_="monitor@loopback.test",
                 to=list(to), tls=extra.pop("tls", "none"), **extra)


def write_config(path: Path, database: str, *blocks: str, monitor: str = "", fetch: str = "",
                 private: bool = True, tables: str = "") -> Path:
    """The one config writer of the tests: ``[monitor]`` (database, a contact, then ``monitor``),
    ``[fetch]`` (loopback allowed unless ``private=False``, a 60 s timeout unless ``fetch`` sets
    one, then ``fetch``), other top-level ``tables`` (e.g. ``[dedup]``), then the ``blocks``."""
    fetch_lines = [f"allow_private_networks = {toml_value(private)}"]
    if not any(line.strip().startswith("timeout") for line in fetch.splitlines()):
        # The daemon's own default. It was 10 s: at load 12-20 a loopback page fetched while the
        # daemon starts its extraction workers and loads the sentence model took longer, and the
        # article was stored from the feed's text (test_hostile_listing, test_mutes_apply_in_the_
        # ingest_path). Tests of timeouts set their own.
        fetch_lines.append('timeout = "60s"')
    if "alert_max_age" not in monitor:  # the fixtures' articles are from 2025: let them alert
        monitor = 'alert_max_age = "3650d"\n' + monitor
    if "alert_hold" not in monitor:
        # A daemon's alerts go out at once, as before the hold: the tests of delivery, leases and
        # shutdown wait for them. The hold's own tests set it (test_alert_settle).
        monitor = 'alert_hold = "0s"\n' + monitor
    path.write_text(f"""[monitor]
database = {toml_value(database)}
contact = "{CONTACT}"
{monitor}

[fetch]
{chr(10).join(fetch_lines)}
{fetch}

{tables}

{''.join(blocks)}""", encoding="utf-8")
    return path


# -- the CLI and the daemon -----------------------------------------------------------------------

def _env(extra: dict[str, str] | None) -> dict[str, str]:
    # a daemon started by a test must not talk to the test runner's systemd, if any
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    return {**env, "PYTHONPATH": str(ROOT), **(extra or {})}


def run_monitor(config: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess to completion, the way a user or cron does."""
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, env=_env(env), cwd=config.parent)


class Daemon(subprocess.Popen[bytes]):
    """``monitor run`` as a real subprocess. Its stderr goes to a log file, never to a pipe nobody
    reads (a full pipe would block the daemon's logging). As a context manager it kills the
    process if the test left it running."""

    log: Path
    log_start: int = 0  # the log may hold earlier runs: this process's lines start here

    def log_text(self) -> str:
        """What this process has logged so far."""
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", errors="replace")

    def log_has(self, text: str) -> bool:
        return text in self.log_text()

    def wait_log(self, text: str, timeout: float = 60) -> bool:
        """Wait until ``text`` is logged; False when the process exits first or time runs out."""
        from tests.servers import wait_for

        wait_for(lambda: self.log_has(text) or self.poll() is not None, timeout)
        return self.log_has(text)

    def wait_running(self, timeout: float = 60) -> None:
        assert self.wait_log("monitor running", timeout), f"the daemon did not start:\n{self.log_text()[-3000:]}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the daemon (SIGTERM by default) and return its exit status."""
        if self.poll() is None:
            self.send_signal(sig)
        try:
            return self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.poll() is None:
            self.kill()
        self.wait()


def start_daemon(config: Path, *args: str, log: Path | None = None, run_args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> Daemon:
    """Start ``monitor [args] run [run_args]`` on ``config``; stderr is appended to ``log``
    (default: ``monitor.log`` beside the config)."""
    log = log or config.parent / "monitor.log"
    with open(log, "ab") as out:
        start = out.tell()
        proc = Daemon([sys.executable, "-m", "monitor", "--config", str(config), *args, "run", *run_args],
                      env=_env(env), cwd=config.parent, stdout=subprocess.DEVNULL, stderr=out)
    proc.log, proc.log_start = log, start
    return proc


# -- PostgreSQL -----------------------------------------------------------------------------------

@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (dropped afterwards): tests never share one, so
    they can run in parallel."""
    import psycopg
    import pytest

    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {admin}: {exc} (.ci/run starts it)")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
