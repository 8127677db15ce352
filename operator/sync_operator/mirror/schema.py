"""Schema migrations driven from Python, and the start-up schema check.

The operator must not write into a database whose schema it does not know:
it either refuses to start (`check_schema`) or migrates first when started
with `--migrate` (`ensure_schema(url, migrate=True)`).

The Alembic scripts live in the repository's top-level `migrations/`
directory. They are found, in this order, at:
  1. $SYNC_MIGRATIONS_DIR (the directory holding env.py and versions/),
     for images whose layout differs from the repository's;
  2. <repo>/migrations, <repo> being three levels above this package
     (operator/sync_operator/mirror -> <repo>), as in a checkout or an
     editable install.
The container image copies `migrations/` and sets SYNC_MIGRATIONS_DIR.

These functions block (Alembic is synchronous); call them before the event
loop starts or through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from sync_operator.mirror.urls import safe, sync_url

MIGRATIONS_ENV = "SYNC_MIGRATIONS_DIR"
REPO = Path(__file__).resolve().parents[3]


class SchemaNotMigrated(RuntimeError):  # noqa: N818 - the name the operator's docs use
    """The database is not at the schema revision this operator was built for."""

    def __init__(self, url: str, current: str | None, required: str, *, known: bool = True) -> None:
        self.url = safe(url)
        self.current = current
        self.required = required
        if current is None:
            state = "has no schema revision (never migrated)"
        elif known:
            state = f"is at revision {current}"
        else:
            state = f"is at revision {current}, which this operator does not know (newer release?)"
        super().__init__(
            f"database at {self.url} {state}, operator needs {required}: "
            "run `alembic upgrade head` or start the operator with --migrate"
        )


def migrations_dir() -> Path:
    """The Alembic script directory (see the module docstring for the search order)."""
    override = os.environ.get(MIGRATIONS_ENV)
    candidates = [Path(override)] if override else [REPO / "migrations"]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"Alembic migrations not found at {', '.join(map(str, candidates))}: "
        f"set {MIGRATIONS_ENV} to the directory holding env.py and versions/"
    )


def alembic_config(url: str | None = None) -> Config:
    """A Config for `alembic.command`, independent of the current directory."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # Passed as an attribute, not an ini option, so it is never interpolated or logged.
        config.attributes["url"] = url
    return config


def head_revision() -> str:
    """The newest revision shipped with this operator."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no revisions under {migrations_dir()}")
    return head


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    if len(heads) > 1:
        raise RuntimeError(f"database at {safe(url)} has several heads: {', '.join(heads)}")
    return heads[0] if heads else None


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision` (default: this operator's head)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database down to `revision` ("base" removes every table)."""
    command.downgrade(alembic_config(url), revision)


def check_schema(url: str) -> str:
    """Return the current revision, or raise SchemaNotMigrated if it is not the head."""
    script = ScriptDirectory.from_config(alembic_config())
    required = head_revision()
    current = current_revision(url)
    if current != required:
        known = current is None or any(r.revision == current for r in script.walk_revisions())
        raise SchemaNotMigrated(url, current, required, known=known)
    return current


def ensure_schema(url: str, *, migrate: bool) -> str:
    """The start-up step: migrate if told to (`--migrate`), then insist on the head."""
    if migrate:
        upgrade(url)
    return check_schema(url)
