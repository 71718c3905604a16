"""Send due deliveries from the outbox, one claimed row at a time.

One at a time on purpose: if the process is killed, at most the one delivery in flight can be
repeated (see monitor/alerts/outbox.py for the at-least-once promise). Everything that decides
*whether* to send now (digest mode, quiet hours, rate limit) happens after the claim, under
the lease, so several instances agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, update
from sqlalchemy.exc import PendingRollbackError
from sqlmodel import Session, col, select

from monitor import util
from monitor.alerts.outbox import (
    Claimed,
    claim,
    delivery_key,
    record_and_claim,
    release,
    renew,
    sent_since,
)
from monitor.alerts.payload import (
    DigestItem,
    DigestPayload,
    MatchPayload,
    dump_payload,
    parse_payload,
)
from monitor.alerts.policy import ChannelPolicy, RulePolicy
from monitor.alerts.render import AlertMessage
from monitor.config import MonitorSettings
from monitor.deliver.base import (
    Channel,
    DeliveryError,
    close_clients,
    delivery_parts,
    reuse_connections,
)
from monitor.store.db import commit_without_flush, flush_commits_again, session_scope
from monitor.store.models import Alert, Article, Delivery, Match
from monitor.story import reported
from monitor.util import aware, instance_id

log = logging.getLogger(__name__)
BASE_DELAY = MonitorSettings.retry_delay  # first retry of a failed delivery
MAX_DELAY = 3600.0
DEFAULT_DEADLINE = 30.0  # for a channel object without a ``timeout``


@dataclass(frozen=True)
class DeliverySettings:
    """The [monitor] delivery settings (meanings and defaults: monitor.config.MonitorSettings)."""

    retry_delay: float = MonitorSettings.retry_delay
    max_attempts: int = MonitorSettings.delivery_max_attempts
    dead_after: float = MonitorSettings.delivery_dead_after
    lease: float = MonitorSettings.delivery_lease

    @classmethod
    def from_monitor(cls, m: MonitorSettings) -> DeliverySettings:
        return cls(retry_delay=m.retry_delay, max_attempts=m.delivery_max_attempts,
                   dead_after=m.delivery_dead_after, lease=m.delivery_lease)


_Outcome = tuple[Claimed, AlertMessage, "DeliveryError | None"]
_T = TypeVar("_T")


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0  # moved into a digest (digest mode or rate-limit overflow)
    digests: int = 0  # digests built


def backoff(attempts: int, base: float = BASE_DELAY, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base, ... capped at an hour; never
    sooner than the platform's Retry-After."""
    return max(util.backoff(attempts - 1, base, MAX_DELAY), retry_after or 0.0)


def also_reported_by(session: Session | None, article_id: int | None,
                     rows: list[tuple[str, str | None]] | None = None) -> list[str]:
    """Other outlets that printed the same story (from ``rows`` when the claim read them)."""
    if article_id is None:
        return []
    if rows is not None:
        return reported.outlets(rows)
    assert session is not None, "the story's other outlets were not read with the claim"
    return reported.also_reported_by(session, article_id)


def story_articles(session: Session, article_id: int) -> tuple[str, list[int]]:
    """(story key, ids of the story's articles); the article alone if it has no story (yet)."""
    art = session.get(Article, article_id)
    sid = art.story_id if art else None
    if sid is not None:
        ids = session.exec(select(Article.id).where(Article.story_id == sid)).all()
        return f"story:{sid}", [int(i) for i in ids if i is not None]
    return f"article:{article_id}", [article_id]


def thread_root(session: Session, d: Claimed, article_id: int | None) -> str | None:
    """Key of the first delivery already sent on this channel about the same story."""
    if article_id is None:
        return None
    _, ids = story_articles(session, article_id)
    row = session.exec(
        select(Delivery.key).join(Alert, col(Alert.id) == col(Delivery.alert_id))
        .join(Match, col(Match.id) == col(Alert.match_id))
        .where(col(Match.article_id).in_(ids), col(Delivery.channel) == d.channel,
               col(Delivery.status) == "sent", col(Delivery.id) != d.id)
        .order_by(col(Delivery.sent_at), col(Delivery.id)).limit(1)).first()
    return row


