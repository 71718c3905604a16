"""Scale-out on real PostgreSQL: three instances share 60 feeds; one is SIGKILLed halfway.

The one long test of the ops area (about a minute): feeds keep publishing, every alert goes to a
webhook that records each POST's Idempotency-Key.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from monitor.alerts.render import stable_id
from monitor.store import create_db_engine
from monitor.store.models import METADATA
from tests.harness import rule, source, start_daemon, webhook_channel, write_config
from tests.servers import Page, Request, Site

FEEDS = 60
INTERVAL = 20.0
EVERY = 15.0  # each feed publishes an article every 15 s (4 a second in all)
RUN = 58.0  # seconds of polling observed
KILL_AT = 27.0
LEASE = 5.0  # a source's claim, renewed every LEASE / 3 while its poll runs
# Polls at once per instance: one for every feed. Under test are claims and leases, not this
# limit: on a loaded machine (polls of 30 s and more, see the poll check) the default 20 kept
# due feeds waiting for a poll of their instance to end, as it should.
MAX_POLLS = FEEDS


WORDS = ["minister", "parliament", "budget", "harvest", "railway", "election", "court", "energy", "border", "summit", "pipeline", "drought", "festival", "museum", "bank", "tariff", "reform", "hospital", "school", "bridge", "satellite", "export", "wheat", "uranium", "steppe", "delegation", "treaty", "council", "province", "mayor", "airline"]


def story(i: int, b: int) -> str:
    """A distinct article per (feed, item), the same every time it is served."""
    rnd = random.Random(i * 100_003 + b)
    words = " ".join(rnd.choice(WORDS) for _ in range(60))
    return (f"Report {i}-{b}: {words}. Officials in Astana said Kazakhstan could act as a mediator "
            f"in talks number {rnd.randint(1, 10**9)}.")


class Newsroom:
    """60 feeds that publish all the time, and a webhook; both record what they saw and when."""

    def __init__(self, site: Site):
        self.site = site
        self.t0 = time.time()
        self.polls: dict[int, list[float]] = defaultdict(list)
        self.arrivals: dict[int, list[float]] = defaultdict(list)  # the same requests, wall clock
        self.posts: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        self.stopped_publishing: float | None = None
        for i in range(FEEDS):
            site.pages[f"/feed/{i}.xml"] = functools.partial(self.serve_feed, i)
        site.pages["/hook"] = self.hook

    def serve_feed(self, i: int, req: Request) -> Page:
        return self.feed(i)

    def feed(self, i: int) -> Page:
        now = time.time()
        with self.lock:
            self.polls[i].append(time.monotonic())
            self.arrivals[i].append(now)
        last = int((now - self.t0) // EVERY)
        items = []
        first = last + 1 if self.stopped_publishing else max(0, last - 7)  # 40 s of items: more than an interval
        for b in range(first, last + 1):
            when = datetime.fromtimestamp(self.t0 + b * EVERY, UTC)
            items.append(f"<item><title>Feed {i} item {b}</title><link>{self.site.url(f'/a/{i}/{b}')}</link>"
                         f"<guid>{i}-{b}</guid><pubDate>{format_datetime(when)}</pubDate>"
                         f"<description>{story(i, b)}</description></item>")
        body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {i}</title>'
                f"<link>{self.site.base}/</link><description>x</description>{''.join(items)}</channel></rss>")
        return Page(body.encode(), "application/rss+xml")

    def hook(self, req: Request) -> Page:
        with self.lock:
            self.posts[req.headers.get("idempotency-key", "?")].append(time.monotonic())
        return Page(b'{"ok": true}', "application/json")


def record_poll_starts(pg_url: str) -> Callable[[], dict[str, list[float]]]:
    """Keep every poll start the daemons record (``source.last_polled_at``, written when a poll
    ends), by a trigger in the test's database, from now on (the starts recorded so far too).
    Returns what reads them back: each source's starts, wall-clock seconds, in order."""
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE test_poll_start (name text, at timestamptz)")
        conn.execute("CREATE FUNCTION test_poll_start() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "INSERT INTO test_poll_start VALUES (NEW.name, NEW.last_polled_at); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER test_poll_start AFTER UPDATE ON source FOR EACH ROW "
                     "WHEN (NEW.last_polled_at IS DISTINCT FROM OLD.last_polled_at) EXECUTE FUNCTION test_poll_start()")
        conn.execute("INSERT INTO test_poll_start SELECT name, last_polled_at FROM source WHERE last_polled_at IS NOT NULL")

    def starts() -> dict[str, list[float]]:
        out: dict[str, list[float]] = defaultdict(list)
        with psycopg.connect(url) as conn:
            for name, at in conn.execute("SELECT name, at FROM test_poll_start ORDER BY at"):
                out[name].append(at.timestamp())
        return out
    return starts


