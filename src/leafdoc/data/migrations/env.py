"""Alembic environment: leafdoc passes the connection in `config.attributes`."""

from alembic import context

from leafdoc.data.catalog import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
