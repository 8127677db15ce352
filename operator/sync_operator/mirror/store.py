"""Idempotent writes of snapshots and audit entries into the PostgreSQL mirror.

Every write can be repeated, reordered or replayed after an outage without
changing the result: audit rows are keyed by `idempotency_key` (ON CONFLICT
DO NOTHING) and mirror rows are upserted only when the snapshot is newer than
the stored one (ON CONFLICT ... DO UPDATE ... WHERE stored < incoming): jobs
by (status.mirror.seq, resourceVersion), schedules by (generation,
resourceVersion); resourceVersion is read as the integer etcd revision it is
on every API server, and only ever breaks ties of the primary version. The
audit rows and the mirror row of one resource go in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from sync_operator.audit.outbox import SYSTEM_ACTOR, AuditEntry
from sync_operator.mirror.models import SyncJobAuditLog, SyncJobControl, SyncJobSchedule
from sync_operator.mirror.snapshots import JobSnapshot, ScheduleSnapshot
from sync_operator.mirror.urls import async_url, safe

DELETE_ACTION = "delete"
# sync_job_control.status of a job deleted before it finished (Pending, Running, ...):
# the row is final, and must not go on saying the job runs.
DELETED_STATUS = "Deleted"
_FINISHED = ("Succeeded", "Failed", "Cancelled")

# Columns an upsert may overwrite; created_at and deleted_at are never taken back.
_JOB_COLUMNS = (
    "namespace", "job_name", "job_id", "job_type", "status", "priority",
    "progress_percentage", "started_at", "paused_at", "completed_at", "cancelled_at",
    "error_message", "attempts", "metadata", "last_seq", "resource_version",
)
_SCHEDULE_COLUMNS = (
    "namespace", "name", "job_type", "cron_expression", "time_zone", "priority",
    "max_concurrency", "suspended", "concurrency_policy", "timeout_minutes",
    "retry_attempts", "last_schedule_time", "next_schedule_time", "last_successful_time",
    "metadata", "generation", "resource_version",
)


def is_connection_error(exc: BaseException) -> bool:
    """True when the database (not this row) is the problem: retry everything later."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, OperationalError | InterfaceError | PoolTimeoutError | OSError | TimeoutError
    )


