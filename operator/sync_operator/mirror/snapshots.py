"""What the mirror stores of a SyncJob or SyncSchedule, read from its body.

The snapshot is the resource at one moment, flattened into the columns of its
mirror row plus the version that orders it (status.mirror.seq for jobs;
generation and resourceVersion for schedules). Building it from the plain
body dict keeps the mirror independent of how the operator talks to the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sync_operator.audit.outbox import mirror_seq

DEFAULT_PRIORITY = 5


def _section(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name)
    return value if isinstance(value, Mapping) else {}


def _time(value: Any) -> Any:
    """Empty strings mean "not set" in hand-written statuses."""
    return value or None


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _error_message(error: Any) -> str | None:
    """status.error may be a plain message or an object with one."""
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("reason")
        return str(message) if message else None
    return str(error) if error else None


def _resource_version(meta: Mapping[str, Any]) -> int:
    """resourceVersion as an integer (an etcd revision on every real API server)."""
    try:
        return int(meta.get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class JobSnapshot(BaseModel):
    """A SyncJob as its sync_job_control row, versioned by (status.mirror.seq, resourceVersion)."""

    model_config = ConfigDict(frozen=True)

    uid: str = Field(min_length=1)
    namespace: str
    name: str
    job_type: str
    phase: str = "Pending"
    priority: int = DEFAULT_PRIORITY
    progress_percentage: float = 0.0
    started_at: AwareDatetime | None = None
    paused_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    error_message: str | None = None
    attempts: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)
    seq: int = Field(default=0, ge=0)
    resource_version: int = Field(default=0, ge=0)

    @property
    def job_id(self) -> str:
        """ "namespace/name", the original system's job identifier."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Build from a SyncJob object as the API returns it."""
        meta, spec, status = (_section(body, k) for k in ("metadata", "spec", "status"))
        progress = _section(status, "progress")
        return cls.model_validate({
            "uid": meta.get("uid"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "job_type": spec.get("jobType"),
            "phase": status.get("phase") or "Pending",
            "priority": spec.get("priority", DEFAULT_PRIORITY),
            "progress_percentage": progress.get("percent") or 0.0,
            "started_at": _time(status.get("startedAt")),
            "paused_at": _time(status.get("pausedAt")),
            "completed_at": _time(status.get("completedAt")),
            "cancelled_at": _time(status.get("cancelledAt")),
            "error_message": _error_message(status.get("error")),
            "attempts": status.get("attempts") or 0,
            "metadata": _present({
                "paused": spec.get("paused"),
                "cancel": spec.get("cancel"),
                "dedupKey": spec.get("dedupKey"),
                "scheduleRef": spec.get("scheduleRef"),
                "timeoutMinutes": spec.get("timeoutMinutes"),
                "retryAttempts": spec.get("retryAttempts"),
                "jobRef": status.get("jobRef"),
                "duplicateOf": status.get("duplicateOf"),
                "progress": _present({k: progress.get(k) for k in ("done", "total", "unit")})
                or None,
            }),
            "seq": mirror_seq(_section(status, "mirror")),
            "resource_version": _resource_version(meta),
        })


class ScheduleSnapshot(BaseModel):
    """A SyncSchedule as its sync_job_schedules row, versioned by (generation, resourceVersion)."""

    model_config = ConfigDict(frozen=True)

    uid: str = Field(min_length=1)
    namespace: str
    name: str
    job_type: str
    cron_expression: str
    time_zone: str | None = None
    priority: int = DEFAULT_PRIORITY
    max_concurrency: int | None = None
    suspended: bool = False
    concurrency_policy: str = "Allow"
    timeout_minutes: int | None = None
    retry_attempts: int | None = None
    last_schedule_time: AwareDatetime | None = None
    next_schedule_time: AwareDatetime | None = None
    last_successful_time: AwareDatetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    generation: int = Field(default=0, ge=0)
    resource_version: int = Field(default=0, ge=0)
    # status.mirror.seq: which of the schedule's pending audit entries this snapshot carries.
    seq: int = Field(default=0, ge=0)

    @property
    def job_id(self) -> str:
        """ "namespace/name", as audit rows identify the resource."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Build from a SyncSchedule object as the API returns it."""
        meta, spec, status = (_section(body, k) for k in ("metadata", "spec", "status"))
        active = status.get("active") or []
        return cls.model_validate({
            "uid": meta.get("uid"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "job_type": spec.get("jobType"),
            "cron_expression": spec.get("schedule"),
            "time_zone": spec.get("timeZone") or None,
            "priority": spec.get("priority", DEFAULT_PRIORITY),
            "max_concurrency": spec.get("maxConcurrency"),
            "suspended": bool(spec.get("suspend", False)),
            "concurrency_policy": spec.get("concurrencyPolicy") or "Allow",
            "timeout_minutes": spec.get("timeoutMinutes"),
            "retry_attempts": spec.get("retryAttempts"),
            "last_schedule_time": _time(status.get("lastScheduleTime")),
            "next_schedule_time": _time(status.get("nextScheduleTime")),
            "last_successful_time": _time(status.get("lastSuccessfulTime")),
            "metadata": _present({
                "startingDeadlineSeconds": spec.get("startingDeadlineSeconds"),
                "successfulJobsHistoryLimit": spec.get("successfulJobsHistoryLimit"),
                "failedJobsHistoryLimit": spec.get("failedJobsHistoryLimit"),
                "active": [a.get("name") if isinstance(a, Mapping) else a for a in active]
                or None,
            }),
            "generation": meta.get("generation") or 0,
            "resource_version": _resource_version(meta),
            "seq": mirror_seq(_section(status, "mirror")),
        })