class _LedgerThread:
    """The thread the running lanes' bookkeeping runs on: calls one at a time, in the order given,
    off the event loop. A queue and a thread of its own, not a ThreadPoolExecutor and
    ``run_in_executor`` (work item, concurrent future chained to an asyncio one, executor
    locks): that hop cost ~45 us of CPU against ~27 us this way, and a lane takes one per delivery
    (issue 15)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: queue.SimpleQueue[tuple[asyncio.Future[Any], contextvars.Context, Callable[..., Any],
                                             tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="delivery-ledger", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """``fn(*args)`` on the thread (in a copy of the caller's context); its outcome."""
        fut: asyncio.Future[_T] = self._loop.create_future()
        self._calls.put((fut, contextvars.copy_context(), fn, args))
        return fut

    def close(self) -> None:
        """The thread ends once the calls given before are done."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            fut, context, fn, args = item
            try:
                result, error = context.run(fn, *args), None
            except BaseException as exc:  # the awaiting lane raises it
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                self._loop.call_soon_threadsafe(_settle, fut, result, error)
            del item, fut, result, error  # no reference outlives the call


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)


@dataclass(eq=False)
class _Lane:
    """A channel's lane while it runs (``channel`` None: deliveries whose channel the config
    lacks)."""

    channel: str | None
    task: asyncio.Task[None] = field(init=False)
    again: bool = False  # woken while running: it looks for due deliveries once more before ending


class _Books:
    """What the lanes running at one time write their claims and outcomes on: one database
    connection (``Deliverer._ledger``), used on one thread of its own (``_LedgerThread``): the
    event loop keeps sending, fetching and renewing leases while a commit waits for the database
    (on SQLite up to its 30 s busy timeout), and the one thread keeps the lanes' use of the
    connection they share one at a time. The first lane opens it (on that thread too: a pool at
    its limit or a slow server holds up the lanes, not the loop); the last lane to end closes
    it. After a lane failed (a write that lost the connection, a database locked), lanes
    started later get books of their own, while those still running finish on these."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer = deliverer
        self.ledger = _LedgerThread(asyncio.get_running_loop())
        self.lanes = 0  # lanes on it
        self.error: BaseException | None = None  # the first lane's failure
        self._held = deliverer._ledger()
        self._opened: asyncio.Future[Connection] | None = None

    async def connection(self) -> Connection:
        if self._opened is None:
            self._opened = asyncio.ensure_future(self.deliverer._on_ledger(self.ledger, self._held.__enter__))
        return await asyncio.shield(self._opened)

    async def close(self) -> None:
        try:
            opened = self._opened
            if opened is None:
                return
            await asyncio.wait([opened])  # (a lane cancelled while it opened: it still opens)
            if opened.cancelled() or opened.exception() is not None:
                return
            e = self.error
            await self.deliverer._on_ledger(self.ledger, self._held.__exit__, type(e) if e else None, e,
                                            e.__traceback__ if e else None)
        finally:
            self.ledger.close()  # idle: every lane waited for its own bookkeeping


