"""Group commit: the small reads and writes of many coroutines in few transactions.

A poll that got a 304 reads a few columns of one row and writes a few back; as transactions of
their own those cost more CPU than the HTTP request did (issue 15). ``GroupCommit`` queues such
items and runs whatever is queued through one function in one transaction, on its own thread,
as soon as the previous batch is done: under load the batches grow by themselves; when idle each
item runs at once, so no timer adds latency. ``submit`` returns after the transaction holding
the item committed, so a caller that goes on (releases a lease, reports the poll) never runs
ahead of its own record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.store.db import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Run queued items in batches of up to ``max_batch`` through ``run(session, items)``, which
    returns one result per item, in one transaction per batch.

    A batch that fails is retried item by item, so one bad item fails only its own ``submit``.
    An item whose caller was cancelled (shutdown past its deadline) still runs: ``aclose`` waits
    for the queue to empty.
    """

    def __init__(self, engine: Engine, run: Callable[[Session, list[T]], Sequence[R]], *, max_batch: int = 200,
                 name: str = "group-commit") -> None:
        self.engine = engine
        self._run = run
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item``; return its result once its batch committed (or raise its error)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name=self._name)
        return await done

    async def aclose(self) -> None:
        """Wait until everything queued is committed; then stop the thread."""
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        if self._executor is None:  # one thread: batches commit one after another, in order
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        executor = self._executor
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
        with session_scope(self.engine) as s:
            return self._run(s, items)


def _resolve(done: asyncio.Future[R], result: R) -> None:
    if not done.done():  # a caller cancelled meanwhile (a stop): its item ran all the same
        done.set_result(result)
