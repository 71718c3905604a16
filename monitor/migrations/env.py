"""Alembic environment: always run with a connection handed over by monitor.store.db.upgrade."""

from alembic import context

from monitor.store.models import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
