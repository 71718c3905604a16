"""The long-running daemon: polls on its schedule, delivers, and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_monitor
from tests.newsroom import publish_newsroom, write_config
from tests.servers import Mailbox, Site, wait_for


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_daemon_alerts_then_exits_zero_on_signal(tmp_path: Path, site: Site, webhook: Site,
                                                 mailbox: Mailbox, sig: signal.Signals) -> None:
    publish_newsroom(site)
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'monitor.db'}", site,
                       mailbox.port, webhook.url("/hook"))
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cfg), "run"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(mailbox.messages) >= 1 and len(webhook.posts("/hook")) >= 1, 60), \
            "no alert within 60 s"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in err
    assert len(mailbox.messages) == 1 and len(webhook.posts("/hook")) == 1

    # A restart keeps the schedule: the feed is not refetched before its interval (5 min).
    feed_polls = sum(1 for r in site.requests if r.path == "/feed.xml")
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(cfg), "run"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        started = time.monotonic()
        while time.monotonic() - started < 60:  # start-up (imports, migrations) can be slow on a busy machine
            line = proc.stderr.readline()
            if not line or "monitor running" in line:
                break
        time.sleep(2)  # long enough for a due source to be claimed and polled (the claim loop starts at once)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert sum(1 for r in site.requests if r.path == "/feed.xml") == feed_polls
    assert len(mailbox.messages) == 1


def test_db_upgrade_is_explicit_and_idempotent(tmp_path: Path, database_url: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{database_url}"\n', encoding="utf-8")
    for _ in range(2):
        res = run_monitor(cfg, "db", "upgrade")
        assert res.returncode == 0, res.stderr
        assert "up to date" in res.stdout
    listed = run_monitor(cfg, "articles", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"