class Deliverer:
    def __init__(self, engine: Engine, channels: dict[str, Channel],
                 settings: DeliverySettings | None = None,
                 rules: dict[str, RulePolicy] | None = None,
                 policies: dict[str, ChannelPolicy] | None = None,
                 owner: str | None = None, clock: Callable[[], datetime] | None = None):
        self.engine = engine
        self.channels = channels
        self.settings = settings or DeliverySettings()
        self.rules = rules or {}
        self.policies = policies or {}
        self.owner = owner or instance_id()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._stopping = False
        # Each channel's HTTP client, kept from one run to the next (``run(keep_connections=True)``)
        # on the event loop that made it; ``aclose`` ends them (after the lanes running).
        self._kept: tuple[asyncio.AbstractEventLoop, dict[str, Any]] | None = None
        self._active = 0  # lanes not yet ended
        self._closing = False
        # The lane of each channel while it runs (None: deliveries whose channel the config
        # lacks): at most one per channel, so one send at a time on it (``_wake_lanes``).
        self._lanes: dict[str | None, _Lane] = {}
        # The lanes of the deliverer this one took over from (``follow``), still running.
        self._before: dict[str | None, asyncio.Task[None]] = {}
        self._books: _Books | None = None  # what the running lanes write on
        self._digesting = threading.Lock()
        self._waking = False  # a wake-up is building the digests (``wake``)

    def stop(self) -> None:
        """Claim nothing more: each running lane ends after its delivery in flight, and a
        wake-up starts none."""
        self._stopping = True

    @classmethod
    def from_config(cls, config: Any, engine: Engine,
                    parts: tuple[dict[str, Channel], dict[str, RulePolicy], dict[str, ChannelPolicy]] | None = None,
                    **kw: Any) -> Deliverer:
        """``parts``: the config's ``delivery_parts``, when already built (the pipeline's)."""
        channels, rules, policies = parts or delivery_parts(config)
        return cls(engine, channels, DeliverySettings.from_monitor(config.monitor), rules, policies, **kw)

    def quiet_channels(self, now: datetime) -> set[str]:
        return {n for n, p in self.policies.items() if p.quiet and p.quiet.end_if_quiet(now)}

    async def run(self, limit: int | None = None, keep_connections: bool = False) -> DeliveryReport:
        """Build due digests, then send every due delivery (or ``limit`` of them); returns when
        every channel's lane is done (``run --once``, the CLI, the tests).

        Each channel has its own lane, all running at once: a mail server trickling one byte a
        second holds only its own alerts, never the webhook's. Within a lane, one delivery at a
        time (the at-least-once promise: at most the one in flight repeats after a kill).
        ``keep_connections``: each channel's HTTP connection stays open for the next run (the
        daemon's runs, seconds apart: no new TCP and TLS handshake each time) until ``aclose``.
        The report counts what the lanes this run started did (a lane already running when it
        was called, woken by it, counts in the report of the run that started it).
        """
        report = DeliveryReport()
        report.digests = await self._build_digests()
        self._wake_lanes(report, [limit], keep_connections)
        lanes = [lane.task for lane in self._lanes.values()]
        outcomes = await asyncio.gather(*lanes, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            # The cause, not its echo: once one lane's write lost the connection (the server
            # gone), every other lane's next write on it fails with PendingRollbackError,
            # whichever lane comes first in the config.
            raise next((e for e in failures if not isinstance(e, PendingRollbackError)), failures[0])
        return report

    async def wake(self, keep_connections: bool = False) -> list[asyncio.Task[None]]:
        """The daemon's delivery run: build due digests, then start the lane of every channel
        that is not busy; a busy lane looks for due deliveries once more before it ends. Returns
        the lanes it started without waiting for them (the caller awaits each: its error is
        theirs), so a channel hanging in a send (a mail server that never answers, up to its
        ``timeout``) holds neither the other channels' alerts nor their retries: each wake-up
        (new alerts, the periodic run that finds a retry due, the hold ending) gets every idle
        channel going at once, while a busy channel stays one lane, one send at a time. A
        wake-up while another builds the digests leaves the lanes to that one: it starts or
        wakes them once built, after whatever made this one due (and a burst of polls that
        alert takes no thread each, waiting for the build)."""
        if self._waking:
            return []
        self._waking = True
        try:
            await self._build_digests()
        finally:
            self._waking = False
        return self._wake_lanes(DeliveryReport(), [None], keep_connections)

    def follow(self, previous: Deliverer) -> None:
        """Take over from the deliverer of the config before a reload. It claims nothing more;
        its lanes still sending finish their delivery, and this deliverer's lane of the same
        channel starts only after (one send at a time on a channel in this process: its order,
        its rate limit)."""
        previous.stop()
        running = {**previous._before, **{name: lane.task for name, lane in previous._lanes.items()}}
        self._before.update({name: task for name, task in running.items() if not task.done()})

    def _wake_lanes(self, report: DeliveryReport, budget: list[int | None],
                    keep_connections: bool) -> list[asyncio.Task[None]]:
        """Start the lane of every channel that has none running (reporting into ``report``,
        sharing ``budget``), and one for deliveries whose channel is gone from the config (each
        is then recorded as failed with that reason); tell a running one to look again. The
        lanes started. Nothing awaited here: a wake-up never misses a lane about to end (it
        leaves ``_lanes`` in the same step as it finds nothing due)."""
        started: list[asyncio.Task[None]] = []
        if self._stopping:
            return started
        for name in (*self.channels, None):
            running = self._lanes.get(name)
            if running is not None:
                running.again = True
                continue
            after = self._before.pop(name, None)
            lane = self._lanes[name] = _Lane(name)
            lane.task = asyncio.create_task(
                self._run_lane(lane, report, budget, keep_connections, None if after is None or after.done() else after),
                name=f"deliver:{name if name is not None else '(unconfigured channels)'}")
            self._active += 1
            started.append(lane.task)
        return started

    async def _run_lane(self, lane: _Lane, report: DeliveryReport, budget: list[int | None],
                        keep_connections: bool, after: asyncio.Task[None] | None) -> None:
        """One channel's lane as a task of its own."""
        try:
            if after is not None:
                await asyncio.wait([after])  # the previous config's lane of the channel ends first
            if not self._stopping:
                await self._lane_on_books(lane, report, budget, keep_connections)
        finally:
            self._retire(lane)
            self._active -= 1
            if self._closing and not self._active:
                await self.aclose()

    async def _lane_on_books(self, lane: _Lane, report: DeliveryReport, budget: list[int | None],
                             keep_connections: bool) -> None:
        """The lane's turns, on the bookkeeping shared with the lanes running meanwhile
        (``_Books``): a turn ends when nothing is due, and another follows if a wake-up came
        during it."""
        books = self._books
        if books is None or books.error is not None:
            books = self._books = _Books(self)
        books.lanes += 1
        cause: BaseException | None = None
        try:
            conn = await books.connection()
            exclude = frozenset(self.channels) if lane.channel is None else frozenset()
            # One HTTP client per channel (kept from one run to the next if asked).
            async with reuse_connections(self._kept_clients() if keep_connections else None):
                while True:
                    lane.again = False
                    idle = await self._lane(report, budget, conn, books.ledger, channel=lane.channel, exclude=exclude)
                    if not (idle and lane.again) or self._stopping:
                        self._retire(lane)  # before anything is awaited: a later wake-up starts a new lane
                        break
        except BaseException as exc:
            if books.error is None:
                books.error = exc
            elif isinstance(exc, PendingRollbackError):
                # The echo of a sibling's write that lost the connection they share: what
                # happened is its error (the server gone), not "Can't reconnect until ...".
                cause = books.error
            if cause is None:
                raise
        finally:
            books.lanes -= 1
            if not books.lanes:
                # The last lane on it closes it: never under a lane still sending, whose accepted
                # alert could then not be recorded "sent" and would go out again when its lease
                # expired.
                if self._books is books:
                    self._books = None
                await books.close()
        if cause is not None:
            raise cause

    def _retire(self, lane: _Lane) -> None:
        if self._lanes.get(lane.channel) is lane:
            del self._lanes[lane.channel]

    async def _build_digests(self) -> int:
        """``build_digests`` on a thread (it writes, and may wait for the database like the
        lanes), one at a time: wake-ups overlap, and two builds would fold the same alerts."""
        def build() -> int:
            with self._digesting:
                return self.build_digests()
        return await asyncio.to_thread(build)

    def _kept_clients(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if self._kept is None or self._kept[0] is not loop:
            # (Clients of another loop cannot be used, nor closed, from this one; a daemon has
            # one loop, and its pipeline closes them on it.)
            self._kept = (loop, {})
        return self._kept[1]

    async def aclose(self) -> None:
        """Close the kept HTTP connections, at once, or when the last running lane ends."""
        self._closing = bool(self._active)
        if self._kept is not None and not self._active:
            await close_clients(self._kept[1])

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[Connection]:
        """The connection the lanes' claims and outcomes are written on, held while they run (no
        pool checkout, no new session per delivery). On PostgreSQL each statement commits by
        itself (autocommit), and without waiting for the WAL flush (``synchronous_commit = off``
        on this connection only). On SQLite, whose commits never wait for a flush (WAL,
        ``synchronous=NORMAL``), each delivery's bookkeeping is one transaction on it.

        Why an unflushed commit can repeat an alert but never lose one: the alert and its
        pending deliveries were created by the ingest's transaction, whose commit waited for the
        flush as every other commit does. Only the moves from there (claimed, sent, failed, held)
        go out without waiting. A crash of the server (not of this process: a commit that
        returned is in the server's memory and survives the process) can lose the last of
        those, up to three ``wal_writer_delay`` (0.6 s by default); recovery replays the WAL in
        order, so what remains is the outbox as it was a moment earlier: a delivery lost its
        "sent" goes back to "sending" or "pending" and is sent again (at-least-once, with its
        stable key), and "sent" is only ever written after the channel accepted the message.
        Per statement this costs one round trip instead of five (BEGIN, the statement, COMMIT and
        its flush): a flush alone took longer than a POST to a nearby receiver (issue 15).
        """
        if self.engine.dialect.name != "postgresql":
            with self.engine.connect() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            commit_without_flush(conn)
            try:
                yield conn
            finally:
                flush_commits_again(conn, "delivery bookkeeping")

    @contextlib.contextmanager
    def _bookkeeping(self, conn: Connection, atomic: bool = False) -> Iterator[Connection]:
        """Where a lane writes a claim and an outcome: the lanes' connection (``_ledger``): on
        PostgreSQL one statement at a time, on SQLite one transaction. ``atomic``: statements
        that must commit together (a digest's outcome and its alerts'): on PostgreSQL a
        transaction of their own. No ORM Session: its machinery cost more CPU than the
        statements of a delivery (issue 15); ``_prepare`` makes one for the queries that need it."""
        if conn.dialect.name == "postgresql":
            if atomic:
                with self.engine.begin() as own:
                    yield own
                return
            yield conn
            return
        with conn.begin():
            yield conn

    async def _lane(self, report: DeliveryReport, budget: list[int | None], conn: Connection,
                    ledger: _LedgerThread, channel: str | None = None,
                    exclude: frozenset[str] = frozenset()) -> bool:
        """Claim and send ``channel``'s due deliveries one at a time (``channel`` None: those of
        any channel but ``exclude``'s). True when it ended finding nothing due (quiet hours
        included); False when its channel failed, the budget ran out or the deliverer stops."""
        # A channel that just failed is not tried again by this lane (the next wake-up does): a
        # mail server that times out must not hold up its own backlog for every retry either.
        failing: set[str] = set()
        # The outcome of the delivery just sent (at most one), recorded in the transaction (on
        # PostgreSQL: the statement) that claims the next one: one commit per delivery. A kill in
        # between repeats at most the one just sent (its outcome and the next claim commit
        # together or not at all). ``_book`` empties it once the outcome is written.
        held: list[_Outcome] = []
        failed = False
        try:
            while not self._stopping and (budget[0] is None or budget[0] > 0):
                claimed_at = self.clock()  # (the claim's lease runs from a moment after this)
                step = await self._on_ledger(ledger, self._book, conn, report, held, frozenset(failing | exclude),
                                             channel)
                if step is None:
                    return True  # (the outcome in hand, if any, was recorded with the claim)
                d, msg = step
                if budget[0] is not None:
                    budget[0] -= 1
                if msg is None:
                    continue
                if not await self._still_ours(ledger, conn, d, claimed_at):
                    continue
                error = await self._send(d, msg)
                held.append((d, msg, error))
                if error is not None and not error.permanent:  # the channel refused it
                    failing.add(d.channel)
                    if channel is not None:
                        return False  # an outcome still in hand is recorded by ``finally``
            return False
        except BaseException:
            failed = True
            raise
        finally:
            if held:  # the last one (or the lane stops): its own transaction
                try:
                    await self._on_ledger(ledger, self._record_alone, conn, held[0], report)
                except Exception:
                    if not failed:
                        raise
                    # The lane failed writing (its connection gone with the server, say): this
                    # write fails the same way, and the lane's own error is the one to report.
                    # The delivery stays "sending" and goes out again after its lease.
                    log.warning("delivery %s: outcome not recorded after the lane failed", held[0][0].id,
                                exc_info=True)

    async def _on_ledger(self, ledger: _LedgerThread, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on the lanes' bookkeeping thread. Cancelled (a stop past its deadline), it
        still waits for ``fn`` to end: the thread cannot be stopped midway, and the lane must
        not go on (record again, close the shared connection) while it writes. A delivery it
        claimed meanwhile is handed back at once rather than after its lease."""
        fut = ledger.call(fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            while not fut.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(fut)
            step = None if fut.cancelled() or fut.exception() is not None else fut.result()
            if isinstance(step, tuple) and isinstance(step[0], Claimed) and step[1] is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(ledger.call(self._hand_back, step[0].id))
            raise

    async def _still_ours(self, ledger: _LedgerThread, conn: Connection, d: Claimed, claimed_at: datetime) -> bool:
        """Whether to send ``d`` now. A claim is sent at once (a lease ahead of it: 5 minutes by
        default). But a lane held up for over a third of the lease between its claim and the
        send (a stalled or starved process, a slow database) may have lost it: another instance
        takes a claim over once its lease ends, and the two would both send it, neither having
        died. So the claim is renewed first, a lease from now, if it is still this instance's
        (as a source's is while its poll runs); if not, it is not sent here: the instance
        holding it sends it. Seen in the scale-out test at load 23 (5 s lease): a POST 5.7 s
        after its claim, 0.3 s after another instance had taken the claim over and sent it."""
        if (self.clock() - claimed_at).total_seconds() <= self.settings.lease / 3:
            return True

        def renewed() -> bool:
            with self._bookkeeping(conn) as db:
                return renew(db, d.id, self.owner, self.clock() + timedelta(seconds=self.settings.lease))

        if await self._on_ledger(ledger, renewed):
            return True
        log.warning("delivery %s: its claim ran out before it was sent and another instance took it over; "
                    "not sent here", d.id)
        return False

    def _hand_back(self, delivery_id: int) -> None:
        """A claimed delivery back to "pending" now, not after its lease: its lane stops."""
        with session_scope(self.engine) as s:
            release(s, delivery_id, self.owner, status="pending")

    def _book(self, conn: Connection, report: DeliveryReport, held: list[_Outcome], excluded: frozenset[str],
              channel: str | None) -> tuple[Claimed, AlertMessage | None] | None:
        """A lane's bookkeeping between two sends, in one transaction on the lanes' ledger thread:
        record the outcome in ``held`` (if any), claim the next delivery and decide on it
        (``_prepare``). None: the lane ends (nothing due; its channel is in quiet hours)."""
        now = self.clock()
        outcome = held[0] if held else None
        atomic = outcome is not None and outcome[1].kind == "digest"
        with self._bookkeeping(conn, atomic) as db:
            quiet = self.quiet_channels(now)
            if channel is not None and channel in quiet:
                return None
            skip = quiet | excluded
            if outcome is not None and not atomic:
                done = outcome[0]
                ok, d = record_and_claim(db, done.id, self._outcome(done, outcome[2], report), self.owner,
                                         now, self.settings.lease, skip, channel)
                self._recorded(done, ok)
            else:
                if outcome is not None:
                    self._record(db, *outcome, report)
                d = claim(db, self.owner, now, self.settings.lease, skip, channel)
            held.clear()
            if d is None:
                return None
            return d, self._prepare(db, d, now, report)

    def _record_alone(self, conn: Connection, outcome: _Outcome, report: DeliveryReport) -> None:
        with self._bookkeeping(conn, atomic=outcome[1].kind == "digest") as db:
            self._record(db, *outcome, report)

    # -- one delivery -------------------------------------------------------------------------
    def _prepare(self, db: Connection, d: Claimed, now: datetime, report: DeliveryReport) -> AlertMessage | None:
        """Decide under the claim (on ``db``, in the claim's transaction): send now (a message),
        or hold it for a digest (None)."""
        did = d.id
        payload = parse_payload(d.alert_payload)
        article_id = payload.article_id if isinstance(payload, MatchPayload) else None
        if d.alert_kind == "match":
            rp = self.rules.get(d.alert_rule)
            hold_until: datetime | None = None
            if rp and rp.mode == "digest" and rp.digest:
                hold_until = rp.digest.next_after(aware(d.alert_created_at))
            else:
                cp = self.policies.get(d.channel)
                if cp and cp.rate and cp.digest and \
                        sent_since(db, d.channel, now - timedelta(seconds=cp.rate.window)) >= cp.rate.count:
                    hold_until = cp.digest.next_after(now)
                    log.info("delivery %s: channel %s is over its rate limit; into the digest at %s",
                             did, d.channel, hold_until.isoformat())
            if hold_until is not None:
                release(db, did, self.owner, status="digest", digest_due_at=hold_until.astimezone(UTC))
                report.held += 1
                return None
        channel = self.channels.get(d.channel)
        match = d.alert_kind == "match"
        threads = match and channel is not None and channel.threads
        # The story's other outlets not read by the claim, or the first message of the story on
        # a channel that threads (email): ORM queries, on a Session joining the claim's
        # transaction; any other message needs none (its machinery costs more than the claim).
        orm = threads or (match and d.reported_by is None and article_id is not None)
        with Session(bind=db) if orm else contextlib.nullcontext() as s:
            return AlertMessage(
                alert_id=d.alert_id, delivery_key=d.key, payload=payload,
                also_reported_by=tuple(also_reported_by(s, article_id, d.reported_by)) if match else (),
                thread_root_key=thread_root(s, d, article_id) if threads and s is not None else None)

    async def _send(self, d: Claimed, msg: AlertMessage) -> DeliveryError | None:
        """Send one claimed delivery; the error (None when the channel accepted it)."""
        assert d.id is not None
        did = d.id
        channel = self.channels.get(d.channel)
        error: DeliveryError | None = None
        if channel is None:
            error = DeliveryError(f"channel {d.channel!r} is not configured")
        else:
            deadline = float(getattr(channel, "timeout", DEFAULT_DEADLINE))
            try:
                # ``timeout`` bounds the whole delivery (connect, send, answer), not each read:
                # a server answering one byte every 2 s never trips a per-read timeout.
                async with asyncio.timeout(deadline):
                    await channel.send(msg)
            except TimeoutError:
                error = DeliveryError(f"{d.channel}: not delivered within {deadline:g} s (the channel's timeout)")
            except asyncio.CancelledError:
                # Stopping mid-send: hand the claim back now rather than after the lease (it may
                # have been accepted already: the one repeat the at-least-once promise allows).
                self._hand_back(did)
                raise
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a bug in one channel must not stop the others
                log.exception("delivery %s: unexpected error", did)
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
        return error

    def _record(self, db: Connection, d: Claimed, msg: AlertMessage, error: DeliveryError | None,
                report: DeliveryReport) -> None:
        """Record a sent delivery's outcome on ``db`` (in the caller's transaction)."""
        values = self._outcome(d, error, report)
        ok = release(db, d.id, self.owner, **values)
        if msg.kind == "digest":  # its alerts share its fate
            if values["status"] == "sent":
                db.execute(update(Delivery).where(col(Delivery.digest_id) == d.id)
                          .values(status="sent", sent_at=values["sent_at"]))
            elif values["status"] == "dead":
                db.execute(update(Delivery).where(col(Delivery.digest_id) == d.id)
                          .values(status="dead", last_error=f"digest delivery {d.id} is dead"))
        self._recorded(d, ok)

    @staticmethod
    def _recorded(d: Claimed, ok: bool) -> None:
        if not ok:
            log.warning("delivery %s: our claim expired before the outcome was recorded; "
                        "another instance took it over", d.id)

    def _outcome(self, d: Claimed, error: DeliveryError | None, report: DeliveryReport) -> dict[str, Any]:
        """The columns that record a sent delivery's outcome (``release``'s values); counted in
        ``report`` and logged."""
        now = self.clock()
        attempts = d.attempts + 1
        if error is None:
            report.sent += 1
            log.info("delivery %s sent to %s", d.id, d.channel)
            return {"status": "sent", "sent_at": now, "attempts": attempts, "last_error": None}
        age = (now - aware(d.created_at)).total_seconds()
        if error.permanent or attempts >= self.settings.max_attempts or age >= self.settings.dead_after:
            report.dead += 1
            log.error("delivery %s to %s is dead after %d attempts: %s", d.id, d.channel, attempts, error)
            return {"status": "dead", "attempts": attempts, "last_error": str(error)}
        nxt = now + timedelta(seconds=backoff(attempts, self.settings.retry_delay, error.retry_after))
        report.failed += 1
        log.warning("delivery %s to %s failed (attempt %d, next at %s): %s", d.id, d.channel,
                    attempts, nxt.strftime("%H:%M:%S"), error)
        return {"status": "failed", "attempts": attempts, "last_error": str(error), "next_attempt_at": nxt}

    # -- digests ------------------------------------------------------------------------------
    def build_digests(self) -> int:
        """Fold held deliveries whose digest is due into one digest delivery per channel."""
        now = self.clock()
        built = 0
        with session_scope(self.engine) as s:
            rows = s.exec(
                select(Delivery, Alert).join(Alert, col(Alert.id) == col(Delivery.alert_id))
                .where(col(Delivery.status) == "digest", col(Delivery.digest_due_at) <= now)
                .order_by(col(Delivery.id)).with_for_update(skip_locked=True, of=Delivery)).all()
            by_channel: dict[str, list[tuple[Delivery, Alert]]] = {}
            for d, a in rows:
                by_channel.setdefault(d.channel, []).append((d, a))
            for channel, items in by_channel.items():
                due = max(aware(d.digest_due_at) for d, _ in items if d.digest_due_at)
                key = f"digest:{channel}:{due.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}:{items[0][0].id}"
                entries = []
                for _, a in items:
                    m = parse_payload(a.payload)
                    assert isinstance(m, MatchPayload)  # only match alerts are held for a digest
                    aid = m.article_id
                    entries.append(DigestItem.model_validate({
                        **m.model_dump(exclude_unset=True),
                        "story": story_articles(s, aid)[0] if aid is not None else a.key,
                        "also_reported_by": also_reported_by(s, aid)}))
                payload = DigestPayload(channel=channel, due_at=due.isoformat(), items=tuple(entries))
                digest = Alert(key=key, match_id=None, rule=",".join(sorted({a.rule for _, a in items})),
                               kind="digest", payload=dump_payload(payload))
                s.add(digest)
                s.flush()
                assert digest.id is not None
                dd = Delivery(key=delivery_key(s, key, channel), alert_id=digest.id, channel=channel, next_attempt_at=now)
                s.add(dd)
                s.flush()
                s.execute(update(Delivery).where(col(Delivery.id).in_([d.id for d, _ in items]),
                                                 col(Delivery.status) == "digest")
                          .values(status="batched", digest_id=dd.id))
                built += 1
                log.info("digest %s for %s: %d alerts", dd.id, channel, len(items))
        return built