SourceState = tuple[float, str, float | None, str | None, float | None]  # at, source, next poll, lease owner, lease end


def record_source_states(pg_url: str) -> Callable[[], list[SourceState]]:
    """Keep every change of a source's schedule and lease the daemons commit (a claim, a
    renewal, a poll recorded, a lease given back), by a trigger in the test's database, from now
    on, with every source's state now. Returns what reads them back, in the order committed:
    (wall-clock time, source, next_poll_at, lease owner, lease_expires_at)."""
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:  # one transaction: no change between the trigger and the first states
        conn.execute("CREATE TABLE test_source_state (seq bigserial, name text, next_at timestamptz, owner text, "
                     "expires timestamptz, at timestamptz)")
        conn.execute("CREATE FUNCTION test_source_state() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "INSERT INTO test_source_state (name, next_at, owner, expires, at) "
                     "VALUES (NEW.name, NEW.next_poll_at, NEW.lease_owner, NEW.lease_expires_at, clock_timestamp()); "
                     "RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER test_source_state AFTER UPDATE ON source FOR EACH ROW "
                     "WHEN (NEW.next_poll_at IS DISTINCT FROM OLD.next_poll_at OR NEW.lease_owner IS DISTINCT FROM "
                     "OLD.lease_owner OR NEW.lease_expires_at IS DISTINCT FROM OLD.lease_expires_at) "
                     "EXECUTE FUNCTION test_source_state()")
        conn.execute("INSERT INTO test_source_state (name, next_at, owner, expires, at) "
                     "SELECT name, next_poll_at, lease_owner, lease_expires_at, clock_timestamp() FROM source")

    def states() -> list[SourceState]:
        with psycopg.connect(url) as conn:
            return [(at.timestamp(), name, next_at and next_at.timestamp(), owner, expires and expires.timestamp())
                    for at, name, next_at, owner, expires in conn.execute(
                        "SELECT at, name, next_at, owner, expires FROM test_source_state ORDER BY seq")]
    return states


def claimable_spans(states: list[SourceState], end: float) -> list[tuple[float, float]]:
    """When one source was due (``next_poll_at`` reached) and free to claim (no lease, or an
    expired one) until a claim took it (or ``end``): what the claim loops answer for. A poll in
    flight holds its lease (renewed), however long it takes: a source due meanwhile waits for it."""
    spans: list[tuple[float, float]] = []
    since: float | None = None  # claimable since, while it is
    for k, (at, _, next_at, owner, expires) in enumerate(states):
        until = states[k + 1][0] if k + 1 < len(states) else end
        free_from = max(at, next_at if next_at is not None else at, expires if owner and expires else at)
        if since is not None and free_from > at:  # no longer claimable from this change on
            spans.append((since, at))
            since = None
        if since is None and free_from < until:
            since = free_from
    if since is not None:
        spans.append((since, end))
    return spans


