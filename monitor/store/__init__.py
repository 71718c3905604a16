"""Storage: SQLModel tables, engine creation and Alembic migrations (SQLite or PostgreSQL).

The tables' classes (``monitor.store.models``: SQLModel, the ORM, pydantic) are imported on
first use of one of their names here: the daemon's way to its first poll imports this package
for the engine and the claim loop, which need none of them (``monitor.store.source_table``).
"""

from typing import TYPE_CHECKING

from monitor.store.db import (
           DatabaseNotWritable,
           SchemaOutdated,
           check_schema,
           create_db_engine,
           session_scope,
           upgrade,
)
from monitor.util import lazy_exports

if TYPE_CHECKING:
    from monitor.store.models import Alert, Article, Delivery, Match, Source

__all__ = ["Alert", "Article", "DatabaseNotWritable", "Delivery", "Match", "SchemaOutdated", "Source", "check_schema", "create_db_engine",
           "session_scope", "upgrade"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(("Alert", "Article", "Delivery", "Match", "Source"),
                                                   "monitor.store.models"))
