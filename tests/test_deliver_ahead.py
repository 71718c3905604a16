"""Claim-ahead on PostgreSQL: a channel's lane claims its next delivery (and makes its message)
while the one before it is being sent. What must not change for that: each outcome is recorded
before the next send starts (a kill repeats at most the one in flight), a delivery claimed ahead
and not sent is handed back at once (not left "sending" until its lease ends), one whose lease ran
out while it waited is renewed or left to the instance that took it over, and a kill loses
nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlmodel import col, select

from monitor.alerts.render import AlertMessage
from monitor.deliver.base import DeliveryError, build_channel
from monitor.deliver.channels.webhook import verify
from monitor.deliver.worker import Deliverer, DeliverySettings
from monitor.store import Delivery, session_scope
from tests.deliver_helpers import add_alerts, statuses, store
from tests.harness import run_monitor, start_daemon
from tests.servers import Page, Request, Site

SECRET = "hook-secret"


class _Channel:
    """A channel named "hook" whose ``send`` a test writes."""

    name, type, threads, timeout = "hook", "webhook", False, 5.0
    templates = build_channel("hook", "webhook", {"url": "http://127.0.0.1/"}).templates


def _rows(engine: Any) -> dict[str, tuple[str, str | None, int, str | None]]:
    """Each delivery's (status, lease owner, attempts, last error) by its key, as another
    connection sees it (what is committed)."""
    with engine.connect() as conn:
        found = conn.execute(text("SELECT key, status, lease_owner, attempts, last_error FROM delivery")).all()
    return {k: (s, o, a, e) for k, s, o, a, e in found}


def test_each_outcome_is_committed_before_the_next_send_and_one_delivery_at_most_is_claimed_ahead(
        pg_url: str) -> None:
    """While a delivery is being sent, every one sent before it is recorded "sent" (committed:
    a kill now repeats this one only), and besides it at most one more is claimed: the next,
    claimed ahead (from the second send on, always: the statement that recorded the outcome
    before this send claimed it)."""
    engine = store(pg_url)
    add_alerts(engine, 6, ("hook",))
    seen: list[tuple[str, dict[str, tuple[str, str | None, int, str | None]]]] = []

    class Probe(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            seen.append((msg.delivery_key, _rows(engine)))

    assert asyncio.run(Deliverer(engine, {"hook": Probe()}, owner="me").run()).sent == 6
    keys = [k for k, _ in seen]
    assert len(set(keys)) == 6
    for i, (key, rows) in enumerate(seen):
        assert all(rows[k][0] == "sent" for k in keys[:i]), (i, rows)
        claimed = sorted(k for k, row in rows.items() if row[0] == "sending")
        assert key in claimed and rows[key][1] == "me"
        assert len(claimed) <= 2, (i, claimed)
        if 1 <= i < 5:  # the next one, claimed ahead by the statement that recorded the one before
            assert claimed == sorted([key, keys[i + 1]]), (i, claimed)
    assert statuses(engine) == {"sent": 6}
    engine.dispose()


def test_a_channel_that_fails_hands_back_the_delivery_claimed_ahead(pg_url: str) -> None:
    """The channel refuses a delivery: the lane stops (its backlog waits for the retry), and the
    delivery it had claimed ahead goes back as it was (pending; failed with its attempts and
    last error when tried before), not "sending" until its lease ends: another lane, instance
    or the next run sends it at once, and it is sent once."""
    engine = store(pg_url)
    add_alerts(engine, 3, ("hook",))
    with session_scope(engine) as s:  # the third was tried once before
        s.execute(update(Delivery).where(col(Delivery.id) == 3).values(status="failed", attempts=1,
                                                                       last_error="HTTP 502"))
    sent: list[str] = []
    refuse = [True]

    class Flaky(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            if len(sent) == 1 and refuse[0]:
                refuse[0] = False
                raise DeliveryError("HTTP 503: busy")
            sent.append(msg.delivery_key)

    now = datetime.now(UTC)
    w = Deliverer(engine, {"hook": Flaky()}, DeliverySettings(lease=600), owner="me", clock=lambda: now)
    report = asyncio.run(w.run())
    assert (report.sent, report.failed) == (1, 1)
    rows = list(_rows(engine).values())
    assert statuses(engine) == {"sent": 1, "failed": 2}
    # the third: handed back as it was (no lease, the attempt it had, its error)
    assert ("failed", None, 1, "HTTP 502") in rows and ("failed", None, 1, "HTTP 503: busy") in rows
    assert asyncio.run(w.run()).sent == 1  # the third at once; the refused one waits for its retry
    assert len(sent) == 2 and len(set(sent)) == 2
    assert statuses(engine) == {"sent": 2, "failed": 1}
    engine.dispose()


def test_a_stopping_lane_hands_back_the_delivery_claimed_ahead(pg_url: str) -> None:
    """``stop()`` during a send: that one is recorded, the one claimed ahead goes back to
    pending, and a later run sends it."""
    engine = store(pg_url)
    add_alerts(engine, 4, ("hook",))
    sent: list[str] = []
    w: Deliverer

    class Stopper(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)
            if len(sent) == 3:
                w.stop()

    w = Deliverer(engine, {"hook": Stopper()}, DeliverySettings(lease=600))
    assert asyncio.run(w.run()).sent == 3
    assert statuses(engine) == {"sent": 3, "pending": 1}
    w._stopping = False
    assert asyncio.run(w.run()).sent == 1 and len(set(sent)) == 4 == len(sent)
    engine.dispose()


@pytest.mark.parametrize("taken_over", [True, False], ids=["taken-over-before-its-send", "not-yet"])
def test_a_delivery_claimed_ahead_whose_lease_ran_out_is_not_sent_beside_the_other_instance(
        pg_url: str, taken_over: bool) -> None:
    """A lane held up after a send, past the lease of the delivery it claimed ahead: another
    instance takes that one over and sends it; the held-up lane must not send it too. If the
    other has not taken it yet, the held-up lane renews its claim and sends it, and the other
    finds nothing to take. Each delivery goes out once either way."""
    engine = store(pg_url)
    add_alerts(engine, 2, ("hook",))
    sent: list[tuple[str, str]] = []
    start = datetime.now(UTC)
    late = start + timedelta(seconds=61)  # past the 60 s lease of the one claimed ahead
    clock = [start]
    others: list[int] = []

    def other_instance_runs() -> None:  # its own thread, event loop and connections
        other = Deliverer(store(pg_url), {"hook": Probe("other")}, DeliverySettings(lease=60), owner="other",
                          clock=lambda: late)
        t = threading.Thread(target=lambda: others.append(asyncio.run(other.run()).sent))
        t.start()
        t.join(60)
        other.engine.dispose()

    class Probe(_Channel):
        def __init__(self, who: str) -> None:
            self.who = who

        async def send(self, msg: AlertMessage) -> None:
            if self.who == "held-up" and sent and not taken_over and not others:
                other_instance_runs()  # just before the second POST leaves
            sent.append((self.who, msg.delivery_key))

    held_up = Deliverer(engine, {"hook": Probe("held-up")}, DeliverySettings(lease=60), owner="held-up",
                        clock=lambda: clock[0])
    record = held_up._record_and_claim

    def recorded_then_held_up(*args: Any) -> Any:
        step = record(*args)  # the first one's outcome recorded; the second was claimed ahead before
        if clock[0] == start:
            clock[0] = late
            if taken_over:
                other_instance_runs()
        return step

    held_up._record_and_claim = recorded_then_held_up  # type: ignore[method-assign,assignment]
    report = asyncio.run(held_up.run())
    assert len(sent) == 2 and len({k for _, k in sent}) == 2, sent
    assert sent[0][0] == "held-up" and sent[1][0] == ("other" if taken_over else "held-up")
    assert report.sent == (1 if taken_over else 2) and others == [1 if taken_over else 0]
    assert statuses(engine) == {"sent": 2}
    engine.dispose()


def test_sigkill_mid_delivery_on_postgresql_loses_nothing_and_repeats_only_the_one_in_flight(
        tmp_path: Path, site: Site, pg_url: str) -> None:
    """As tests/test_deliver_crash.py on SQLite, with the claim-ahead of PostgreSQL: killed while
    the 12th alert is being sent, the 13th is claimed too (ahead). After restarts, all 40
    arrive; only the one in flight arrives twice, the one claimed ahead once (after its lease)."""
    engine = store(pg_url)
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
database = "{pg_url}"
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
    release.set()
    assert proc.returncode == -signal.SIGKILL
    assert statuses(engine) == {"sent": 11, "sending": 2, "pending": 27}
    deadline = time.monotonic() + 60
    while statuses(engine) != {"sent": 40} and time.monotonic() < deadline:
        res = run_monitor(cfg, "run", "--once")
        assert res.returncode == 0, res.stderr
    assert statuses(engine) == {"sent": 40}
    assert len(set(keys)) == 40 and len(keys) == 41  # the one in flight at the kill, and only it, came twice
    with session_scope(engine) as s:
        assert len(s.exec(select(Delivery)).all()) == 40
    engine.dispose()


def test_a_webhook_made_ahead_is_signed_keyed_and_stamped_as_one_made_at_its_send(pg_url: str, site: Site) -> None:
    """The webhook's body and signature of a delivery claimed ahead are made while the one
    before it is being sent; what the receiver gets is the same: a body whose signature
    verifies, the delivery's own Idempotency-Key, the channel's headers, a send time."""
    seen: list[str] = []
    engine = store(pg_url)
    add_alerts(engine, 5, ("hook",))
    site.pages["/hook"] = Page(b"{}", "application/json")
    hook = build_channel("hook", "webhook", {"url": site.url("/hook"), "secret": SECRET,
                                             "headers": {"X-Team": "desk"}})
    before = int(time.time())
    assert asyncio.run(Deliverer(engine, {"hook": hook}).run()).sent == 5
    posts = site.posts("/hook")
    assert len(posts) == 5
    for req in posts:
        assert verify(SECRET, req.body, req.headers["x-monitor-signature"])
        body = json.loads(req.body)
        assert req.headers["idempotency-key"] == body["delivery_id"] and req.headers["x-team"] == "desk"
        assert body["rule"] == "kz" and body["statements"][0]["speaker"]
        assert before <= int(req.headers["x-monitor-timestamp"]) <= int(time.time())
        seen.append(body["delivery_id"])
    assert len(set(seen)) == 5 and statuses(engine) == {"sent": 5}
    engine.dispose()
