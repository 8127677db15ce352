"""The schedule manager: list SyncSchedules and change what the old dashboard let people
change (cron, time zone, priority, concurrency, suspend), always as the user.

Reads and writes go to the API server with the user's own token, so RBAC decides who
sees and edits which schedule, and the schedule webhook's answer (a bad cron or time
zone, named by field) reaches the browser as it is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sync_operator.api import SYNCSCHEDULES
from sync_operator.kube import KubeClient


class ScheduleChange(BaseModel):
    """The fields the console may change; unset ones are left as they are."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schedule: str | None = Field(default=None, min_length=1, description="cron expression")
    time_zone: str | None = Field(default=None, alias="timeZone", min_length=1)
    priority: int | None = Field(default=None, ge=1, le=10)
    max_concurrency: int | None = Field(default=None, alias="maxConcurrency", ge=1)
    suspend: bool | None = None

    def patch(self) -> dict[str, Any]:
        """A JSON merge patch of spec, in the CRD's own camelCase names."""
        return {"spec": self.model_dump(by_alias=True, exclude_none=True)}


async def schedules(client: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """The namespace's SyncSchedules by name (a user who may not list them gets the 403)."""
    listed = await client.list(SYNCSCHEDULES, namespace)
    items: list[dict[str, Any]] = [dict(item) for item in listed.get("items") or []]
    return sorted(items, key=lambda s: str(s["metadata"]["name"]))


async def change(client: KubeClient, namespace: str, name: str,
                 wanted: ScheduleChange) -> dict[str, Any]:
    """Patch the schedule's spec as the user; the updated object, as the API server keeps it."""
    return dict(await client.patch(SYNCSCHEDULES, name, wanted.patch(), namespace))