def record_delivery_moves(pg_url: str) -> Callable[[], list[tuple[int, str, str, str, str | None, str | None, float]]]:
    """Keep every move of a delivery the daemons commit (claimed, taken over, claimed again by
    the same instance after its lease expired, its outcome recorded), by a trigger in the test's database, from now on. Returns what reads them back:
    (id, key, status before, status after, lease owner before, after, wall-clock time), in the
    order committed (each statement of the outbox commits by itself on PostgreSQL)."""
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE test_delivery_move (seq bigserial, id bigint, key text, old_status text, "
                     "new_status text, old_owner text, new_owner text, at timestamptz)")
        conn.execute("CREATE FUNCTION test_delivery_move() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     "INSERT INTO test_delivery_move (id, key, old_status, new_status, old_owner, new_owner, at) "
                     "VALUES (NEW.id, NEW.key, OLD.status, NEW.status, OLD.lease_owner, NEW.lease_owner, "
                     "clock_timestamp()); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER test_delivery_move AFTER UPDATE ON delivery FOR EACH ROW "
                     "WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner "
                     "OR NEW.lease_expires_at IS DISTINCT FROM OLD.lease_expires_at) "
                     "EXECUTE FUNCTION test_delivery_move()")

    def moves() -> list[tuple[int, str, str, str, str | None, str | None, float]]:
        with psycopg.connect(url) as conn:
            return [(i, k, a, b, oa, ob, at.timestamp()) for i, k, a, b, oa, ob, at in conn.execute(
                "SELECT id, key, old_status, new_status, old_owner, new_owner, at FROM test_delivery_move ORDER BY seq")]
    return moves


