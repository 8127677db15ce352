"""The stamp webhooks (kopf): who did what, for clusters without MutatingAdmissionPolicy.

Where the API server serves MutatingAdmissionPolicy the chart installs policies/ and
turns these off (`stamp_webhooks: false`, decided from the cluster's API versions):
the API server then stamps every request itself, with or without the operator, and a
webhook beside it would only be a second writer of the same annotations. Without that
API these are the stamp: the same annotations, computed the same way
(`audit.actions.stamp_patch`), with failurePolicy Ignore so that pausing or cancelling
works while the operator is down; such a change is then recorded as performed by
"unknown", never by someone else (the stamp is rebuilt from the stored object).
"""

from __future__ import annotations

from typing import Any

import kopf

from sync_operator.api.common import FINALIZER, SYNCJOB, SYNCSCHEDULE
from sync_operator.app.webhooks import plain, user_of
from sync_operator.audit.actions import schedule_actions, stamp_patch, syncjob_actions


def stamp_syncjob(userinfo: kopf.UserInfo, patch: kopf.Patch, **kwargs: Any) -> None:
    old, new = plain(kwargs.get("old")), plain(kwargs.get("new"))
    operation = str(kwargs.get("operation"))
    _stamp(syncjob_actions(operation, old, new), old, new, userinfo, patch)
    if operation == "CREATE" and new is not None:
        _finalize(new, patch)


def _finalize(new: dict[str, Any], patch: kopf.Patch) -> None:
    """The operator's finalizer, put on at create as policies/mutating-finalize-syncjobs
    does where the API server serves policies: the operator then need not write it."""
    finalizers = list((new.get("metadata") or {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        patch.setdefault("metadata", {})["finalizers"] = [*finalizers, FINALIZER]


def stamp_schedule(userinfo: kopf.UserInfo, patch: kopf.Patch, **kwargs: Any) -> None:
    old, new = plain(kwargs.get("old")), plain(kwargs.get("new"))
    _stamp(schedule_actions(str(kwargs.get("operation")), old, new), old, new, userinfo, patch)


def _stamp(actions: list[dict[str, Any]], old: dict[str, Any] | None,
           new: dict[str, Any] | None, userinfo: Any, patch: kopf.Patch) -> None:
    """Make the stamps what the stored object and this request's actions say, on every
    change, so a request can never store entries of its own making."""
    if new is None:
        return
    changes = stamp_patch(old, new, actions, user_of(userinfo))
    if changes:
        patch.setdefault("metadata", {}).setdefault("annotations", {}).update(changes)


def register(*, persistent: bool) -> None:
    """Register the stamp handlers with kopf (`persistent` as in app.webhooks)."""
    kopf.on.mutate(*SYNCJOB.kopf, id="stamp-syncjob-actor", operations=["CREATE", "UPDATE"],
                   ignore_failures=True, persistent=persistent)(stamp_syncjob)
    kopf.on.mutate(*SYNCSCHEDULE.kopf, id="stamp-schedule-actor",
                   operations=["CREATE", "UPDATE"], ignore_failures=True,
                   persistent=persistent)(stamp_schedule)
