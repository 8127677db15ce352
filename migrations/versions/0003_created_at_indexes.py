"""Indexes on when rows were created: the original design's created_at indexes.

Revision ID: 0003_created_at_indexes
Revises: 0002_content
Create Date: 2026-03-01

The original system indexed its control and audit tables by creation time, for
"what happened since ..." reports. sync_job_control has a created_at column;
an audit row is created when its action is performed, so sync_job_audit_logs'
creation time is performed_at (0001 indexes it only after job_uid, which does
not serve a time range over all jobs). The downgrade drops both indexes and
nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_created_at_indexes"
down_revision: str | Sequence[str] | None = "0002_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTROL_INDEX = "ix_sync_job_control_created_at"
AUDIT_INDEX = "ix_sync_job_audit_logs_performed_at"


def upgrade() -> None:
    op.create_index(CONTROL_INDEX, "sync_job_control", ["created_at"])
    op.create_index(AUDIT_INDEX, "sync_job_audit_logs", ["performed_at"])


def downgrade() -> None:
    op.drop_index(AUDIT_INDEX, table_name="sync_job_audit_logs")
    op.drop_index(CONTROL_INDEX, table_name="sync_job_control")
