"""The operator's PostgreSQL mirror of SyncJobs, SyncSchedules and their audit log.

The resources are the source of truth; this package keeps an idempotent copy
that may fall behind during an outage and catches up without losing or
duplicating a row. Modules: models (tables), schema (migrations and the
start-up check), snapshots (resource -> row), store (idempotent writes), writer
(background retries), link (the reconcilers' side: notify, record deletions, drain
the status outbox that `audit.outbox` defines).
"""

from sync_operator.mirror.schema import (
    SchemaNotMigrated,
    check_schema,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from sync_operator.mirror.snapshots import JobSnapshot, ScheduleSnapshot
from sync_operator.mirror.store import MirrorStore
from sync_operator.mirror.writer import MirrorKey, MirrorWriter, WriterStats

__all__ = [
    "JobSnapshot",
    "MirrorKey",
    "MirrorStore",
    "MirrorWriter",
    "ScheduleSnapshot",
    "SchemaNotMigrated",
    "WriterStats",
    "check_schema",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "upgrade",
]
