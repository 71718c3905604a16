"""Poll outcomes written in batches (``Pipeline._write_polls``) leave every source exactly as
recording each poll on its own does: validators kept or replaced, schedules, failures, the broken
and recovered notices, a moved feed, a source polled twice in one batch. Both backends."""

from __future__ import annotations

import random
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, select, update
from sqlmodel import col

from monitor import util
from monitor.config import Config, FetchSettings, MonitorSettings, SourceConfig
from monitor.config.schema import ChannelConfig
from monitor.fetch.state import PollOutcome, PollState
from monitor.pipeline import Pipeline, PollRecord
from monitor.store import Alert, Source, create_db_engine, session_scope, upgrade
from monitor.util import aware

NOW = datetime.now(UTC).replace(microsecond=0)  # both sides poll at the same times
NAMES = ("kept", "broken", "fresh", "failing", "twice", "hinted", "moved", "more")


def _config(url: str) -> Config:
    sources = tuple(SourceConfig(name=n, url=f"http://127.0.0.1/{n}.xml", interval=300.0, full_text=False)
                    for n in NAMES)
    return Config(path=Path(tempfile.gettempdir()) / "config.toml",
                  monitor=MonitorSettings(database=url, source_errors_to="ops"),
                  fetch=FetchSettings(broken_after=2), sources=sources, rules=(),
                  channels=(ChannelConfig(name="ops", type="webhook", options={"url": "http://127.0.0.1/hook"}),))


def _store(url: str) -> tuple[Pipeline, Engine, dict[str, int]]:
    engine = create_db_engine(url)
    upgrade(engine)
    p = Pipeline(_config(url), engine)
    p.sync_sources()
    t = Source.__table__
    long_ago = NOW - timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(update(t).values(etag='"old"', last_modified="Mon, 01 Sep 2025 00:00:00 GMT",
                                      last_success_at=long_ago, last_polled_at=long_ago))
        conn.execute(update(t).where(t.c.name == "broken").values(consecutive_failures=3, broken_since=long_ago,
                                                                  last_error="HTTP 500"))
        ids = {name: sid for name, sid in conn.execute(select(t.c.name, t.c.id))}
    return p, engine, ids


def _records(p: Pipeline, ids: dict[str, int]) -> list[PollRecord]:
    sc = {s.name: s for s in p.config.sources}

    def rec(name: str, outcome: PollOutcome, later: float = 0.0) -> PollRecord:
        return PollRecord(ids[name], sc[name], NOW + timedelta(seconds=later), outcome)

    return [
        rec("kept", PollOutcome(status=304)),  # no validators in the 304: the stored ones stay
        rec("broken", PollOutcome(status=304, etag='"new"')),  # recovers: a notice
        rec("fresh", PollOutcome(status=200, etag=None, last_modified="Tue, 02 Sep 2025 00:00:00 GMT")),
        rec("failing", PollOutcome(status=500, error="HTTP 500")),
        rec("twice", PollOutcome(status=503, error="HTTP 503", headers=httpx.Headers({"retry-after": "900"}))),
        rec("twice", PollOutcome(status=304), later=1.0),
        rec("hinted", PollOutcome(status=304, etag='"v2"', headers=httpx.Headers({"cache-control": "max-age=3600"}))),
        rec("moved", PollOutcome(status=200, etag='"m"', new_url="http://127.0.0.1/new.xml", new_url_reason="301")),
        rec("more", PollOutcome(status=200, etag='"x"', more=True)),
    ]


def _state(engine: Engine) -> tuple[dict[str, tuple[Any, ...]], list[str]]:
    t = Source.__table__
    with engine.connect() as conn:
        # as aware UTC times: the reference is SQLite, which reads them back naive
        rows = {r[0]: tuple(aware(v) if isinstance(v, datetime) else v for v in r[1:]) for r in conn.execute(
            select(t.c.name, *(t.c[c] for c in PollState.columns() if c != "id")))}
    with session_scope(engine) as s:
        keys = sorted(str(k) for k in s.connection().execute(select(col(Alert.key))).scalars())
    return rows, keys


