"""Storage: SQLModel tables, engine creation and Alembic migrations (SQLite or PostgreSQL)."""

from monitor.store.db import (
           DatabaseNotWritable,
           SchemaOutdated,
           check_schema,
           create_db_engine,
           session_scope,
           upgrade,
)
from monitor.store.models import Alert, Article, Delivery, Match, Source

__all__ = ["Alert", "Article", "DatabaseNotWritable", "Delivery", "Match", "SchemaOutdated", "Source", "check_schema", "create_db_engine",
           "session_scope", "upgrade"]
