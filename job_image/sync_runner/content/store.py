"""The fenced, idempotent upsert of content rows into PostgreSQL.

Idempotent: `INSERT ... ON CONFLICT (natural key) DO UPDATE ... WHERE <some data
column IS DISTINCT FROM the new value>`, so a row that did not change is not written
(its fence_token and synced_at stay), and `RETURNING (xmax = 0)` tells inserts from
updates; rows sent but not returned were unchanged.

Fenced: each batch runs in a transaction that first raises the resource's row in
sync_fences to this lease's token, only if that token is not older than the one
recorded. The row lock serialises concurrent writers of a resource, and a stale
holder (whose lease expired and was taken by a newer one) finds a higher token and
gets StaleFenceError: its batch is rolled back, nothing of it lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, inspect, literal_column, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import ReturningInsert

from sync_runner.content.models import BOOKKEEPING, ContentTable, SyncFence


class StaleFenceError(RuntimeError):
    """A newer lease holder has written this resource; this holder's writes are refused."""


@dataclass(frozen=True)
class Fence:
    """The lease a write is made under: resource, fencing token, holder description."""

    resource: str
    token: int
    holder: str


@dataclass(frozen=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(self.inserted + other.inserted, self.updated + other.updated,
                            self.unchanged + other.unchanged)


def async_database_url(url: str) -> str:
    """Any PostgreSQL URL spelling, as the asyncpg URL SQLAlchemy's async engine needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _dedupe(model: type[ContentTable], rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per natural key (the last wins): a statement may not touch a row twice."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        by_key[tuple(row[k] for k in model.UPSERT_KEY)] = dict(row)
    return list(by_key.values())


class ContentStore:
    """Writes content rows for one task run; `close()` (or `async with`) when done."""

    def __init__(self, database_url: str) -> None:
        self.url = safe_url(database_url)
        self.engine: AsyncEngine = create_async_engine(
            async_database_url(database_url), pool_size=2, max_overflow=2, pool_pre_ping=True)

    async def __aenter__(self) -> ContentStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.engine.dispose()

    async def missing_tables(self, names: Iterable[str]) -> list[str]:
        """Which of `names` the database lacks (it was not migrated to 0002_content)."""
        async with self.engine.connect() as conn:
            present = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        return [name for name in names if name not in present]

    async def upsert(self, model: type[ContentTable], rows: Sequence[Mapping[str, Any]],
                     fence: Fence) -> UpsertResult:
        """Write `rows` (dicts of column values) under `fence`, in one transaction."""
        unique = _dedupe(model, rows)
        async with self.engine.begin() as conn:
            await self._claim(conn, fence)
            if not unique:
                return UpsertResult()
            # One cached statement run over the rows: SQLAlchemy batches it into
            # multi-row VALUES ("insertmanyvalues") without compiling per row.
            returned = await conn.execute(_upsert_statement(model),
                                          [{**row, "fence_token": fence.token} for row in unique])
            flags = [bool(flag) for flag in returned.scalars()]
        inserted = sum(flags)
        return UpsertResult(inserted, len(flags) - inserted, len(unique) - len(flags))

    @staticmethod
    async def _claim(conn: AsyncConnection, fence: Fence) -> None:
        insert = pg_insert(SyncFence).values(resource=fence.resource, token=fence.token,
                                             holder=fence.holder)
        claim = insert.on_conflict_do_update(
            index_elements=[SyncFence.resource],
            set_={"token": insert.excluded.token, "holder": insert.excluded.holder,
                  "updated_at": literal_column("now()")},
            where=SyncFence.token <= insert.excluded.token,
        ).returning(SyncFence.token)
        if (await conn.execute(claim)).first() is None:
            current = (await conn.execute(
                SyncFence.__table__.select().where(SyncFence.resource == fence.resource)
            )).mappings().first()
            newer = f"token {current['token']} ({current['holder']})" if current else "?"
            raise StaleFenceError(
                f"{fence.resource}: fencing token {fence.token} is stale, {newer} has "
                "written since; this holder's lease was lost, its writes are refused")


def _upsert_statement(model: type[ContentTable]) -> ReturningInsert[tuple[bool]]:
    """INSERT .. ON CONFLICT (key) DO UPDATE .. WHERE a data column changed, RETURNING
    whether each written row was inserted (xmax = 0) rather than updated."""
    table = model.__table__
    data = [c.name for c in table.columns
            if c.name not in BOOKKEEPING and c.name not in model.UPSERT_KEY]
    insert = pg_insert(model)
    upsert = insert.on_conflict_do_update(
        index_elements=list(model.UPSERT_KEY),
        set_={**{name: insert.excluded[name] for name in data},
              "fence_token": insert.excluded.fence_token,
              "synced_at": literal_column("now()")},
        where=or_(*(table.c[name].is_distinct_from(insert.excluded[name]) for name in data)),
    )
    return upsert.returning(literal_column("(xmax = 0)", Boolean()).label("inserted"))
