"""New SyncJobs from the console: by hand (the old dashboard's "start sync") or now from
a schedule's template (`kubectl sync trigger`), created as the user.

The body is the one `kubectl sync create` and `trigger` send (`api.requests`), so the
CRD schema, its CEL rules and the webhooks judge both the same way, and the admission
policy stamps the creator's own name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_operator.api import SYNCJOBS, SYNCSCHEDULES, JobType, SyncSchedule
from sync_operator.api.requests import job_from_schedule, new_syncjob
from sync_operator.kube import KubeClient


class UnreadableScheduleError(ValueError):
    """The stored schedule does not parse as this version's SyncSchedule."""


class NewJob(BaseModel):
    """What the new-job form sends; what it leaves out, the CRD defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    job_type: JobType = Field(alias="jobType")
    name: str | None = Field(default=None, min_length=1, max_length=63)
    priority: int | None = Field(default=None, ge=1, le=10)
    params: dict[str, Any] = Field(default_factory=dict)
    paused: bool = False
    timeout_minutes: int | None = Field(default=None, alias="timeoutMinutes", ge=1)
    retry_attempts: int | None = Field(default=None, alias="retryAttempts", ge=0)
    dedup_key: str | None = Field(default=None, alias="dedupKey", min_length=1)

    def body(self) -> dict[str, Any]:
        return new_syncjob(
            self.job_type.value, name=self.name,
            generate_name=None if self.name else f"{self.job_type.value}-",
            priority=self.priority, params=self.params, timeout_minutes=self.timeout_minutes,
            retry_attempts=self.retry_attempts, paused=self.paused, dedup_key=self.dedup_key)


async def create(client: KubeClient, namespace: str, wanted: NewJob) -> dict[str, Any]:
    """Create the SyncJob as the user; the object as the API server stored it."""
    return dict(await client.create(SYNCJOBS, wanted.body(), namespace))


async def trigger(client: KubeClient, namespace: str, schedule_name: str,
                  now: datetime | None = None) -> dict[str, Any]:
    """A one-off SyncJob from the schedule's template, owned by it, created as the user."""
    stored = await client.get(SYNCSCHEDULES, schedule_name, namespace)
    try:
        schedule = SyncSchedule.model_validate(stored)
    except ValidationError as err:  # stored before a schema change: say so, create nothing
        raise UnreadableScheduleError(f"SyncSchedule {schedule_name} cannot be read: "
                                      f"{err.errors()[0]['msg']} at "
                                      f"{'.'.join(map(str, err.errors()[0]['loc']))}") from None
    body = job_from_schedule(schedule, now or datetime.now(UTC))
    return dict(await client.create(SYNCJOBS, body, namespace))
