"""Group commit: the small reads and writes of many coroutines in few transactions.

A poll that got a 304 reads a few columns of one row and writes a few back; as transactions of
their own those cost more CPU than the HTTP request did (issue 15). ``GroupCommit`` queues such
items and runs whatever is queued through one function in one transaction, on its own thread,
as soon as the previous batch is done: under load the batches grow by themselves; when idle each
item runs at once, so no timer adds latency. ``submit`` returns after the transaction holding
the item committed, so a caller that goes on (releases a lease, reports the poll) never runs
ahead of its own record.

The thread holds one connection from batch to batch (no pool checkout, and on PostgreSQL no
``pool_pre_ping`` round trip, per batch: with the event loop busy, each round trip of that thread
waits for the interpreter lock); it goes back to the pool once no batch came for
``IDLE_SECONDS``, with ``aclose``, and after a batch that failed: the retries check one out
again, pinged by the pool. One the server dropped is discarded, not pooled (SQLAlchemy
invalidates a connection on a disconnect error, and ``_let_go`` one whose reset failed): a
restarted server costs a retry, not a record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from monitor.store.db import commit_without_flush, flush_commits_again

if TYPE_CHECKING:
    from sqlmodel import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
IDLE_SECONDS = 5.0  # the held connection goes back to the pool after this long without a batch


class Bound(Protocol):
    """What a ``run`` that needs no ORM takes: the batch's connection, in its transaction (an ORM
    ``Session`` is one too)."""

    def connection(self) -> Connection: ...


class _Connected:
    """``Bound`` without the ORM: ``GroupCommit(orm=False)``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def connection(self) -> Connection:
        return self._conn


class GroupCommit(Generic[T, R]):
    """Run queued items in batches of up to ``max_batch`` through ``run(session, items)``, which
    returns one result per item, in one transaction per batch.

    A batch that fails is retried item by item, so one bad item fails only its own ``submit``.
    An item whose caller was cancelled (shutdown past its deadline) still runs: ``aclose`` waits
    for the queue to empty.

    ``flush=False``: on PostgreSQL, commits return without waiting for the WAL flush
    (``synchronous_commit = off`` on the held connection only), for items whose loss in a crash
    of the database server (the last ~0.6 s of commits) only repeats or delays work: see
    ``Pipeline``.

    ``orm=False``: ``run`` is handed a ``Bound`` (only ``connection()``), not an ORM session, for
    Core statements: the group then never imports SQLModel (the poll starts, which the daemon's
    first request waits for).
    """

    def __init__(self, engine: Engine, run: Callable[[Session, list[T]], Sequence[R]], *, max_batch: int = 200,
                 name: str = "group-commit", flush: bool = True, orm: bool = True) -> None:
        self.engine = engine
        self._run: Callable[[Any, list[T]], Sequence[R]] = run
        self._orm = orm
        self.max_batch = max_batch
        self._async = not flush and engine.dialect.name == "postgresql"
        self._conn: Connection | None = None  # held by the thread from batch to batch
        self._idle: asyncio.TimerHandle | None = None  # gives the connection back (``IDLE_SECONDS``)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item``; return its result once its batch committed (or raise its error)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, done))
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name=self._name)
        return await done

    async def aclose(self) -> None:
        """Wait until everything queued is committed, give the connection back, stop the thread.

        The connection's reset (on PostgreSQL three round trips) runs on the group's thread:
        at shutdown and at every reload, the event loop goes on meanwhile (other sources'
        fetches, lease renewals). Items submitted meanwhile are committed first."""
        loop = asyncio.get_running_loop()
        while True:
            if self._task is not None and not self._task.done():
                await asyncio.shield(self._task)
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            executor = self._executor
            if executor is None:
                return
            # After any batch, and any idle let-go already queued: one thread, in order.
            await loop.run_in_executor(executor, self._let_go)
            if executor is self._executor and self._conn is None and (self._task is None or self._task.done()):
                self._executor = None
                executor.shutdown(wait=False)  # idle: the connection is back in the pool
                return

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:  # one thread: batches commit one after another, in order
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        executor = self._executor
        try:
            await self._batches(loop, executor)
        finally:
            if not self._pending:  # (a stop cancelled this: ``aclose`` lets go)
                self._idle = loop.call_later(IDLE_SECONDS, self._idle_for_long, executor)

    def _idle_for_long(self, executor: ThreadPoolExecutor) -> None:
        self._idle = None
        if executor is self._executor and (self._task is None or self._task.done()):
            executor.submit(self._let_go)  # on the thread that holds it, after any batch

    async def _batches(self, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor) -> None:
        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            try:
                results = await loop.run_in_executor(executor, self._commit, [item for item, _ in batch])
            except Exception:
                if len(batch) > 1:
                    log.info("%s: a batch of %d failed; running its items one by one", self._name, len(batch))
                for item, done in batch:
                    try:
                        alone = await loop.run_in_executor(executor, self._commit, [item])
                    except Exception as exc:
                        if not done.done():  # its caller may have been cancelled meanwhile
                            done.set_exception(exc)
                    else:
                        _resolve(done, alone[0])
            else:
                for (_, done), result in zip(batch, results, strict=True):
                    _resolve(done, result)

    def _commit(self, items: list[T]) -> Sequence[R]:
        """One batch in one transaction, on the held connection (taken now if none is held)."""
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self.engine.connect()
                if self._async:
                    commit_without_flush(conn)
                    conn.commit()
            if not self._orm:
                results = self._run(_Connected(conn), items)
                conn.commit()
                return results
            from sqlmodel import Session

            with Session(bind=conn, expire_on_commit=False) as s:
                results = self._run(s, items)
                s.commit()
            return results
        except BaseException:
            self._let_go()  # whatever failed (a lost server) does not fail the next batch too
            raise

    def _let_go(self) -> None:
        """Give the held connection back to the pool (as it came: flushing commits again)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._async:
                flush_commits_again(conn, self._name)
        finally:
            conn.close()


def _resolve(done: asyncio.Future[R], result: R) -> None:
    if not done.done():  # a caller cancelled meanwhile (a stop): its item ran all the same
        done.set_result(result)
