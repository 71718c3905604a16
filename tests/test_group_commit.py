"""Group commit (``monitor.store.batch``): many coroutines' small writes (the poll records and
starts) in few transactions, on a connection held from batch to batch. One bad item fails only
itself, a lost connection costs a retry, not a record; on PostgreSQL the poll records commit
without waiting for the WAL flush, and nothing else does."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, insert, select, text
from sqlmodel import Session

from monitor.store import Source
from monitor.store.batch import GroupCommit
from tests.deliver_helpers import store

_SOURCES = Source.__table__


def _names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(_SOURCES.c.name)).scalars())


def test_a_bad_item_fails_alone_and_the_next_batches_commit(database_url: str) -> None:
    """Items queued together commit together; when one of them fails the batch, the others are
    committed one by one and only the bad one's caller gets the error; later items still commit
    (the failed batch's connection was let go, not reused)."""
    engine = store(database_url)
    batches: list[list[str]] = []

    def write(s: Session, names: list[str]) -> Sequence[str]:
        batches.append(names)
        for name in names:
            if name == "bad":
                s.connection().execute(text("SELECT no_such_column FROM source"))
            s.connection().execute(insert(_SOURCES).values(name=name, url=f"http://127.0.0.1/{name}.xml"))
        return names

    async def main() -> list[object]:
        group: GroupCommit[str, str] = GroupCommit(engine, write, name="test")
        first = await asyncio.gather(*(group.submit(n) for n in ("a", "b", "bad", "c")), return_exceptions=True)
        later = await asyncio.gather(group.submit("d"), group.submit("e"))
        await group.aclose()
        return [*first, *later]

    results = asyncio.run(main())
    assert results[:2] == ["a", "b"] and isinstance(results[2], Exception) and results[3:] == ["c", "d", "e"]
    assert batches[0] == ["a", "b", "bad", "c"]  # one transaction for what was queued together
    assert _names(engine) == ["a", "b", "c", "d", "e"]
    engine.dispose()



def test_a_connection_lost_between_batches_costs_a_retry_not_a_record(pg_url: str) -> None:
    """PostgreSQL: the connection the batches are written on dies between two of them (a server
    restart, an administrator ending it). The next batch fails on it, its items are written
    again on a fresh connection, and every caller gets its result."""
    engine = store(pg_url)
    pids: list[int] = []

    def write(s: Session, names: list[str]) -> Sequence[str]:
        pids.append(int(s.connection().execute(text("SELECT pg_backend_pid()")).scalar_one()))
        for name in names:
            s.connection().execute(insert(_SOURCES).values(name=name, url=f"http://127.0.0.1/{name}.xml"))
        return names

    async def main() -> list[str]:
        group: GroupCommit[str, str] = GroupCommit(engine, write, name="test")
        assert await group.submit("a") == "a"
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
        got = list(await asyncio.gather(group.submit("b"), group.submit("c")))
        await group.aclose()
        return got

    assert asyncio.run(main()) == ["b", "c"]
    assert _names(engine) == ["a", "b", "c"]
    assert len(pids) == 3 and pids[1] != pids[0] and pids[2] == pids[1]  # the fresh one, then held
    engine.dispose()


def test_only_the_poll_records_commit_without_waiting_for_the_flush(pg_url: str) -> None:
    """PostgreSQL: a group that may lose its last commits in a server crash (``flush=False``: the
    poll records) commits with ``synchronous_commit = off``; every other connection of the
    engine, meanwhile and after, still waits for the flush (the ingest's articles, alerts and
    deliveries above all)."""
    engine = store(pg_url)
    seen: list[tuple[str, str]] = []

    def setting(conn: Connection) -> str:
        return str(conn.execute(text("SHOW synchronous_commit")).scalar_one())

    def write(s: Session, names: list[str]) -> Sequence[None]:
        with engine.connect() as other:
            seen.append((setting(s.connection()), setting(other)))
        return [None] * len(names)

    async def main() -> None:
        records: GroupCommit[str, None] = GroupCommit(engine, write, name="records", flush=False)
        durable: GroupCommit[str, None] = GroupCommit(engine, write, name="durable")
        await asyncio.gather(records.submit("a"), records.submit("b"))
        await durable.submit("c")
        await records.submit("d")  # on the connection held since "a"
        await records.aclose()
        await durable.aclose()

    asyncio.run(main())
    assert seen == [("off", "on"), ("on", "on"), ("off", "on")]
    with engine.connect() as a, engine.connect() as b, engine.connect() as c:  # every pooled one
        assert {setting(a), setting(b), setting(c)} == {"on"}
    engine.dispose()


def test_closing_gives_the_connection_back_without_holding_up_the_event_loop(pg_url: str) -> None:
    """PostgreSQL, poll records (``flush=False``): ``aclose`` (at shutdown, and at every config
    reload) resets the held connection (rollback, RESET synchronous_commit, commit: database
    round trips) on the group's thread, while the event loop goes on with other sources'
    fetches and lease renewals; the connection is back in the pool, flushing its commits again,
    when ``aclose`` returns."""
    import threading

    engine = store(pg_url)
    loop_ran = threading.Event()  # set by a coroutine while the connection is being given back
    during: list[bool] = []

    def write(s: Session, names: list[str]) -> Sequence[None]:
        return [None] * len(names)

    async def main() -> None:
        group: GroupCommit[str, None] = GroupCommit(engine, write, name="records", flush=False)
        await group.submit("a")
        let_go = group._let_go

        def slow_let_go() -> None:  # the reset's round trips, waiting for the loop to move meanwhile
            during.append(loop_ran.wait(5))
            let_go()

        group._let_go = slow_let_go  # type: ignore[method-assign]

        async def other_work() -> None:
            await asyncio.sleep(0.05)
            loop_ran.set()

        other = asyncio.ensure_future(other_work())
        await group.aclose()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        await other

    asyncio.run(main())
    assert during == [True]
    with engine.connect() as conn:  # the only pooled connection: the group's, reset
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    engine.dispose()
