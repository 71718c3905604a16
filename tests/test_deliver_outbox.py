"""The outbox: signed webhooks with idempotency keys, claims shared by several instances,
leases of dead instances, notices, and the `monitor alerts` commands."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, event, text, update
from sqlmodel import col, select

from monitor.alerts import enqueue_notice
from monitor.alerts.outbox import claim_next
from monitor.alerts.payload import MatchPayload
from monitor.alerts.render import AlertMessage
from monitor.cli import cli
from monitor.deliver.base import DeliveryError, build_channel
from monitor.deliver.channels.webhook import verify
from monitor.deliver.worker import Deliverer, DeliverySettings
from monitor.store import Article, Delivery, session_scope
from tests.deliver_helpers import add_alerts, statuses, store
from tests.harness import ROOT, run_monitor
from tests.servers import Page, Request, Site

SECRET = "hook-secret"


class _Channel:
    """A channel named "hook" whose ``send`` a test writes (what it got, what it raises)."""

    name, type, threads, timeout = "hook", "webhook", False, 5.0
    templates = build_channel("hook", "webhook", {"url": "http://127.0.0.1/"}).templates


def _receiver(site: Site, seen: list[str], status: int = 200) -> None:
    """A receiver that checks the signature and drops repeated idempotency keys."""
    def handle(req: Request) -> Page:
        if not verify(SECRET, req.body, req.headers.get("x-monitor-signature", "")):
            return Page(b"bad signature", "text/plain", 401)
        key = req.headers["idempotency-key"]
        assert key == json.loads(req.body)["delivery_id"]
        if key not in seen:
            seen.append(key)
        return Page(b"{}", "application/json", status)
    site.pages["/hook"] = handle


def test_webhook_is_signed_and_carries_a_stable_idempotency_key(tmp_path: Path, site: Site) -> None:
    seen: list[str] = []
    _receiver(site, seen)
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    add_alerts(engine, 2, ("hook",))
    hook = build_channel("hook", "webhook", {"url": site.url("/hook"), "secret": SECRET,
                                             "headers": {"X-Team": "desk"}})
    assert asyncio.run(Deliverer(engine, {"hook": hook}).run()).sent == 2
    posts = site.posts("/hook")
    assert len(posts) == 2 and len(seen) == 2
    body = json.loads(posts[0].body)
    assert body["rule"] == "kz" and body["outlet"] == "Loopback Pravda" and body["statements"][0]["speaker"]
    assert body["also_reported_by"] == [] and posts[0].headers["x-team"] == "desk"
    # A reprint of a story elsewhere: its alert names the other outlet.
    add_alerts(engine, 1, ("hook",), outlet="Kazinform", story=7, first=20)
    add_alerts(engine, 1, ("hook",), outlet="TASS", story=7, first=21)
    asyncio.run(Deliverer(engine, {"hook": hook}).run())
    assert [p["also_reported_by"] for p in site.post_json("/hook")[2:]] == [["TASS"], ["Kazinform"]]
    with session_scope(engine) as s:
        s.execute(update(Delivery).where(col(Delivery.id) > 2).values(status="dead"))
    # The key is the same when the same delivery is sent again (a repeat after a crash).
    with session_scope(engine) as s:
        s.execute(update(Delivery).where(col(Delivery.id) <= 2).values(status="pending"))
    asyncio.run(Deliverer(engine, {"hook": hook}).run())
    assert len(site.posts("/hook")) == 6 and len(seen) == 4
    # A wrong secret is refused by the receiver: the delivery is dead at once (401 is permanent).
    bad = build_channel("hook", "webhook", {"url": site.url("/hook"), "secret": "wrong"})
    add_alerts(engine, 1, ("hook",), first=10)
    assert asyncio.run(Deliverer(engine, {"hook": bad}).run()).dead == 1


def test_two_instances_send_each_delivery_once(tmp_path: Path, database_url: str, site: Site) -> None:
    """Two instances (threads with their own event loop and connections, so their claims really
    race in the database) share 30 deliveries: each is sent once, and both did some."""
    seen: list[str] = []
    _receiver(site, seen)
    engine = store(database_url)
    add_alerts(engine, 30, ("hook",))
    hook = build_channel("hook", "webhook", {"url": site.url("/hook"), "secret": SECRET})
    workers = [Deliverer(store(database_url), {"hook": hook}, owner=name) for name in ("a", "b")]
    sent: dict[str, int] = {}
    start = threading.Barrier(2)

    def run(w: Deliverer) -> None:
        start.wait()
        sent[w.owner] = asyncio.run(w.run()).sent

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sent["a"] + sent["b"] == 30 and sent["a"] > 0 and sent["b"] > 0
    assert len(site.posts("/hook")) == 30 and len(seen) == 30
    assert statuses(engine) == {"sent": 30}
    for w in workers:
        w.engine.dispose()
    engine.dispose()


def test_a_dead_instances_claim_expires_and_is_taken_over(tmp_path: Path, database_url: str,
                                                          site: Site) -> None:
    seen: list[str] = []
    _receiver(site, seen)
    engine = store(database_url)
    add_alerts(engine, 2, ("hook",))
    now = datetime.now(UTC)
    with session_scope(engine) as s:  # an instance claims one, then dies
        assert claim_next(s, "dead-instance", now, lease=60) is not None
    hook = build_channel("hook", "webhook", {"url": site.url("/hook"), "secret": SECRET})
    clock = [now]
    w = Deliverer(engine, {"hook": hook}, DeliverySettings(lease=60), owner="alive", clock=lambda: clock[0])
    assert asyncio.run(w.run()).sent == 1  # the claimed one is left alone while its lease runs
    assert statuses(engine) == {"sent": 1, "sending": 1}
    clock[0] = now + timedelta(seconds=61)
    assert asyncio.run(w.run()).sent == 1
    assert statuses(engine) == {"sent": 2} and len(seen) == 2
    engine.dispose()


@pytest.mark.parametrize("taken_over", [True, False], ids=["taken-over-before-its-send", "not-yet"])
def test_an_instance_held_up_past_its_claims_lease_does_not_send_it_beside_the_other(
        database_url: str, taken_over: bool) -> None:
    """An instance held up between claiming a delivery and sending it, past the claim's lease (a
    starved process): another instance, finding the lease over, takes the claim over and sends
    it. The first one, alive, must not send it too (the one repeat allowed is a crashed
    instance's). If the other took it over first, the held-up one leaves it; if not yet, the
    held-up one renews its claim, sends it, and the other finds nothing to take."""
    engine = store(database_url)
    add_alerts(engine, 1, ("hook",))
    sent: list[tuple[str, str]] = []
    start = datetime.now(UTC)
    late = start + timedelta(seconds=61)  # past the claim's 60 s lease
    clock = [start]
    others: list[int] = []

    def other_instance_runs() -> None:  # its own thread, event loop and connections
        other = Deliverer(store(database_url), {"hook": Probe("other")}, DeliverySettings(lease=60), owner="other",
                          clock=lambda: late)
        t = threading.Thread(target=lambda: others.append(asyncio.run(other.run()).sent))
        t.start()
        t.join(60)
        other.engine.dispose()

    class Probe(_Channel):
        def __init__(self, who: str) -> None:
            self.who = who

        async def send(self, msg: AlertMessage) -> None:
            if self.who == "held-up" and not taken_over and not others:
                other_instance_runs()  # just before this POST leaves
            sent.append((self.who, msg.delivery_key))

    held_up = Deliverer(engine, {"hook": Probe("held-up")}, DeliverySettings(lease=60), owner="held-up",
                        clock=lambda: clock[0])
    book = held_up._book

    def claim_then_held_up(*args: Any) -> Any:
        step = book(*args)  # claimed, and committed
        if step is not None and clock[0] == start:
            clock[0] = late
            if taken_over:
                other_instance_runs()
        return step

    held_up._book = claim_then_held_up  # type: ignore[method-assign,assignment]
    report = asyncio.run(held_up.run())
    assert len(sent) == 1, sent
    assert sent[0][0] == ("other" if taken_over else "held-up") and report.sent == (0 if taken_over else 1)
    assert others == [1 if taken_over else 0]
    assert statuses(engine) == {"sent": 1}
    engine.dispose()


def test_notice_goes_through_the_outbox_once_per_key(tmp_path: Path, database_url: str, site: Site) -> None:
    site.pages["/hook"] = Page(b"{}", "application/json")
    engine = store(database_url)
    for _ in range(2):
        with session_scope(engine) as s:
            enqueue_notice(s, ["hook"], "Source broken: TASS", "TASS has failed 5 times: HTTP 503", "broken:TASS:1")
    hook = build_channel("hook", "webhook", {"url": site.url("/hook")})
    assert asyncio.run(Deliverer(engine, {"hook": hook}).run()).sent == 1
    [body] = site.post_json("/hook")
    assert body["kind"] == "notice" and body["subject"] == "[monitor] Source broken: TASS"
    assert body["text"] == "TASS has failed 5 times: HTTP 503"
    engine.dispose()


def test_alerts_command_lists_and_retries(tmp_path: Path, site: Site) -> None:
    site.pages["/hook"] = Page(b"no", "text/plain", 503)
    db = tmp_path / "m.db"
    engine = store(f"sqlite:///{db}")
    add_alerts(engine, 2, ("hook",))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[monitor]
database = "sqlite:///{db}"
retry_delay = "1h"
delivery_max_attempts = 2

[[channel]]
name = "hook"
type = "webhook"
url = "{site.url('/hook')}"
""", encoding="utf-8")
    first = run_monitor(cfg, "run", "--once")  # no source at all: pending deliveries still go out
    # The rest in-process (same CLI, no interpreter start-up per command).
    runner = CliRunner()

    def cli_run(*args: str) -> Result:
        return runner.invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)

    assert first.returncode == 0, first.stderr
    listed = json.loads(cli_run("alerts", "--json").stdout)
    # The channel failed once, so the other delivery waits for the next run (not hammered).
    assert [it["status"] for it in listed] == ["pending", "failed"]
    assert "HTTP 503" in listed[1]["last_error"] and listed[1]["next_attempt"]
    deadline = time.monotonic() + 30
    while statuses(engine) != {"dead": 2} and time.monotonic() < deadline:
        with session_scope(engine) as s:
            s.execute(update(Delivery).values(next_attempt_at=datetime.now(UTC)))
        cli_run("run", "--once")
    dead = json.loads(cli_run("alerts", "--status", "dead", "--json").stdout)
    assert len(dead) == 2
    site.pages["/hook"] = Page(b"{}", "application/json")
    one = cli_run("alerts", "retry", str(dead[0]["id"]))
    assert one.exit_code == 0 and "1 delivery queued again" in one.output
    cli_run("run", "--once")
    assert statuses(engine) == {"sent": 1, "dead": 1}
    assert "1 delivery queued again" in cli_run("alerts", "retry", "--dead").output
    cli_run("run", "--once")
    assert statuses(engine) == {"sent": 2}
    text = cli_run("alerts").stdout
    assert text.count("sent") == 2 and "Story 0" in text
    bad = cli_run("alerts", "retry", str(dead[0]["id"]))
    assert bad.exit_code == 1
    with session_scope(engine) as s:
        assert len(s.exec(select(Delivery)).all()) == 2
    engine.dispose()


