"""Crash safety: SIGKILL in the middle of delivering 40 alerts to a slow receiver, then a
restart: all 40 arrive, and only the one that was in flight arrives twice."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.deliver_helpers import add_alerts, statuses, store
from tests.harness import run_monitor, start_daemon
from tests.servers import Page, Request, Site


def test_sigkill_mid_delivery_then_restart_delivers_all_40_at_most_one_twice(tmp_path: Path, site: Site) -> None:
    db = tmp_path / "m.db"
    engine = store(f"sqlite:///{db}")
    add_alerts(engine, 40, ("hook",))
    in_flight = threading.Event()
    release = threading.Event()
    keys: list[str] = []

    def slow(req: Request) -> Page:
        keys.append(req.headers["idempotency-key"])
        if len(keys) == 12:  # hold the 12th request open until the sender is dead
            in_flight.set()
            release.wait(30)
        else:
            time.sleep(0.02)
        return Page(b"{}", "application/json")

    site.pages["/hook"] = slow
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""[monitor]
database = "sqlite:///{db}"
delivery_lease = "1s"

[[channel]]
name = "hook"
type = "webhook"
url = "{site.url('/hook')}"
timeout = "20s"
""", encoding="utf-8")
    with start_daemon(cfg, run_args=["--once"]) as proc:
        assert in_flight.wait(60), f"the sender never reached the 12th alert:\n{proc.log_text()[-3000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    release.set()  # the held request may now finish
    assert proc.returncode == -signal.SIGKILL
    assert statuses(engine) == {"sent": 11, "sending": 1, "pending": 28}

    # Restart (cron-style `run --once`) until everything is out; the dead claim expires after 1 s.
    deadline = time.monotonic() + 60
    while statuses(engine) != {"sent": 40} and time.monotonic() < deadline:
        res = run_monitor(cfg, "run", "--once")
        assert res.returncode == 0, res.stderr
    assert statuses(engine) == {"sent": 40}
    assert len(set(keys)) == 40
    assert len(keys) == 41  # the one in flight at the kill, and only it, came twice
    engine.dispose()
