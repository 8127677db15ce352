"""The operator's PostgreSQL mirror of SyncJobs, SyncSchedules and their audit log.

The resources are the source of truth; this package keeps an idempotent copy
that may fall behind during an outage and catches up without losing or
duplicating a row. Modules: models (tables), schema (migrations and the
start-up check), outbox (pending audit entries in status.mirror), snapshots
(resource -> row), store (idempotent writes), writer (background retries).
"""

from sync_operator.mirror.outbox import (
    MAX_PENDING,
    AuditEntry,
    append_entry,
    bump_seq,
    drained,
    dropped_count,
    mirror_seq,
    pending_entries,
)
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
    "MAX_PENDING",
    "AuditEntry",
    "JobSnapshot",
    "MirrorKey",
    "MirrorStore",
    "MirrorWriter",
    "ScheduleSnapshot",
    "SchemaNotMigrated",
    "WriterStats",
    "append_entry",
    "bump_seq",
    "check_schema",
    "current_revision",
    "downgrade",
    "drained",
    "dropped_count",
    "ensure_schema",
    "head_revision",
    "mirror_seq",
    "pending_entries",
    "upgrade",
]
