"""ORM models of the PostgreSQL mirror: control, schedules and audit tables.

The tables are a read model of the SyncJob and SyncSchedule resources (the
source of truth). Each row carries the version of the resource it was written
from (`last_seq`, `generation`/`resource_version`) so that the mirror only
moves forward. Revision 0001_mirror creates exactly these tables; a test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column

# Explicit constraint names, so the hand-written migration and the models agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_NOW = text("now()")
_EMPTY_JSON = text("'{}'::jsonb")


class Base(DeclarativeBase):
    """Declarative base of the mirror tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamp() -> MappedColumn[Any]:
    """A nullable timestamptz: every moment the mirror stores is zone-aware."""
    return mapped_column(DateTime(timezone=True), nullable=True)


class SyncJobControl(Base):
    """One row per SyncJob (by Kubernetes uid): its latest mirrored state."""

    __tablename__ = "sync_job_control"
    __table_args__ = (
        Index(None, "job_type", "status"),
        Index(None, "namespace", "job_name"),
        Index(None, "status"),
        Index(None, "created_at"),  # 0003
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_uid: Mapped[str] = mapped_column(Text, unique=True)
    namespace: Mapped[str] = mapped_column(Text)
    job_name: Mapped[str] = mapped_column(Text)
    # "namespace/name", the identifier the original system's job_id became.
    job_id: Mapped[str] = mapped_column(Text)
    job_type: Mapped[str] = mapped_column(Text)
    # The SyncJob's status.phase.
    status: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    progress_percentage: Mapped[float] = mapped_column(Double, server_default=text("0"))
    started_at: Mapped[datetime | None] = _timestamp()
    paused_at: Mapped[datetime | None] = _timestamp()
    completed_at: Mapped[datetime | None] = _timestamp()
    cancelled_at: Mapped[datetime | None] = _timestamp()
    deleted_at: Mapped[datetime | None] = _timestamp()
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # `metadata` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=_EMPTY_JSON)
    # (status.mirror.seq, metadata.resourceVersion) of the snapshot this row was written
    # from; only a newer pair applies. seq orders audited transitions; the resourceVersion
    # lets status-only changes (progress) through without the operator bumping seq.
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    resource_version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class SyncJobSchedule(Base):
    """One row per SyncSchedule (by Kubernetes uid): its spec and schedule times."""

    __tablename__ = "sync_job_schedules"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    schedule_uid: Mapped[str] = mapped_column(Text, unique=True)
    namespace: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    job_type: Mapped[str] = mapped_column(Text)
    cron_expression: Mapped[str] = mapped_column(Text)
    time_zone: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    suspended: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    concurrency_policy: Mapped[str] = mapped_column(Text)
    timeout_minutes: Mapped[int | None] = mapped_column(Integer)
    retry_attempts: Mapped[int | None] = mapped_column(Integer)
    last_schedule_time: Mapped[datetime | None] = _timestamp()
    next_schedule_time: Mapped[datetime | None] = _timestamp()
    last_successful_time: Mapped[datetime | None] = _timestamp()
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=_EMPTY_JSON)
    # (generation, resource_version) of the snapshot this row came from: spec changes bump
    # the generation, status-only changes only the resourceVersion.
    generation: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    resource_version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    deleted_at: Mapped[datetime | None] = _timestamp()


class SyncJobAuditLog(Base):
    """One row per audited action or transition; written at most once per key."""

    __tablename__ = "sync_job_audit_logs"
    __table_args__ = (
        Index(None, "job_uid", "performed_at"),
        Index(None, "action"),
        Index(None, "performed_by"),
        Index(None, "performed_at"),  # 0003: an audit row's creation time
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # uid of the SyncJob (or SyncSchedule, for schedule_* actions).
    job_uid: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str] = mapped_column(Text)
    namespace: Mapped[str] = mapped_column(Text)
    job_name: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    performed_by: Mapped[str] = mapped_column(Text)
    performed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    phase: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=_EMPTY_JSON)
    # f"{uid}:{seq}": replays and out-of-order deliveries hit the unique index and do nothing.
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
