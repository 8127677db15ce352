"""Admission webhooks (kopf): validate what the CRD schema cannot, and stamp who did what
where the API server cannot.

Who did what is stamped by the API server itself where it serves
MutatingAdmissionPolicy (policies/, installed by the chart when the cluster has the
API), with a ValidatingAdmissionPolicy refusing forged or removed stamps. The stamp
webhooks here are the path for clusters without that API; they write the same
annotations, computed the same way, so where the policy ran first they find nothing
to change.

Failure policies, decided per webhook:
- SyncSchedule validation is `Fail`: a schedule whose cron or time zone does not
  parse must never be stored (GitOps retries until the operator is back).
- SyncJob validation and the actor stamps are `Ignore`: pausing or cancelling a
  job must work even while the operator is down. The CRD's own rules still apply;
  without the stamp policy, what is lost is attribution: the reconciler then records
  the change as performed by "unknown".
"""

from __future__ import annotations

from typing import Any

import kopf

from sync_operator.api.common import SYNCJOB, SYNCSCHEDULE
from sync_operator.audit.actions import schedule_actions, stamp_patch, syncjob_actions
from sync_operator.syncjob.validation import syncjob_update_error
from sync_operator.syncschedule.validation import schedule_error


def _user(userinfo: Any) -> str:
    return str(userinfo.get("username") or "unknown")


@kopf.on.validate(*SYNCSCHEDULE.kopf, id="validate-schedule",
                  operations=["CREATE", "UPDATE"])
def validate_schedule(spec: kopf.Spec, **_: Any) -> None:
    error = schedule_error(dict(spec))
    if error:
        raise kopf.AdmissionError(f"spec.schedule: {error}", code=422)


@kopf.on.validate(*SYNCJOB.kopf, id="validate-syncjob", operations=["UPDATE"],
                  ignore_failures=True)
def validate_syncjob(**kwargs: Any) -> None:
    old, new = _plain(kwargs.get("old")), _plain(kwargs.get("new"))
    if old is None or new is None:
        return
    error = syncjob_update_error(old, new)
    if error:
        raise kopf.AdmissionError(error, code=422)


@kopf.on.validate(*SYNCSCHEDULE.kopf, id="record-schedule-deleter", operations=["DELETE"],
                  ignore_failures=True)
async def record_schedule_deleter(userinfo: kopf.UserInfo, memo: Any, dryrun: bool,
                                  **kwargs: Any) -> None:
    await _remember_deleter(userinfo, memo, dryrun, kwargs.get("old"))


@kopf.on.validate(*SYNCJOB.kopf, id="record-deleter", operations=["DELETE"],
                  ignore_failures=True)
async def record_deleter(userinfo: kopf.UserInfo, memo: Any, dryrun: bool,
                         **kwargs: Any) -> None:
    await _remember_deleter(userinfo, memo, dryrun, kwargs.get("old"))


async def _remember_deleter(userinfo: Any, memo: Any, dryrun: bool, old: Any) -> None:
    """Who deleted an object: the finalizer reads it for the audit row."""
    if old is None or dryrun:
        return
    await memo["runtime"].record_deleter(old["metadata"]["uid"], _user(userinfo))


@kopf.on.mutate(*SYNCJOB.kopf, id="stamp-syncjob-actor", operations=["CREATE", "UPDATE"],
                ignore_failures=True)
def stamp_syncjob(userinfo: kopf.UserInfo, patch: kopf.Patch, **kwargs: Any) -> None:
    old, new = _plain(kwargs.get("old")), _plain(kwargs.get("new"))
    _stamp(syncjob_actions(str(kwargs.get("operation")), old, new), old, new, userinfo, patch)


@kopf.on.mutate(*SYNCSCHEDULE.kopf, id="stamp-schedule-actor",
                operations=["CREATE", "UPDATE"], ignore_failures=True)
def stamp_schedule(userinfo: kopf.UserInfo, patch: kopf.Patch, **kwargs: Any) -> None:
    old, new = _plain(kwargs.get("old")), _plain(kwargs.get("new"))
    _stamp(schedule_actions(str(kwargs.get("operation")), old, new), old, new, userinfo, patch)


def _plain(body: Any) -> dict[str, Any] | None:
    return None if body is None else dict(body)


def _stamp(actions: list[dict[str, Any]], old: dict[str, Any] | None,
           new: dict[str, Any] | None, userinfo: Any, patch: kopf.Patch) -> None:
    """Make the stamps what the stored object and this request's actions say, on every
    change, so a request can never store entries of its own making."""
    if new is None:
        return
    changes = stamp_patch(old, new, actions, _user(userinfo))
    if changes:
        patch.setdefault("metadata", {}).setdefault("annotations", {}).update(changes)