def test_delivery_runs_seconds_apart_reuse_each_channels_connection(tmp_path: Path, webhook: Site) -> None:
    """The daemon's delivery runs (every poll that alerts starts one) send over the connection the
    previous run opened: no new TCP and TLS handshake per run. Closing the pipeline closes it;
    a run on its own (``monitor run --once``, a test message) still opens and closes its own."""
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    deliverer = Deliverer(engine, {"hook": build_channel("hook", "webhook", {"url": webhook.url("/hook")})})

    async def runs(keep: bool) -> None:
        for first in (0, 2):
            add_alerts(engine, 2, ("hook",), first=first + (10 if keep else 0))
            assert (await deliverer.run(keep_connections=keep)).sent == 2
        await deliverer.aclose()

    asyncio.run(runs(keep=True))
    assert len(webhook.posts("/hook")) == 4 and len({r.client for r in webhook.posts("/hook")}) == 1
    webhook.requests.clear()
    asyncio.run(runs(keep=False))
    assert len(webhook.posts("/hook")) == 4 and len({r.client for r in webhook.posts("/hook")}) == 2
    engine.dispose()


def test_only_the_outbox_bookkeeping_commits_without_waiting_for_the_flush(pg_url: str) -> None:
    """PostgreSQL: claims and outcomes go out with ``synchronous_commit = off`` (a server crash
    can then repeat an alert, never lose one: see ``Deliverer._ledger``). Everything else, above
    all the transaction creating an alert, still waits for the flush: while a run is sending,
    and after it, every other connection of the engine commits synchronously."""
    engine = store(pg_url)
    add_alerts(engine, 3, ("hook",))
    seen: list[tuple[str, str]] = []

    def setting(conn: Connection) -> str:
        return str(conn.execute(text("SHOW synchronous_commit")).scalar_one())

    class Probe:
        name, type, threads, timeout = "hook", "webhook", False, 5.0
        templates = build_channel("hook", "webhook", {"url": "http://127.0.0.1/"}).templates

        async def send(self, msg: AlertMessage) -> None:
            with session_scope(engine) as s:  # as the ingest's transaction would, meanwhile
                seen.append((setting(s.connection()), msg.delivery_key))

    w = Deliverer(engine, {"hook": Probe()})
    assert asyncio.run(w.run()).sent == 3
    assert [on for on, _ in seen] == ["on"] * 3
    assert statuses(engine) == {"sent": 3}
    # The run's own connection went back to the pool as it came: take every pooled one at once.
    with engine.connect() as a, engine.connect() as b, engine.connect() as c:
        assert {setting(a), setting(b), setting(c)} == {"on"}
    with w._ledger() as conn:  # the bookkeeping connection itself does not wait
        assert conn is not None and setting(conn) == "off"
    engine.dispose()