def _storable(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL; a runner's error output may.
    Replacing it keeps one odd character from blocking a job's mirror forever."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def _job_row(snapshot: JobSnapshot) -> dict[str, Any]:
    return {
        "job_uid": snapshot.uid,
        "namespace": snapshot.namespace,
        "job_name": snapshot.name,
        "job_id": snapshot.job_id,
        "job_type": snapshot.job_type,
        "status": snapshot.phase,
        "priority": snapshot.priority,
        "progress_percentage": snapshot.progress_percentage,
        "started_at": snapshot.started_at,
        "paused_at": snapshot.paused_at,
        "completed_at": snapshot.completed_at,
        "cancelled_at": snapshot.cancelled_at,
        "error_message": snapshot.error_message,
        "attempts": snapshot.attempts,
        "metadata": snapshot.metadata,
        "last_seq": snapshot.seq,
        "resource_version": snapshot.resource_version,
    }


def _schedule_row(snapshot: ScheduleSnapshot) -> dict[str, Any]:
    return {
        "schedule_uid": snapshot.uid,
        "namespace": snapshot.namespace,
        "name": snapshot.name,
        "job_type": snapshot.job_type,
        "cron_expression": snapshot.cron_expression,
        "time_zone": snapshot.time_zone,
        "priority": snapshot.priority,
        "max_concurrency": snapshot.max_concurrency,
        "suspended": snapshot.suspended,
        "concurrency_policy": snapshot.concurrency_policy,
        "timeout_minutes": snapshot.timeout_minutes,
        "retry_attempts": snapshot.retry_attempts,
        "last_schedule_time": snapshot.last_schedule_time,
        "next_schedule_time": snapshot.next_schedule_time,
        "last_successful_time": snapshot.last_successful_time,
        "metadata": snapshot.metadata,
        "generation": snapshot.generation,
        "resource_version": snapshot.resource_version,
    }


def _deletion_entry(at: datetime, performed_by: str,
                    phase: str | None, details: Mapping[str, Any] | None) -> AuditEntry:
    # One deletion per uid: the key ignores seq so finalizer retries write one row.
    return AuditEntry(seq=1, action=DELETE_ACTION, performed_by=performed_by, at=at,
                      phase=phase, details=dict(details or {}), key="deleted")


class MirrorStore:
    """The operator's handle on the mirror tables (asyncpg, pooled, pre-pinged)."""

    def __init__(self, url: str, *, pool_size: int = 5, connect_timeout: float = 5.0,
                 command_timeout: float = 30.0) -> None:
        self.url = safe(url)
        self._engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            # A connection broken by a PostgreSQL restart is replaced at checkout.
            pool_pre_ping=True,
            connect_args={"timeout": connect_timeout, "command_timeout": command_timeout},
        )

    async def ping(self) -> None:
        """Raise unless the database answers (for readiness and the writer's backoff)."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def reset(self) -> None:
        """Drop every pooled connection, e.g. after PostgreSQL restarted."""
        await self._engine.dispose()

    async def close(self) -> None:
        await self._engine.dispose()

    async def apply_job(self, snapshot: JobSnapshot,
                        entries: Sequence[AuditEntry] = ()) -> int:
        """Store the entries and, if (seq, resourceVersion) is newer, the control row;
        return snapshot.seq.

        Every entry with seq <= the returned value is stored once the call
        returns, so the caller may drain them from status.mirror.pending.
        """
        async with self._engine.begin() as conn:
            await self._insert_audit(conn, snapshot.uid, snapshot.job_id, snapshot.namespace,
                                     snapshot.name, entries)
            await self._upsert_job(conn, snapshot)
        return snapshot.seq

    async def mark_job_deleted(
        self, snapshot: JobSnapshot, entries: Sequence[AuditEntry] = (), *,
        deleted_at: datetime, performed_by: str = SYSTEM_ACTOR,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a SyncJob's deletion (for its finalizer): entries, a `delete` audit
        row and deleted_at, in one transaction; repeating it changes nothing.

        A job that had finished keeps its outcome as status; one deleted before it
        finished gets status Deleted and completed_at = deleted_at, so the final row
        says the job was deleted, not that it still runs. Once deleted_at is set, no
        later snapshot (a late queued body) changes the row."""
        deletion = _deletion_entry(deleted_at, performed_by, snapshot.phase, details)
        async with self._engine.begin() as conn:
            await self._insert_audit(conn, snapshot.uid, snapshot.job_id, snapshot.namespace,
                                     snapshot.name, [*entries, deletion])
            await self._upsert_job(conn, snapshot)
            await conn.execute(
                update(SyncJobControl)
                .where(SyncJobControl.job_uid == snapshot.uid,
                       SyncJobControl.deleted_at.is_(None))
                .values(
                    deleted_at=deleted_at, updated_at=func.now(),
                    status=case((SyncJobControl.status.in_(_FINISHED), SyncJobControl.status),
                                else_=DELETED_STATUS),
                    completed_at=func.coalesce(SyncJobControl.completed_at, deleted_at))
            )
        return snapshot.seq

    async def apply_schedule(self, snapshot: ScheduleSnapshot,
                             entries: Sequence[AuditEntry] = ()) -> int:
        """Store the entries and, if (generation, resourceVersion) is newer, the
        schedule row; return snapshot.seq (see apply_job)."""
        async with self._engine.begin() as conn:
            await self._insert_audit(conn, snapshot.uid, snapshot.job_id, snapshot.namespace,
                                     snapshot.name, entries)
            await self._upsert_schedule(conn, snapshot)
        return snapshot.seq

    async def mark_schedule_deleted(
        self, snapshot: ScheduleSnapshot, entries: Sequence[AuditEntry] = (), *,
        deleted_at: datetime, performed_by: str = SYSTEM_ACTOR,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a SyncSchedule's deletion, like mark_job_deleted."""
        deletion = _deletion_entry(deleted_at, performed_by, None, details)
        async with self._engine.begin() as conn:
            await self._insert_audit(conn, snapshot.uid, snapshot.job_id, snapshot.namespace,
                                     snapshot.name, [*entries, deletion])
            await self._upsert_schedule(conn, snapshot)
            await conn.execute(
                update(SyncJobSchedule)
                .where(SyncJobSchedule.schedule_uid == snapshot.uid,
                       SyncJobSchedule.deleted_at.is_(None))
                .values(deleted_at=deleted_at, updated_at=func.now())
            )
        return snapshot.seq

    @staticmethod
    async def _insert_audit(conn: AsyncConnection, uid: str, job_id: str, namespace: str,
                            name: str, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        rows = [_storable({
            "job_uid": uid,
            "job_id": job_id,
            "namespace": namespace,
            "job_name": name,
            "action": entry.action,
            "performed_by": entry.performed_by,
            "performed_at": entry.at,
            "phase": entry.phase,
            "metadata": entry.details,
            "idempotency_key": entry.idempotency_key(uid),
        }) for entry in entries]  # in the caller's (seq) order, so ids follow it
        stmt = pg_insert(SyncJobAuditLog).on_conflict_do_nothing(
            index_elements=[SyncJobAuditLog.idempotency_key]
        )
        await conn.execute(stmt, rows)

    @staticmethod
    async def _upsert_job(conn: AsyncConnection, snapshot: JobSnapshot) -> None:
        stmt = pg_insert(SyncJobControl).values(_storable(_job_row(snapshot)))
        stmt = stmt.on_conflict_do_update(
            index_elements=[SyncJobControl.job_uid],
            set_={**{c: stmt.excluded[c] for c in _JOB_COLUMNS}, "updated_at": func.now()},
            where=(tuple_(SyncJobControl.last_seq, SyncJobControl.resource_version)
                   < tuple_(stmt.excluded["last_seq"], stmt.excluded["resource_version"]))
            & SyncJobControl.deleted_at.is_(None),  # a deleted job's row is final
        )
        await conn.execute(stmt)

    @staticmethod
    async def _upsert_schedule(conn: AsyncConnection, snapshot: ScheduleSnapshot) -> None:
        stmt = pg_insert(SyncJobSchedule).values(_storable(_schedule_row(snapshot)))
        stmt = stmt.on_conflict_do_update(
            index_elements=[SyncJobSchedule.schedule_uid],
            set_={**{c: stmt.excluded[c] for c in _SCHEDULE_COLUMNS}, "updated_at": func.now()},
            where=tuple_(SyncJobSchedule.generation, SyncJobSchedule.resource_version)
            < tuple_(stmt.excluded["generation"], stmt.excluded["resource_version"]),
        )
        await conn.execute(stmt)
