"""Admission webhooks (kopf): validate what the CRD schema cannot, and note who deleted.

Who did what is stamped by the API server itself where it serves
MutatingAdmissionPolicy (policies/, installed by the chart when the cluster has the
API), with a ValidatingAdmissionPolicy refusing forged or removed stamps. Clusters
without that API get the stamp webhooks of `app.stamp_webhooks` instead
(`stamp_webhooks` setting; the chart decides from the cluster's API versions).

Failure policies, decided per webhook:
- SyncSchedule validation is `Fail`: a schedule whose cron or time zone does not
  parse must never be stored (GitOps retries until the operator is back).
- SyncJob validation and the deleter's record are `Ignore`: pausing, cancelling
  or deleting a job must work even while the operator is down. The CRD's own rules
  still apply.
"""

from __future__ import annotations

from typing import Any

import kopf

from sync_operator.api.common import SYNCJOB, SYNCSCHEDULE
from sync_operator.syncjob.validation import syncjob_update_error
from sync_operator.syncschedule.validation import schedule_error


def user_of(userinfo: Any) -> str:
    return str(userinfo.get("username") or "unknown")


def validate_schedule(spec: kopf.Spec, **_: Any) -> None:
    error = schedule_error(dict(spec))
    if error:
        raise kopf.AdmissionError(f"spec.schedule: {error}", code=422)


def validate_syncjob(**kwargs: Any) -> None:
    old, new = plain(kwargs.get("old")), plain(kwargs.get("new"))
    if old is None or new is None:
        return
    error = syncjob_update_error(old, new)
    if error:
        raise kopf.AdmissionError(error, code=422)


async def record_schedule_deleter(userinfo: kopf.UserInfo, memo: Any, dryrun: bool,
                                  **kwargs: Any) -> None:
    await _remember_deleter(userinfo, memo, dryrun, kwargs.get("old"))


async def record_deleter(userinfo: kopf.UserInfo, memo: Any, dryrun: bool,
                         **kwargs: Any) -> None:
    await _remember_deleter(userinfo, memo, dryrun, kwargs.get("old"))


async def _remember_deleter(userinfo: Any, memo: Any, dryrun: bool, old: Any) -> None:
    """Who deleted an object: the finalizer reads it for the audit row."""
    if old is None or dryrun:
        return
    await memo["runtime"].record_deleter(old["metadata"]["uid"], user_of(userinfo))


def plain(body: Any) -> dict[str, Any] | None:
    return None if body is None else dict(body)


def register(*, persistent: bool) -> None:
    """Register the handlers with kopf. `persistent`: they stay in the webhook
    configuration when this replica exits (kopf removes its non-persistent webhooks on
    exit), for replicas that share one configuration; the chart's pre-delete hook then
    removes it with the release."""
    kopf.on.validate(*SYNCSCHEDULE.kopf, id="validate-schedule",
                     operations=["CREATE", "UPDATE"], persistent=persistent)(validate_schedule)
    kopf.on.validate(*SYNCJOB.kopf, id="validate-syncjob", operations=["UPDATE"],
                     ignore_failures=True, persistent=persistent)(validate_syncjob)
    kopf.on.validate(*SYNCSCHEDULE.kopf, id="record-schedule-deleter", operations=["DELETE"],
                     ignore_failures=True, persistent=persistent)(record_schedule_deleter)
    kopf.on.validate(*SYNCJOB.kopf, id="record-deleter", operations=["DELETE"],
                     ignore_failures=True, persistent=persistent)(record_deleter)
