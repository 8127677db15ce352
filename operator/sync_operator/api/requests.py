"""The objects and patches clients send (`kubectl sync` and the console alike): new
SyncJobs, by hand or from a schedule, and spec patches.

Built as plain dicts and validated only by the API server, so its CRD schema and CEL
rules stay the one authority on what is allowed.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sync_operator.api import API_VERSION, GROUP, SyncSchedule
from sync_operator.syncjob.job_builder import label_value

MAX_NAME_LENGTH = 63
SCHEDULE_LABEL = f"{GROUP}/schedule"
# As CronJob's "cronjob.kubernetes.io/instantiate: manual" on `kubectl create job --from`.
INSTANTIATE_ANNOTATION = f"{GROUP}/instantiate"
_HASH_LENGTH = 5


def new_syncjob(job_type: str, *, name: str | None = None, generate_name: str | None = None,
                priority: int | None = None, params: dict[str, Any] | None = None,
                timeout_minutes: int | None = None, retry_attempts: int | None = None,
                paused: bool = False, dedup_key: str | None = None) -> dict[str, Any]:
    """A SyncJob body; unset options are left out so the CRD defaults apply."""
    metadata: dict[str, Any] = {"name": name} if name else {"generateName": generate_name}
    spec: dict[str, Any] = {"jobType": job_type}
    for key, value in (("priority", priority), ("timeoutMinutes", timeout_minutes),
                       ("retryAttempts", retry_attempts), ("dedupKey", dedup_key)):
        if value is not None:
            spec[key] = value
    if params:
        spec["params"] = params
    if paused:
        spec["paused"] = True
    return {"apiVersion": API_VERSION, "kind": "SyncJob", "metadata": metadata, "spec": spec}


def manual_job_name(schedule_name: str, now: datetime) -> str:
    """``<schedule>-manual-<UTC yyyymmdd-hhmmss>``; a long schedule name is cut and hashed."""
    suffix = f"manual-{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    room = MAX_NAME_LENGTH - len(suffix) - 1
    if len(schedule_name) > room:
        digest = hashlib.sha256(schedule_name.encode()).hexdigest()[:_HASH_LENGTH]
        schedule_name = f"{schedule_name[: room - _HASH_LENGTH - 1].rstrip('-.')}-{digest}"
    return f"{schedule_name}-{suffix}"


def job_from_schedule(schedule: SyncSchedule, now: datetime) -> dict[str, Any]:
    """A one-off SyncJob from a schedule's template, labelled and referenced like ticked ones.

    It is owned by the schedule (as ``kubectl create job --from=cronjob/...`` does), so it
    goes when the schedule is deleted and counts in the schedule's history.
    """
    meta, spec = schedule.metadata, schedule.spec
    name = str(meta["name"])
    body = new_syncjob(
        str(spec.job_type), name=manual_job_name(name, now), priority=spec.priority,
        params=dict(spec.job_template.params), timeout_minutes=spec.timeout_minutes,
        retry_attempts=spec.retry_attempts, dedup_key=spec.job_template.dedup_key,
    )
    body["spec"]["scheduleRef"] = name
    body["metadata"]["labels"] = {SCHEDULE_LABEL: label_value(name)}
    body["metadata"]["annotations"] = {INSTANTIATE_ANNOTATION: "manual"}
    if meta.get("uid"):
        body["metadata"]["ownerReferences"] = [{
            "apiVersion": API_VERSION, "kind": "SyncSchedule", "name": name,
            "uid": meta["uid"], "controller": True,
        }]
    return body


def spec_patch(**spec: Any) -> dict[str, Any]:
    """A JSON merge patch of spec fields (camelCase keys)."""
    return {"spec": spec}