def test_a_claim_reads_its_channels_open_deliveries_from_their_index(tmp_path: Path) -> None:
    """SQLite: a claim reads the first open deliveries of its channel from ``ix_delivery_open``
    instead of sorting every due row of the backlog (its cost then grew with the backlog). SQLite
    uses a partial index only when the query repeats the index's condition word for word, so a
    change on either side would silently undo it; PostgreSQL's planner chooses by cost."""
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    add_alerts(engine, 5, ("hook", "mail"))
    claims: list[str] = []

    def keep(statement: str) -> None:
        if statement.startswith("UPDATE delivery SET status"):
            claims.append(statement)

    with session_scope(engine) as s:
        # What the driver runs (the claim goes to the driver's cursor, past SQLAlchemy's events),
        # its values written in.
        raw = s.connection().connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        raw.set_trace_callback(keep)
        assert claim_next(s, "me", datetime.now(UTC), 60, channel="hook") is not None
        raw.set_trace_callback(None)
    statement, = claims
    with engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement)]
    assert any("USING INDEX ix_delivery_open (channel=?)" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert any("USING INTEGER PRIMARY KEY" in step for step in plan), plan
    engine.dispose()


def test_also_reported_by_is_the_same_whether_the_claim_reads_it_or_not(database_url: str) -> None:
    """The claim reads the story's other outlets itself (one JSON array, a statement less per
    delivery); elsewhere (the console, digests) ``reported.also_reported_by`` asks. Both come
    from one query (``monitor.story.reported``) and must say the same for every alert: an outlet
    listed once with the languages of its reports, first-seen order, the alert's own outlet never."""
    from monitor.story.reported import also_reported_by

    engine = store(database_url)
    ids: list[int] = []
    for outlet in ("Wire", "Pravda", "Wire", "Kazinform", "Pravda"):
        ids += add_alerts(engine, 1, ("hook",), outlet=outlet, first=len(ids), story=7)
    ids += add_alerts(engine, 1, ("hook",), outlet="Alone", first=len(ids))  # no story
    with session_scope(engine) as s:
        for aid, lang in zip(ids, ("en", "ru", "kk", None, "ru", "en"), strict=True):
            s.execute(update(Article).where(col(Article.id) == aid).values(language=lang))
    delivered: dict[int, tuple[str, ...]] = {}

    class Probe:
        name, type, threads, timeout = "hook", "webhook", False, 5.0
        templates = build_channel("hook", "webhook", {"url": "http://127.0.0.1/"}).templates

        async def send(self, msg: AlertMessage) -> None:
            assert isinstance(msg.payload, MatchPayload) and msg.payload.article_id is not None
            delivered[msg.payload.article_id] = msg.also_reported_by

    assert asyncio.run(Deliverer(engine, {"hook": Probe()}).run()).sent == len(ids)
    with session_scope(engine) as s:
        assert delivered == {aid: tuple(also_reported_by(s, aid)) for aid in ids}
    assert delivered[ids[3]] == ("Wire (en, kk)", "Pravda (ru)")
    assert delivered[ids[0]] == ("Pravda (ru)", "Kazinform") and delivered[ids[5]] == ()
    engine.dispose()


def test_a_process_that_only_delivers_never_loads_the_story_index(database_url: str) -> None:
    """Delivering a story's alerts, and a digest's looking up of their other outlets, name them
    without importing the story index and NumPy (``monitor.story.stories``): a delivery-only
    process stays small. (A digest imported them, for the outlets' wording alone.)"""
    engine = store(database_url)
    ids = add_alerts(engine, 1, ("hook",), outlet="Wire", story=7)
    ids += add_alerts(engine, 1, ("hook",), outlet="Pravda", first=1, story=7)
    engine.dispose()
    code = ("import asyncio, sys\n"
            "from monitor.deliver.base import build_channel\n"
            "from monitor.deliver.worker import Deliverer, also_reported_by\n"
            "from monitor.store import create_db_engine, session_scope\n"
            "got = []\n"
            "class Probe:\n"
            "    name, type, threads, timeout = 'hook', 'webhook', False, 5.0\n"
            "    templates = build_channel('hook', 'webhook', {'url': 'http://127.0.0.1/'}).templates\n"
            "    async def send(self, msg):\n"
            "        got.append(msg.also_reported_by)\n"
            f"engine = create_db_engine({database_url!r})\n"
            "report = asyncio.run(Deliverer(engine, {'hook': Probe()}).run())\n"
            "with session_scope(engine) as s:\n"  # as a digest asks
            f"    digest = [also_reported_by(s, aid) for aid in {ids!r}]\n"
            "print(report.sent, sorted(got), digest, [m for m in ('numpy', 'monitor.story.stories') if m in sys.modules])\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.stdout.strip() == "2 [('Pravda',), ('Wire',)] [['Pravda'], ['Wire']] []", res.stdout + res.stderr


def test_a_failing_lane_lets_the_other_channels_finish_and_record_their_sends(database_url: str) -> None:
    """One lane failing (its database write raised) ends the run with that error, but only after
    the other channels' lanes have finished on the connection they share: a delivery the
    receiver accepted meanwhile is recorded "sent", not left "sending" to go out again."""
    engine = store(database_url)
    add_alerts(engine, 2, ("slow",))
    add_alerts(engine, 1, ("bad",), first=2)
    sent: list[str] = []

    class Slow:
        name, type, threads, timeout = "slow", "webhook", False, 5.0
        templates = build_channel("slow", "webhook", {"url": "http://127.0.0.1/"}).templates

        async def send(self, msg: AlertMessage) -> None:
            await asyncio.sleep(0.2)  # still sending when the other lane fails
            sent.append(msg.delivery_key)

    class Bad(Slow):
        name = "bad"

    class Failing(Deliverer):
        async def _lane(self, report: Any, budget: list[int | None], conn: Connection, ledger: Any,
                        channel: str | None = None, exclude: frozenset[str] = frozenset()) -> bool:
            if channel == "bad":
                raise RuntimeError("database is locked")
            return await super()._lane(report, budget, conn, ledger, channel=channel, exclude=exclude)

    try:
        asyncio.run(Failing(engine, {"slow": Slow(), "bad": Bad()}).run())
    except RuntimeError as e:
        assert "database is locked" in str(e)
    else:
        raise AssertionError("the lane's failure was not raised")
    assert len(sent) == 2
    with session_scope(engine) as s:
        rows = s.exec(select(Delivery.channel, Delivery.status)).all()
    assert sorted(rows) == [("bad", "pending"), ("slow", "sent"), ("slow", "sent")]
    engine.dispose()


async def _run_freed_by_the_loop(deliverer: Deliverer, waiting: Callable[[], bool], free: Callable[[], None]) -> int:
    """One delivery run while a coroutine on the same event loop (as a fetch or a lease renewal
    would be) waits until ``waiting()`` says the run's database work is held, lets the loop turn
    a few times, then ``free()``s it, as often as that happens; returns the alerts sent. Judged on events, not on the
    loop's lag by the wall clock (a loaded machine stalls a healthy loop too): work held on the
    loop's own thread keeps the coroutine from ever freeing it, and the run fails or waits out
    its bound (the 30 s busy timeout, the checkout's wait) instead."""
    run = asyncio.ensure_future(deliverer.run())

    async def other_work() -> None:
        while not run.done():
            if waiting():
                for _ in range(5):  # the loop goes on while the run's work waits
                    await asyncio.sleep(0.01)
                free()
            await asyncio.sleep(0.01)

    other = asyncio.ensure_future(other_work())
    try:
        return (await run).sent
    finally:
        await other


@pytest.mark.parametrize("digest", [False, True], ids=["alert", "digest"])
def test_the_event_loop_runs_on_while_a_delivery_waits_for_a_locked_database(tmp_path: Path, digest: bool) -> None:
    """A delivery whose claim (or a due digest's building) waits for the database (SQLite locked
    by another instance's writer: up to the 30 s busy timeout) waits on a thread of its own: the
    daemon's other work on the event loop (fetches, source claims, lease renewals) goes on. Here
    that other work is what ends the lock, once a write of the run is waiting for it."""
    db = tmp_path / "monitor.db"
    engine = store(f"sqlite:///{db}")
    add_alerts(engine, 1, ("hook",))
    if digest:  # held for a digest that is due: the run builds it, then sends it
        with session_scope(engine) as s:
            s.execute(update(Delivery).values(status="digest", digest_due_at=datetime.now(UTC) - timedelta(minutes=1)))
    sent: list[str] = []

    class Hook(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)

    locker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock until the loop ends it
    locked = [True]
    blocked = threading.Event()  # a write of the run's began while the lock was held: it waits

    def traced(sql: str) -> None:  # SQLite calls it as a statement starts, on the thread running it
        if locked[0] and sql.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            blocked.set()

    def trace(dbapi_conn: Any, *args: Any) -> None:
        dbapi_conn.set_trace_callback(traced)

    def unlock() -> None:
        locked[0] = False
        locker.rollback()

    event.listen(engine, "checkout", trace)
    try:
        n_sent = asyncio.run(_run_freed_by_the_loop(Deliverer(engine, {"hook": Hook()}),
                                                    lambda: locked[0] and blocked.is_set(), unlock))
    finally:
        event.remove(engine, "checkout", trace)
        locker.close()
    assert n_sent == 1 and len(sent) == 1
    assert blocked.is_set()  # the claim did wait for the lock (and the loop, running meanwhile, ended it)
    assert statuses(engine) == ({"sent": 2} if digest else {"sent": 1})  # a digest: it and its alert
    engine.dispose()


def test_the_event_loop_runs_on_while_a_run_waits_for_its_connection(tmp_path: Path) -> None:
    """The run's bookkeeping connection is checked out (and set up) on the bookkeeping thread
    too: a pool at its limit or a slow server holds up the delivery run, not the event loop.
    Each checkout waits (a pool at its limit) until a coroutine on the loop lets it go."""
    engine = store(f"sqlite:///{tmp_path / 'monitor.db'}")
    add_alerts(engine, 1, ("hook",))
    sent: list[str] = []

    class Hook(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)

    held: list[threading.Event] = []  # checkouts waiting to be let go
    freed: list[bool] = []  # for each checkout: let go by the loop (True), or its 30 s ran out

    def slow_checkout(*args: Any) -> None:
        go = threading.Event()
        held.append(go)
        freed.append(go.wait(30))

    def let_go() -> None:
        while held:
            held.pop().set()

    event.listen(engine, "checkout", slow_checkout)
    try:
        n_sent = asyncio.run(_run_freed_by_the_loop(Deliverer(engine, {"hook": Hook()}), lambda: bool(held), let_go))
    finally:
        event.remove(engine, "checkout", slow_checkout)
    assert n_sent == 1 and len(sent) == 1
    assert freed and all(freed), f"checkouts not let go by the event loop: {freed}"
    engine.dispose()


def test_a_database_server_gone_mid_run_fails_that_run_and_the_next_delivers_the_rest(pg_url: str) -> None:
    """PostgreSQL: the bookkeeping connection dies between two deliveries (a server restart, an
    administrator ending it). The run stops with SQLAlchemy's OperationalError, as every other
    database failure reaches the daemon, and the dead connection is not handed back for reuse:
    the next run delivers the rest, and the delivery whose outcome was lost goes out again once
    its lease ends (at-least-once), never one of the others."""
    from sqlalchemy.exc import OperationalError

    engine = store(pg_url)
    add_alerts(engine, 3, ("hook",))
    sent: list[str] = []
    clock = [datetime.now(UTC)]

    class Probe(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)
            if len(sent) == 1:
                with engine.connect() as conn:  # every other connection of this database ends
                    conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND pid <> pg_backend_pid()"))

    w = Deliverer(engine, {"hook": Probe()}, DeliverySettings(lease=60), clock=lambda: clock[0])
    try:
        asyncio.run(w.run())
    except OperationalError:
        pass
    else:
        raise AssertionError("the lost connection was not reported")
    assert len(sent) == 1
    clock[0] += timedelta(seconds=61)  # the first delivery's lease ends
    assert asyncio.run(w.run()).sent == 3
    assert len(sent) == 4 and sent.count(sent[0]) == 2 and len(set(sent)) == 3
    assert statuses(engine) == {"sent": 3}
    engine.dispose()


def test_a_database_server_gone_under_two_channels_reports_the_lost_connection(pg_url: str) -> None:
    """PostgreSQL, two channels: their lanes share the run's bookkeeping connection. When it
    dies, the lane that next writes on it gets the OperationalError, and every other lane then
    finds the connection waiting for a rollback (PendingRollbackError). The run reports the
    lost connection, whichever lane comes first in the config: "Can't reconnect until invalid
    transaction is rolled back" would hide what happened from an operator. The next run
    delivers the rest, and the two outcomes lost go out again once their leases end."""
    from sqlalchemy.exc import OperationalError, PendingRollbackError

    engine = store(pg_url)
    add_alerts(engine, 2, ("a", "b"))
    sent: list[str] = []
    clock = [datetime.now(UTC)]
    killed = asyncio.Event()

    class Later(_Channel):  # first in the config: its lane writes after the other's
        name = "a"

        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)
            if not killed.is_set():
                await asyncio.wait_for(killed.wait(), 30)

    class Killer(_Channel):
        name = "b"

        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)
            if not killed.is_set():
                with engine.connect() as conn:  # every other connection of this database ends
                    conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
                killed.set()

    w = Deliverer(engine, {"a": Later(), "b": Killer()}, DeliverySettings(lease=60), clock=lambda: clock[0])
    with pytest.raises(OperationalError) as caught:
        asyncio.run(w.run())
    assert not isinstance(caught.value, PendingRollbackError)
    assert len(sent) == 2
    clock[0] += timedelta(seconds=61)  # the first deliveries' leases end
    assert asyncio.run(w.run()).sent == 4
    assert len(sent) == 6 and len(set(sent)) == 4
    assert statuses(engine) == {"sent": 4}
    engine.dispose()


