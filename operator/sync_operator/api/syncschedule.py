"""The SyncSchedule kind: a cron rule that creates SyncJobs, as CronJob creates Jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from sync_operator.api.common import (
    API_VERSION,
    CONDITIONS_LIST_MAP,
    ApiModel,
    Condition,
    JobType,
    cel,
)
from sync_operator.api.syncjob import MAX_TIMEOUT_MINUTES, MirrorStatus

# Five cron fields, or one of the @-macros CronJob accepts; seconds fields are not supported.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+(\s+\S+){4})$"
)


class ConcurrencyPolicy(StrEnum):
    """What a tick does while an earlier job of the schedule is still active."""

    ALLOW = "Allow"  # start another one
    FORBID = "Forbid"  # skip this tick
    REPLACE = "Replace"  # cancel the active one, start a new one


class JobTemplate(ApiModel):
    """The part of a SyncJob spec a schedule fills in for each job it creates."""

    params: dict[str, Any] = Field(
        default_factory=dict, description="spec.params of each created SyncJob.",
        json_schema_extra={"default": {}, "x-kubernetes-preserve-unknown-fields": True},
    )
    dedup_key: str | None = Field(
        default=None, min_length=1, max_length=253,
        description="spec.dedupKey of each created SyncJob.",
    )


class SyncScheduleSpec(ApiModel):
    """When to create SyncJobs of one type, and how they may overlap."""

    job_type: JobType = Field(description="The sync task each created job runs.")
    schedule: str = Field(
        min_length=1, max_length=128, pattern=CRON_PATTERN,
        description="Cron expression (5 fields, or @hourly, @daily, ...).",
        json_schema_extra={"x-kubernetes-validations": [
            cel("!self.contains('TZ=')", "use spec.timeZone instead of TZ= in spec.schedule"),
        ]},
    )
    time_zone: str = Field(
        default="UTC", min_length=1, max_length=64,
        description="IANA time zone the schedule is read in, e.g. Europe/London.",
    )
    suspend: bool = Field(default=False, description="Stop creating jobs (active ones go on).")
    priority: int = Field(default=5, ge=1, le=10, description="spec.priority of created jobs.")
    max_concurrency: int = Field(
        default=1, ge=1, le=100,
        description="At most this many of the schedule's jobs are active at once.",
    )
    timeout_minutes: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_MINUTES,
        description="spec.timeoutMinutes of created jobs.",
    )
    retry_attempts: int = Field(
        default=3, ge=0, le=10, description="spec.retryAttempts of created jobs.",
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID,
        description="Allow, Forbid (skip the tick) or Replace (cancel the active job).",
    )
    starting_deadline_seconds: int | None = Field(
        default=None, ge=0,
        description="A tick missed by more than this (operator down) is skipped.",
    )
    successful_jobs_history_limit: int = Field(
        default=3, ge=0, le=100, description="Succeeded jobs to keep.",
    )
    failed_jobs_history_limit: int = Field(
        default=1, ge=0, le=100, description="Failed or cancelled jobs to keep.",
    )
    job_template: JobTemplate = Field(
        default_factory=JobTemplate, description="What each created SyncJob gets.",
        json_schema_extra={"default": {}},
    )


class ActiveJobRef(ApiModel):
    """A SyncJob of this schedule that has not finished yet."""

    name: str = Field(description="SyncJob name.")
    uid: str | None = Field(default=None, description="SyncJob uid.")


class SyncScheduleStatus(ApiModel):
    """What the schedule did last and will do next."""

    last_schedule_time: datetime | None = Field(default=None, description="Last tick acted on.")
    next_schedule_time: datetime | None = Field(default=None, description="Next tick.")
    last_successful_time: datetime | None = Field(
        default=None, description="When a job of this schedule last succeeded.",
    )
    active: list[ActiveJobRef] | None = Field(default=None, description="Unfinished jobs.")
    active_count: int | None = Field(
        default=None, ge=0, description="len(active), for the printer column.",
    )
    conditions: list[Condition] | None = Field(
        default=None, description="Observations, one per type.",
        json_schema_extra=CONDITIONS_LIST_MAP,
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation last acted on.",
    )
    actions_seen: int | None = Field(
        default=None, ge=0,
        description="Highest user action number already moved into the audit outbox.")
    mirror: MirrorStatus | None = Field(default=None, description="PostgreSQL outbox.")


class SyncSchedule(ApiModel):
    """A whole SyncSchedule object, for reading bodies the API server returns."""

    api_version: str = API_VERSION
    kind: Literal["SyncSchedule"] = "SyncSchedule"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: SyncScheduleSpec
    status: SyncScheduleStatus = Field(default_factory=SyncScheduleStatus)
