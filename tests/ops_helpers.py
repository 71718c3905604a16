"""Helpers for the ops tests: daemons as real subprocesses, logging to files (never to a pipe
nobody reads: a full pipe would block the daemon's logging)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.servers import wait_for  # noqa: F401  (re-exported: ops tests import it from here)


def start_monitor(config: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), *args, "run"],
                                env=full_env, cwd=config.parent, stdout=subprocess.DEVNULL, stderr=out)


def log_has(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(encoding="utf-8", errors="replace")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