def test_a_receivers_error_text_with_a_nul_is_recorded(database_url: str) -> None:
    """What a receiver answered is stored as the delivery's last error, and it may hold a NUL,
    which PostgreSQL refuses: the outcome is recorded without it (by the statement that also
    claims the next delivery), and the next alert still goes out."""
    engine = store(database_url)
    add_alerts(engine, 2, ("hook",))
    sent: list[str] = []

    class Probe(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)
            if len(sent) == 1:
                raise DeliveryError("refused: \x00bad bytes", permanent=True)

    assert asyncio.run(Deliverer(engine, {"hook": Probe()}).run()).sent == 1
    assert statuses(engine) == {"dead": 1, "sent": 1}
    with session_scope(engine) as s:
        assert s.exec(select(Delivery.last_error).where(Delivery.status == "dead")).one() == "refused: bad bytes"
    engine.dispose()


def test_a_receivers_error_text_is_recorded_with_secrets_redacted(database_url: str) -> None:
    """A receiver's answer may echo a secret (the token of the URL it was sent to): the error
    recorded with the statement that also claims the next delivery (a permanent refusal: the
    lane goes on) has it redacted, as every other write of ``last_error`` has (ErrorText)."""
    from monitor.clean import set_secrets

    engine = store(database_url)
    add_alerts(engine, 2, ("hook",))
    sent: list[str] = []
    token = "xoxb-secret-token-4242"

    class Probe(_Channel):
        async def send(self, msg: AlertMessage) -> None:
            sent.append(msg.delivery_key)
            if len(sent) == 1:
                raise DeliveryError(f"HTTP 401: invalid token {token}", permanent=True)

    set_secrets([token])
    try:
        assert asyncio.run(Deliverer(engine, {"hook": Probe()}).run()).sent == 1
    finally:
        set_secrets([])
    with session_scope(engine) as s:
        assert s.exec(select(Delivery.last_error).where(Delivery.status == "dead")).one() == "HTTP 401: invalid token ***"
    engine.dispose()
