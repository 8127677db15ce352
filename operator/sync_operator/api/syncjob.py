"""The SyncJob kind: one run of one sync task, controlled through its spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from sync_operator.api.common import (
    API_VERSION,
    CONDITIONS_LIST_MAP,
    ApiModel,
    Condition,
    JobType,
    Phase,
    cel,
    immutable_if_set,
)

MAX_TIMEOUT_MINUTES = 7 * 24 * 60

# Rules on the whole spec (they compare optional fields, so need has() on both sides).
SPEC_RULES: list[Any] = [
    cel(
        "!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
        "spec.cancel cannot be unset once a SyncJob is cancelled",
        reason="FieldValueForbidden", field_path=".cancel",
    ),
    immutable_if_set("dedupKey", "spec.dedupKey"),
    immutable_if_set("scheduleRef", "spec.scheduleRef"),
]


class SyncJobSpec(ApiModel):
    """What to sync and how the owner wants it run (pause, cancel, priority)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": SPEC_RULES})

    job_type: JobType = Field(
        description="The sync task to run.",
        json_schema_extra={"x-kubernetes-validations": [
            cel("self == oldSelf", "spec.jobType is immutable", reason="FieldValueForbidden"),
        ]},
    )
    priority: int = Field(
        default=5, ge=1, le=10,
        description="Queue priority: 1 is the most urgent, 10 the least. May change while "
                    "queued; the queue re-orders.",
    )
    paused: bool = Field(
        default=False,
        description="Hold the job: a queued job is not started; a running job stops at its "
                    "next checkpoint and releases its pod. Set back to false to resume.",
    )
    cancel: bool = Field(
        default=False,
        description="Cancel the job. One-way: once true it cannot be set back to false.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Task parameters, passed to the runner as JSON. Immutable.",
        json_schema_extra={
            "default": {},
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-validations": [
                cel("self == oldSelf", "spec.params is immutable", reason="FieldValueForbidden"),
            ],
        },
    )
    dedup_key: str | None = Field(
        default=None, min_length=1, max_length=253,
        description="Jobs with the same key never run twice at once: a newcomer ends as a "
                    "duplicate of the active one. Immutable.",
    )
    timeout_minutes: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_MINUTES,
        description="Running-time budget in minutes (paused time does not count; a resume "
                    "does not renew it). Unset means no limit.",
    )
    retry_attempts: int = Field(
        default=3, ge=0, le=10,
        description="Pod retries after a retryable failure (the Job's backoffLimit).",
    )
    schedule_ref: str | None = Field(
        default=None, min_length=1, max_length=253,
        description="The SyncSchedule that created this job, if any. Immutable.",
    )


class ProgressStatus(ApiModel):
    """The runner's last reported progress, relayed from Redis."""

    percent: int | None = Field(default=None, ge=0, le=100, description="Percent done.")
    done: int | None = Field(default=None, ge=0, description="Units done.")
    total: int | None = Field(default=None, ge=0, description="Units in all, once known.")
    unit: str | None = Field(default=None, max_length=64, description="What a unit is.")
    message: str | None = Field(default=None, max_length=1024, description="What it is doing.")
    eta_seconds: int | None = Field(default=None, ge=0, description="Estimated seconds left.")
    updated_at: datetime | None = Field(default=None, description="When the runner reported.")


class CheckpointSummary(ApiModel):
    """Where a resumed pod will continue from (the checkpoint itself lives in Redis)."""

    saved_at: datetime | None = Field(default=None, description="When it was saved.")
    done: int | None = Field(default=None, ge=0, description="Units done at that point.")


