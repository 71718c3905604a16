"""Group commit: the small writes of many coroutines in few transactions.

A poll that got a 304 writes a few columns of one row; as its own transaction that costs more
CPU than the HTTP request did (issue 15). ``GroupCommit`` queues such writes and commits
whatever is queued in one transaction, on its own thread, as soon as the previous commit is done:
under load the batches grow by themselves; when idle each write is committed at once, so no
timer adds latency. ``write`` returns after the transaction holding the item committed, so a
caller that goes on (releases a lease, reports the poll) never runs ahead of its own record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.store.db import session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Commit queued items in batches of up to ``max_batch`` through ``write(session, items)``.

    A batch that fails is retried item by item, so one bad item fails only its own ``write``
    call. An item whose caller was cancelled (shutdown past its deadline) is still written:
    ``aclose`` waits for the queue to empty.
    """

    def __init__(self, engine: Engine, write: Callable[[Session, list[T]], None], *, max_batch: int = 200,
                 name: str = "group-commit") -> None:
        self.engine = engine
        self._write = write
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    async def write(self, item: T) -> None:
        """Queue ``item``; return once it is committed (raise what its transaction raised)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="group-commit")
        await done

    async def aclose(self) -> None:
        """Wait until everything queued is committed; then stop the writer thread."""
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
                await loop.run_in_executor(executor, self._commit, [item for item, _ in batch])
            except Exception:
                if len(batch) > 1:
                    log.info("a batch of %d writes failed; writing them one by one", len(batch))
                for item, done in batch:
                    try:
                        await loop.run_in_executor(executor, self._commit, [item])
                    except Exception as exc:
                        _settle(done, exc)
                    else:
                        _settle(done, None)
            else:
                for _, done in batch:
                    _settle(done, None)

    def _commit(self, items: list[T]) -> None:
        with session_scope(self.engine) as s:
            self._write(s, items)


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():  # its caller was cancelled; the item is written all the same
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
