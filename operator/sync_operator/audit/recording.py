"""Moving who-did-what into the status outbox: the stamped actions exactly once, and
what arrived without a stamp as performed by "unknown". Pure: status in, status out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync_operator.audit.actions import syncjob_actions, unseen_actions
from sync_operator.audit.outbox import append_entry
from sync_operator.kube.bodies import Document as Status
from sync_operator.kube.timestamps import parse_time

Body = Mapping[str, Any]


def move_actions(body: Body, status: Status, phase: str | None, now: datetime) -> Status:
    """Move the users' actions recorded by the webhook into the audit outbox, once."""
    status = dict(status)
    for action in unseen_actions(body):
        try:
            at = parse_time(action.get("at")) or now
        except ValueError:
            at = now
        status["mirror"] = append_entry(
            status.get("mirror"), str(action["action"]), str(action.get("by") or "unknown"),
            phase, dict(action.get("details") or {}), at)
        status["actionsSeen"] = int(action["n"])
    return status


def audit_unattributed(body: Body, status: Status, phase: str, now: datetime) -> Status:
    """Audit control changes that reached us without the webhook's stamp (it was down,
    or `Ignore` let the change through) as performed by "unknown": nothing goes
    unrecorded, and nothing is recorded twice."""
    spec = body.get("spec") or {}
    current = {"paused": bool(spec.get("paused")), "cancel": bool(spec.get("cancel")),
               "priority": int(spec.get("priority", 5))}
    status = dict(status)
    previous = status.get("observedSpec")
    status["observedSpec"] = current
    if previous is None:
        return status
    # Replay the stamped actions onto what we saw last: what they do not explain
    # happened without the webhook.
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
            {**action["details"], "note": "not attributed: admission webhook unavailable"}, now)
    return status
