"""Moving who-did-what into the status outbox: the actions stamped at admission
(audit.actions) exactly once, and what arrived without a stamp as performed by
"unknown". Pure: status in, status out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync_operator.audit.actions import syncjob_actions, unseen_actions
from sync_operator.audit.outbox import append_entry
from sync_operator.kube.bodies import Document as Status

Body = Mapping[str, Any]


def move_actions(body: Body, status: Status, phase: str | None, now: datetime) -> Status:
    """Move the users' actions stamped at admission into the audit outbox, once.

    A stamp has no time (the policy's CEL has no clock), so an entry is dated when
    the reconciler first sees it: within a reconcile of the change while the operator
    runs, and when it is back after an outage. It is the whole second, as the API
    server dates its own changes: a deletion recorded at its deletionTimestamp in the
    same second still sorts after the action."""
    status = dict(status)
    seen_at = now.replace(microsecond=0)
    for action in unseen_actions(body):
        status["mirror"] = append_entry(
            status.get("mirror"), str(action["action"]), str(action["by"]), phase,
            dict(action.get("details") or {}), seen_at)
        status["actionsSeen"] = int(action["n"])
    return status


def audit_unattributed(body: Body, status: Status, phase: str, now: datetime) -> Status:
    """Audit control changes that reached us without a stamp as performed by "unknown"
    (on a cluster without the stamp policy, the webhook was down and `Ignore` let the
    change through; or a long outage outgrew the stamps kept): nothing goes unrecorded,
    and nothing is recorded twice."""
    spec = body.get("spec") or {}
    current = {"paused": bool(spec.get("paused")), "cancel": bool(spec.get("cancel")),
               "priority": int(spec.get("priority", 5))}
    status = dict(status)
    previous = status.get("observedSpec")
    status["observedSpec"] = current
    if previous is None:
        return status
    # Replay the stamped actions onto what we saw last: what they do not explain
    # happened without a stamp.
    explained = dict(previous)
    for action in unseen_actions(body):
        name, details = action["action"], action.get("details") or {}
        if name in ("pause", "resume"):
            explained["paused"] = name == "pause"
        elif name == "cancel":
            explained["cancel"] = True
        elif name == "priority_change" and isinstance(details.get("to"), int):
            explained["priority"] = details["to"]
    for action in syncjob_actions("UPDATE", {"spec": explained}, {"spec": current}):
        status["mirror"] = append_entry(
            status.get("mirror"), action["action"], "unknown", phase,
            {**action["details"], "note": "not attributed: no admission stamp"}, now)
    return status