class AuditEntry(ApiModel):
    """One audit row waiting in the outbox until the PostgreSQL mirror has written it."""

    seq: int = Field(ge=0, description="Per-object sequence number; the mirror's idempotency "
                                       "key together with the object's uid.")
    action: str = Field(min_length=1, max_length=64, description="What happened, e.g. paused.")
    performed_by: str | None = Field(default=None, max_length=512, description="Who did it.")
    at: datetime | None = Field(default=None, description="When it happened.")
    phase: Phase | None = Field(default=None, description="The phase right after it.")
    details: dict[str, Any] | None = Field(
        default=None, description="Free-form details of the action.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class DroppedEntries(ApiModel):
    """Entries the outbox had to drop when it overflowed (counted, never silent)."""

    count: int = Field(default=0, ge=0, description="How many entries were dropped.")
    last_seq: int | None = Field(default=None, ge=0, description="Newest dropped seq.")
    at: datetime | None = Field(default=None, description="When the last one was dropped.")


class MirrorStatus(ApiModel):
    """The outbox of the PostgreSQL mirror: entries stay here until written there."""

    seq: int = Field(default=0, ge=0, description="Last sequence number handed out.")
    pending: list[AuditEntry] = Field(
        default_factory=list, description="Entries not yet written to PostgreSQL.",
    )
    dropped: DroppedEntries | None = Field(default=None, description="Overflow, if any.")


class ObservedSpec(ApiModel):
    """spec.paused/cancel/priority as the operator last saw them."""

    paused: bool = Field(default=False, description="spec.paused.")
    cancel: bool = Field(default=False, description="spec.cancel.")
    priority: int = Field(default=5, ge=1, le=10, description="spec.priority.")


class ControlRequest(ApiModel):
    """The control flags the operator last asked the runner for (mirrored into Redis).

    Kept in status so a restarted operator knows which acknowledgement it waits for,
    and can re-publish the flags if Redis lost them.
    """

    paused: bool = Field(default=False, description="Pause requested.")
    cancel: bool = Field(default=False, description="Cancel requested.")
    generation: int = Field(default=0, ge=0, description="Grows with every request.")
    requested_at: datetime | None = Field(default=None, description="When it was asked.")


class SyncJobStatus(ApiModel):
    """What the operator observed; the source of truth for the job's state."""

    phase: Phase | None = Field(default=None, description="Where the job is in its life.")
    conditions: list[Condition] | None = Field(
        default=None, description="Observations, one per type.",
        json_schema_extra=CONDITIONS_LIST_MAP,
    )
    progress: ProgressStatus | None = Field(default=None, description="Last progress.")
    checkpoint: CheckpointSummary | None = Field(default=None, description="Last checkpoint.")
    started_at: datetime | None = Field(default=None, description="First start.")
    paused_at: datetime | None = Field(default=None, description="Last pause.")
    completed_at: datetime | None = Field(default=None, description="End (any outcome).")
    cancelled_at: datetime | None = Field(default=None, description="When cancel took effect.")
    attempts: int | None = Field(default=None, ge=0, description="Pods started so far.")
    job_ref: str | None = Field(default=None, description="Name of the batch/v1 Job.")
    error: str | None = Field(default=None, max_length=32768, description="Last error.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation last acted on.",
    )
    duplicate_of: str | None = Field(
        default=None, description="Name of the active job with the same dedupKey.",
    )
    run_seconds: float | None = Field(
        default=None, ge=0,
        description="Running time consumed so far; a resumed Job gets only the rest of "
                    "timeoutMinutes.",
    )
    mirror: MirrorStatus | None = Field(default=None, description="PostgreSQL outbox.")
    control: ControlRequest | None = Field(
        default=None, description="Control flags last requested of the runner.")
    observed_spec: ObservedSpec | None = Field(
        default=None, description="The control fields as last reconciled; a change the "
                                  "webhook did not attribute is audited as by 'unknown'.")
    actions_seen: int | None = Field(
        default=None, ge=0,
        description="Highest user action number (annotation sync.jobcontrol.io/actions) "
                    "already moved into the audit outbox.")
    run_started_at: datetime | None = Field(
        default=None, description="When the current run (since the last start or resume) began.")
    warnings: int | None = Field(
        default=None, ge=0, description="Items skipped with a warning by the runner.")
    result: dict[str, Any] | None = Field(
        default=None, description="The runner's summary of a finished run.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class SyncJob(ApiModel):
    """A whole SyncJob object, for reading bodies the API server returns."""

    api_version: str = API_VERSION
    kind: Literal["SyncJob"] = "SyncJob"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SyncJobSpec
    status: SyncJobStatus = Field(default_factory=SyncJobStatus)
