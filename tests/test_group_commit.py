"""Group commit (``monitor.store.batch``): many coroutines' small writes (the poll records and
starts) in few transactions, and one bad item fails only itself. Both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import Engine, insert, select, text
from sqlmodel import Session

from monitor.store import Source
from monitor.store.batch import GroupCommit
from tests.deliver_helpers import store

_SOURCES = Source.__table__  # type: ignore[attr-defined]


def _names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(_SOURCES.c.name)).scalars())


def test_a_bad_item_fails_alone_and_the_next_batches_commit(database_url: str) -> None:
    """Items queued together commit together; when one of them fails the batch, the others are
    committed one by one and only the bad one's caller gets the error; later items still commit
    (the failed transaction was rolled back, not reused)."""
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