def test_a_batch_of_poll_records_writes_what_one_at_a_time_writes(database_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the same jitter of the failures' backoff on both sides
    monkeypatch.setattr(util, "random", SimpleNamespace(Random=lambda: random.Random(7)))
    batched, engine, ids = _store(database_url)
    one_by_one, reference, ref_ids = _store(f"sqlite:///{tmp_path / 'reference.db'}")
    records = _records(batched, ids)
    with session_scope(engine) as s:
        batched._write_polls(s, records)
    for r in _records(one_by_one, ref_ids):
        with session_scope(reference) as s:
            one_by_one._apply_polls(s, [r])
    (got, notices), (want, want_notices) = _state(engine), _state(reference)
    cols = [c for c in PollState.columns() if c != "id"]
    for name in NAMES:
        assert dict(zip(cols, got[name], strict=True)) == dict(zip(cols, want[name], strict=True)), name
    assert [k.split(":")[1] for k in notices] == ["source-recovered"]
    assert [k.split(":")[1] for k in want_notices] == ["source-recovered"]
    # What a user sees of it: validators kept or replaced as the server said, the schedule.
    kept, hinted = dict(zip(cols, got["kept"], strict=True)), dict(zip(cols, got["hinted"], strict=True))
    assert kept["etag"] == '"old"' and kept["last_modified"] == "Mon, 01 Sep 2025 00:00:00 GMT"
    assert hinted["etag"] == '"v2"'
    assert dict(zip(cols, got["fresh"], strict=True))["etag"] is None
    assert dict(zip(cols, got["broken"], strict=True))["broken_since"] is None
    assert dict(zip(cols, got["moved"], strict=True))["url"] == "http://127.0.0.1/new.xml"
    engine.dispose()
    reference.dispose()


def test_a_batch_of_poll_starts_asks_only_the_rules_its_polls_read(database_url: str) -> None:
    """The start read of forced polls (``run --once --all``, the poll bench) names each source
    once: the timer's rule, which names every source again in IN lists, is asked only for polls
    that read it. A batch mixing both still decides each poll by its own rule."""
    from sqlalchemy import event

    p, engine, ids = _store(database_url)
    t = Source.__table__
    with engine.begin() as conn:  # every source polled just now: due only when forced
        conn.execute(update(t).values(next_poll_at=NOW + timedelta(seconds=200), last_polled_at=NOW))
    sc = {s.name: s for s in p.config.sources}
    bound: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            bound.append(len(parameters))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope(engine) as s:
            forced = p._read_starts(s, [(sc[n], True, NOW) for n in NAMES])
        with session_scope(engine) as s:
            mixed = p._read_starts(s, [(sc["kept"], True, NOW), (sc["fresh"], False, NOW)])
    finally:
        event.remove(engine, "before_cursor_execute", count)
        p.deliverer.engine.dispose()
        engine.dispose()
    # forced, except the failing one: its backoff holds even then
    assert [start.due for start in forced if start is not None] == [n != "broken" for n in NAMES]
    assert bound[0] < 2 * len(NAMES), bound  # the names once (and the rule's few values)
    assert [(start.id, start.due) for start in mixed if start is not None] == [(ids["kept"], True), (ids["fresh"], False)]


def test_syncing_the_sources_writes_only_what_the_config_changed(database_url: str) -> None:
    """``sync_sources`` (Core statements since issue 15, before the daemon's first poll) inserts a
    new source as the ORM did and writes only the columns a config edit changes, as the ORM
    wrote a changed row: a changed URL resets the polling state, a changed interval re-plans
    the next poll, and nothing else of the row (validators, a lease) is written back."""
    p, engine, ids = _store(database_url)
    p.sync_sources()  # the intervals the rows were planned with are recorded now
    t = Source.__table__
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.name == "hinted").values(
            lease_owner="other-instance", next_poll_at=NOW - timedelta(hours=2) + timedelta(seconds=300)))
    edited = [SourceConfig(name="moved", url="http://127.0.0.1/elsewhere.xml", interval=300.0, full_text=False),
              SourceConfig(name="hinted", url="http://127.0.0.1/hinted.xml", interval=900.0, full_text=False),
              SourceConfig(name="kept", url="http://127.0.0.1/kept.xml", interval=300.0, full_text=False),
              SourceConfig(name="added", url="http://127.0.0.1/added.xml", interval=60.0, full_text=False)]
    config = _config(database_url)
    config = Config(path=config.path, monitor=config.monitor, fetch=config.fetch, sources=tuple(edited), rules=(),
                    channels=config.channels)
    written: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
            written.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        Pipeline(config, engine).sync_sources()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    cols = ("url", "config_url", "kind", "etag", "consecutive_failures", "next_poll_at", "last_polled_at",
            "poll_interval", "lease_owner")
    with engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(select(t.c.name, *(t.c[c] for c in cols)))}
    p.deliverer.engine.dispose()
    engine.dispose()
    moved, hinted, kept, added = rows["moved"], rows["hinted"], rows["kept"], rows["added"]
    assert (moved.url, moved.config_url, moved.etag, moved.next_poll_at) == (
        "http://127.0.0.1/elsewhere.xml", "http://127.0.0.1/elsewhere.xml", None, None)
    assert hinted.poll_interval == 900.0 and hinted.etag == '"old"' and hinted.lease_owner == "other-instance"
    assert aware(hinted.next_poll_at) == aware(hinted.last_polled_at) + timedelta(seconds=900)
    assert (kept.etag, kept.poll_interval) == ('"old"', 300.0)
    assert (added.url, added.config_url, added.kind, added.consecutive_failures, added.poll_interval) == (
        "http://127.0.0.1/added.xml", "http://127.0.0.1/added.xml", "feed", 0, None)
    updates = sorted(w.split(" SET ", 1)[1].split(" WHERE ", 1)[0] for w in written if w.startswith("UPDATE"))
    # the re-planned source: its schedule only; the moved one: its address and validators only
    assert [sorted(re.findall(r"(\w+)=", u)) for u in updates] == [
        ["next_poll_at", "poll_interval"], ["config_url", "etag", "last_modified", "url"]], written
    assert [w for w in written if w.startswith("INSERT")] and len(written) == 3, written
