"""Alembic environment for the sync-operator schema, online and offline.

The URL comes, in this order, from the caller's Config (the operator's
`--migrate`, see sync_operator.mirror.schema), `-x url=...`, or the
SYNC_DATABASE_URL environment variable; it is never stored in alembic.ini.
Online runs hold a PostgreSQL advisory lock so that operator replicas started
together with `--migrate` migrate once, one after the other.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL

from sync_operator.mirror.models import Base
from sync_operator.mirror.urls import sync_url
from sync_runner.content.models import ContentBase

# Any constant works; it only has to be the same for every migrator of this schema.
MIGRATION_LOCK_ID = 0x53594E43  # "SYNC"

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Both sets of tables live in this database: the operator's mirror (0001) and the
# runner's content tables (0002), so autogenerate compares against both.
target_metadata = [Base.metadata, ContentBase.metadata]


def database_url() -> URL:
    """The URL to migrate, in the psycopg spelling Alembic's blocking engine needs."""
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("SYNC_DATABASE_URL")
    )
    if not url:
        raise SystemExit(
            "no database URL: set SYNC_DATABASE_URL or pass `alembic -x url=postgresql://...`"
        )
    return sync_url(url)


def run_migrations_offline() -> None:
    """Render the SQL to stdout (`--sql`) without connecting."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate a live database inside one transaction, under the advisory lock."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=target_metadata, compare_type=True
            )
            with context.begin_transaction():
                # Released at commit; a second migrator then sees the new version and skips.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