@pytest.mark.slow
def test_three_instances_share_feeds_and_survive_a_sigkill(tmp_path: Path, site: Site, pg_url: str) -> None:
    news = Newsroom(site)
    sources = [source(f"feed-{i}", site.url(f"/feed/{i}.xml"), f"{INTERVAL:.0f}s", full_text=False)
               for i in range(FEEDS)]
    cfg = write_config(tmp_path / "config.toml", pg_url, *sources,
                       rule("kz", "Kazakhstan AND mediator", ["hook"]), webhook_channel("hook", site.url("/hook")),
                       monitor=f'claim_interval = "0.5s"\nlease = "{LEASE:.0f}s"\nmax_polls = {MAX_POLLS}\n'
                               'delivery_lease = "5s"\n'
                               'delivery_interval = "1s"\nretry_delay = "1s"\nshutdown_deadline = "15s"',
                       fetch='timeout = "5s"',
                       # leases and takeover are under test, not event stories: without them the
                       # three daemons do not each load the sentence model and embed every article,
                       # which on two shared cores delayed polls past the interval's tolerance
                       tables="[dedup]\nevents = false\n")
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(start_daemon(cfg, log=tmp_path / f"monitor{k}.log")) for k in range(3)]
        for p in procs:
            p.wait_running()
        poll_starts = record_poll_starts(pg_url)
        source_states = record_source_states(pg_url)
        delivery_moves = record_delivery_moves(pg_url)
        start, start_wall = time.monotonic(), time.time()

        time.sleep(KILL_AT)  # let the three share the work for a while
        procs[0].send_signal(signal.SIGKILL)
        killed_at, killed_wall = time.monotonic(), time.time()
        procs[0].wait()
        time.sleep(RUN - KILL_AT)
        end_wall = time.time()
        # The feeds empty from here on: the outbox can drain and stay empty (an article found
        # after the drain would be a delivery the stopping instances rightly leave pending).
        news.stopped_publishing = time.time()

        engine = create_db_engine(pg_url)
        t = METADATA.tables

        def state() -> tuple[int, int]:
            """(articles stored, deliveries not sent)."""
            with engine.connect() as conn:
                return (conn.execute(select(func.count()).select_from(t["article"])).scalar_one(),
                        conn.execute(select(func.count()).select_from(t["delivery"])
                                     .where(t["delivery"].c.status != "sent")).scalar_one())

        # Drained: nothing unsent, and nothing stored for 2 s (a poll in flight at the freeze has
        # finished). A busy machine drains slowly: waited for as long as something moves (an
        # article stored, a delivery sent); a minute without either is a stuck outbox.
        last, moved = state(), time.monotonic()
        while not (last[1] == 0 and time.monotonic() - moved >= 2):
            if time.monotonic() - moved > 60:
                with engine.connect() as conn:
                    left = conn.execute(select(t["delivery"]).where(t["delivery"].c.status != "sent").limit(5)).all()
                raise AssertionError(f"deliveries left unsent: {left}")
            time.sleep(1.0)
            now = state()
            if now != last:
                last, moved = now, time.monotonic()
        for p in procs[1:]:
            assert p.stop() == 0
        with engine.connect() as conn:
            status = {stable_id(k): st for k, st in conn.execute(select(t["delivery"].c.key, t["delivery"].c.status))}
            keys = set(status)
            articles = conn.execute(select(func.count()).select_from(t["article"])).scalar()
            leased = conn.execute(select(func.count()).select_from(t["source"])
                                  .where(t["source"].c.lease_owner.is_not(None))).scalar()
            moves = delivery_moves()
            schedules = source_states()
        engine.dispose()

    all_gaps = [b - a for i in range(FEEDS) for a, b in zip(news.polls[i], news.polls[i][1:], strict=False)]
    by_source: dict[str, list[SourceState]] = defaultdict(list)
    for st in schedules:
        by_source[st[1]].append(st)
    waits = {n: claimable_spans(by_source[n], end_wall) for n in by_source}
    longest = max((b - a for n in waits for a, b in waits[n]), default=0.0)
    print(f"polls {sum(map(len, news.polls.values()))}, gaps {min(all_gaps):.1f}..{max(all_gaps):.1f} s, "
          f"articles {articles}, posts {sum(map(len, news.posts.values()))}, keys {len(keys)}, "
          f"longest wait for a claim {longest:.1f} s")
    # Feeds the killed instance had claimed (a poll in flight), taken over by another.
    taken = {f"feed-{n}" for p in procs[1:]
             for n in re.findall(r"\(feed-(\d+)\): lease of \S+ expired; taking the source over", p.log_text())}
    # Every feed was polled about once per interval, never twice within one, whoever polled it.
    # By when each poll started, as the daemons recorded it (``last_polled_at``), not by when
    # its request arrived: on a loaded machine a request leaves seconds after its poll started,
    # more for one poll than for the next (gaps between requests of 16.4 s at load 9).
    recorded = poll_starts()
    for i in range(FEEDS):
        name = f"feed-{i}"
        starts = [x for x in recorded[name] if x <= end_wall]
        gaps = [round(b - a, 2) for a, b in zip(starts, starts[1:], strict=False)]
        # (its first request: a poll the killed instance had in flight is never recorded)
        assert news.polls[i] and news.polls[i][0] - start < INTERVAL / 2, f"feed {i} not polled at start"
        # A poll is due an interval after the last one started (or was claimed): never sooner.
        assert all(b - a >= INTERVAL - 0.001 for a, b in zip(starts, starts[1:], strict=False)), \
            f"feed {i} polled twice within an interval: {gaps}"
        # Never left unpolled: a feed due (an interval after its last claim) and free (no lease,
        # or an expired one: the killed instance's) is claimed within a lease's time, by
        # whichever instance. The claim loop runs every claim_interval, and an instance whose
        # loop stalls for a lease loses its own claims anyway (renewed every lease/3). So a feed
        # the killed instance had claimed is polled again an interval after that claim, or a
        # lease after the kill. Judged on what the daemons committed, not on gaps between poll
        # starts (an interval + 8 s failed on old and new code alike, 3 of 3 runs with three
        # copies at once at load 20): a poll holds its lease, renewed, until its articles are
        # stored, and those wait in the instance's one ingest thread behind every other poll's.
        # There polls took up to 39 s (the first polls' 180 articles); the feed is rightly not
        # polled again meanwhile.
        late = [(round(a - start_wall, 1), round(b - a, 1)) for a, b in waits.get(name, []) if b - a > LEASE]
        assert not late, f"feed {i} left unpolled while due and free: (since s, for s) {late}; " \
            f"poll starts {[round(x - start_wall, 1) for x in starts]} s"
        # And by the requests the feed received: one per recorded poll, no more. A poll's start is
        # taken before its request leaves (``Pipeline.poll``), so each request falls between its
        # own poll's recorded start and the next one's, however late load makes it; a second
        # request there is a request no recorded poll accounts for (a poll that failed before
        # recording, a feed fetched twice in one poll). This needs no slack for load, unlike gaps
        # between requests. All recorded starts bound the windows (those after the end too: a
        # request of a poll started just before it arrives after); requests before the first
        # recorded start cannot be placed. The one allowed extra: the request of the poll the
        # killed instance had in flight, never recorded, in the window spanning the kill of a
        # feed a survivor took over.
        bounds = [*recorded[name], float("inf")]
        for a, b in zip(bounds, bounds[1:], strict=False):
            got = [r for r in news.arrivals[i] if a <= r < b and r <= end_wall]
            allowed = 2 if name in taken and a < killed_wall < b else 1
            assert len(got) <= allowed, \
                f"feed {i}: {len(got)} requests for the poll recorded at +{a - start_wall:.1f}s " \
                f"(requests at {[round(r - start_wall, 1) for r in news.arrivals[i]]} s, " \
                f"polls recorded at {[round(x - start_wall, 1) for x in recorded[name]]} s)"
    assert articles and articles >= FEEDS * 3  # they kept publishing, and it was all ingested

    # Every alert delivered, and once: a repeat only of the delivery the killed instance had in
    # flight, sent without the chance to record it (at-least-once at a crash). Judged on what the
    # daemons committed, not on how long before the kill its POST came: the time from a POST to
    # the commit of its outcome has no bound on a loaded machine (usually under 0.3 s at load
    # 15-23, before and after session 9's outbox changes alike; over 2 s twice at load 20+,
    # with callgrind runs beside it, where the 2 s this test allowed failed it). The
    # killed instance claimed it and never recorded its outcome (a survivor took it over from
    # the killed instance, after the kill), and claimed nothing after it: a lane commits a
    # delivery's outcome with its next claim, so a later claim would have recorded it (the
    # one channel here: one lane that sends).
    assert set(news.posts) == keys, {k: status[k] for k in keys - set(news.posts)}
    repeats = {k: v for k, v in news.posts.items() if len(v) > 1}
    killed = f":{procs[0].pid}:"  # in the killed instance's name as a lease owner (``util.instance_id``)
    claimed = [m for m in moves if m[3] == "sending" and m[5] is not None and killed in m[5]]
    for k, v in repeats.items():
        history = [(m[2], m[3], m[4] and m[4].split(":")[1], m[5] and m[5].split(":")[1], round(m[6] - killed_wall, 2))
                   for m in moves if stable_id(m[1]) == k]
        why = f"{k}: POSTs {[round(p - killed_at, 2) for p in v]} s after the kill, moves {history} (pid, s after the kill)"
        assert len(v) == 2, why
        assert claimed and stable_id(claimed[-1][1]) == k, \
            f"{why}; not the killed instance's last claim ({claimed[-1][0] if claimed else None})"
        after = moves[moves.index(claimed[-1]) + 1:]
        takeover = next((m for m in after if m[0] == claimed[-1][0]), None)
        assert takeover and takeover[3] == "sending" and takeover[4] == claimed[-1][5] and killed not in str(takeover[5]) \
            and takeover[6] >= killed_wall, f"{why}; not taken over from the killed instance after the kill"
        # The first POST is the killed instance's: it reached the receiver before anyone else held
        # the delivery (the takeover, a lease after the kill), the second after. Judged on that
        # order, not on the receiver's clock against the kill: the receiver's thread may record a
        # POST sent just before the kill a little after it (0.09 s at load 4 in a CI run).
        first, second = (p - killed_at + killed_wall for p in v)
        assert first < takeover[6] <= second, f"{why}; the first POST was not before the takeover, or the second not after"
    assert leased == 0  # the survivors gave their leases back on SIGTERM
    # (the killed instance's leases expired and were taken over)
    assert any(p.log_has("taking the source over") for p in procs[1:]) or \
        all(news.polls[i] for i in range(FEEDS))
