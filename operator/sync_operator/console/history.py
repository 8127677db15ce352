"""History, audit and analytics from the PostgreSQL mirror, filtered and paged.

The mirror is a read model of every SyncJob the operator has seen (finished and deleted
ones included, which the API server no longer holds), so history lives here and not in
the watch. Each query is scoped to the namespaces the caller may read (the console
checks that first); users never get database credentials.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from sync_operator.mirror.models import SyncJobAuditLog, SyncJobControl
from sync_operator.mirror.urls import async_url

MAX_PAGE = 500
FINISHED = ("Succeeded", "Failed", "Cancelled")


class Page(BaseModel):
    """limit/offset paging (the console's tables page by number)."""

    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0)


class HistoryFilter(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_type: str | None = None
    phase: str | None = None
    search: str | None = Field(default=None, description="part of the job's name")
    since: datetime | None = None
    until: datetime | None = None


class AuditFilter(BaseModel):
    model_config = ConfigDict(frozen=True)

    uid: str | None = Field(default=None, description="one job's story (the job view)")
    action: str | None = None
    user: str | None = None
    search: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class HistoryRow(BaseModel):
    name: str
    namespace: str
    uid: str
    job_type: str
    phase: str
    priority: int
    progress: float
    attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    deleted_at: datetime | None
    error: str | None


class AuditRow(BaseModel):
    name: str
    namespace: str
    uid: str
    action: str
    user: str
    at: datetime
    phase: str | None


Bucket = Literal["minute", "hour", "day"]


class ThroughputPoint(BaseModel):
    """Runs of one type that finished in one time bucket, by outcome."""

    bucket: datetime
    job_type: str
    succeeded: int
    failed: int
    cancelled: int


class TimelineRun(BaseModel):
    """One recent run, for the timeline: when it started and ended (or runs still)."""

    name: str
    job_type: str
    phase: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class TypeStats(BaseModel):
    job_type: str
    finished: int
    succeeded: int
    success_rate: float | None
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _narrowed(query: Any, *, equal: dict[Any, Any], name: Any, search: str | None,
              at: Any, since: datetime | None, until: datetime | None) -> Any:
    """The query, narrowed by the filters that are set: equal columns, a name search,
    and a time range on `at`."""
    for column, value in equal.items():
        if value:
            query = query.where(column == value)
    if search:
        query = query.where(name.ilike(_like(search), escape="\\"))
    if since:
        query = query.where(at >= since)
    if until:
        query = query.where(at < until)
    return query


class History:
    """Queries over the mirror (asyncpg; a small pool per console replica)."""

    def __init__(self, database_url: str) -> None:
        self._engine: AsyncEngine = create_async_engine(async_url(database_url),
                                                        pool_size=5, max_overflow=5)

    async def close(self) -> None:
        await self._engine.dispose()

    async def _all(self, query: Executable) -> list[Any]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def jobs(self, namespace: str, where: HistoryFilter, page: Page
                   ) -> list[HistoryRow]:
        c = SyncJobControl
        query = _narrowed(select(c).where(c.namespace == namespace),
                          equal={c.job_type: where.job_type, c.status: where.phase},
                          name=c.job_name, search=where.search, at=c.created_at,
                          since=where.since, until=where.until)
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(page.limit).offset(
            page.offset)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [HistoryRow(
            name=r["job_name"], namespace=r["namespace"], uid=r["job_uid"],
            job_type=r["job_type"], phase=r["status"], priority=r["priority"],
            progress=r["progress_percentage"], attempts=r["attempts"],
            created_at=r["created_at"], started_at=r["started_at"],
            completed_at=r["completed_at"], deleted_at=r["deleted_at"],
            error=r["error_message"]) for r in rows]

    async def audit(self, namespace: str, where: AuditFilter, page: Page) -> list[AuditRow]:
        a = SyncJobAuditLog
        query = select(a.job_name, a.namespace, a.job_uid, a.action, a.performed_by,
                       a.performed_at, a.phase).where(a.namespace == namespace)
        query = _narrowed(query, equal={a.job_uid: where.uid, a.action: where.action,
                                        a.performed_by: where.user},
                          name=a.job_name, search=where.search, at=a.performed_at,
                          since=where.since, until=where.until)
        query = query.order_by(a.performed_at.desc(), a.id.desc()).limit(page.limit).offset(
            page.offset)
        return [AuditRow(name=r[0], namespace=r[1], uid=r[2], action=r[3], user=r[4], at=r[5],
                         phase=r[6]) for r in await self._all(query)]

    async def stats(self, namespace: str, since: datetime | None = None) -> list[TypeStats]:
        """Per type: finished runs, success rate, duration p50/p95 (started -> completed)."""
        c = SyncJobControl
        seconds = func.extract("epoch", c.completed_at - c.started_at)
        query = (select(
            c.job_type, func.count(), func.count().filter(c.status == "Succeeded"),
            func.percentile_cont(0.5).within_group(seconds),
            func.percentile_cont(0.95).within_group(seconds))
            .where(c.namespace == namespace, c.status.in_(FINISHED))
            .group_by(c.job_type).order_by(c.job_type))
        if since:
            query = query.where(c.created_at >= since)
        return [TypeStats(job_type=r[0], finished=r[1], succeeded=r[2],
                          success_rate=r[2] / r[1] if r[1] else None,
                          duration_p50_seconds=None if r[3] is None else float(r[3]),
                          duration_p95_seconds=None if r[4] is None else float(r[4]))
                for r in await self._all(query)]

    async def throughput(self, namespace: str, since: datetime, bucket: Bucket = "hour"
                         ) -> list[ThroughputPoint]:
        """Finished runs per `bucket` and type since `since`, oldest first (empty buckets
        are left out: the chart draws them as zero)."""
        c = SyncJobControl
        start = func.date_trunc(bucket, c.completed_at).label("bucket")
        query = (select(start, c.job_type,
                        func.count().filter(c.status == "Succeeded"),
                        func.count().filter(c.status == "Failed"),
                        func.count().filter(c.status == "Cancelled"))
                 .where(c.namespace == namespace, c.status.in_(FINISHED),
                        c.completed_at >= since)
                 .group_by(start, c.job_type).order_by(start, c.job_type))
        return [ThroughputPoint(bucket=r[0], job_type=r[1], succeeded=r[2], failed=r[3],
                                cancelled=r[4]) for r in await self._all(query)]

    async def timeline(self, namespace: str, limit: int = 50) -> list[TimelineRun]:
        """The most recently created runs, newest first."""
        c = SyncJobControl
        query = (select(c.job_name, c.job_type, c.status, c.created_at, c.started_at,
                        c.completed_at)
                 .where(c.namespace == namespace)
                 .order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [TimelineRun(name=r[0], job_type=r[1], phase=r[2], created_at=r[3],
                            started_at=r[4], completed_at=r[5]) for r in await self._all(query)]
