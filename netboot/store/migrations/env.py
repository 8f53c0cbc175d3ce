"""Alembic's entry point: run the revisions on the connection :mod:`netboot.store.migrate` hands over.

That module opens the connection, takes the database's migration lock and owns the transaction, so a
failed upgrade leaves the database as it was (DDL is transactional on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from alembic import context

from netboot.store.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("netboot's migrations run through netboot.store.migrate (`netboot db upgrade`)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters a table by copying it; autogenerate then writes revisions that do so
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
