"""User actions on SyncJobs and SyncSchedules: what changed, who did it, and whether
it is allowed. Pure functions, used by the admission webhook and the reconciler.

The webhook sees every change with the requesting user; it appends the actions it
recognises to the annotation `sync.jobcontrol.io/actions`, each with a number that
only grows. The reconciler moves them into the status outbox (status.mirror) and
remembers the highest number moved (status.actionsSeen), so an action is recorded
exactly once even if the operator stops between the two writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync_operator.kube.timestamps import format_time

ACTIONS_ANNOTATION = "sync.jobcontrol.io/actions"
# How many recorded-but-not-yet-moved actions the annotation keeps (bounded object size).
MAX_ANNOTATED_ACTIONS = 50
Body = Mapping[str, Any]
Action = dict[str, Any]


def syncjob_actions(operation: str, old: Body | None, new: Body | None) -> list[Action]:
    """Actions a change to a SyncJob amounts to: create, pause, resume, cancel,
    priority_change (with from/to)."""
    if operation == "CREATE" and new is not None:
        spec = new.get("spec") or {}
        return [{"action": "create", "details": {"jobType": spec.get("jobType"),
                                                 "priority": spec.get("priority", 5)}}]
    if operation != "UPDATE" or old is None or new is None:
        return []
    before, after = old.get("spec") or {}, new.get("spec") or {}
    actions: list[Action] = []
    if bool(before.get("paused")) != bool(after.get("paused")):
        actions.append({"action": "pause" if after.get("paused") else "resume", "details": {}})
    if not before.get("cancel") and after.get("cancel"):
        actions.append({"action": "cancel", "details": {}})
    if before.get("priority", 5) != after.get("priority", 5):
        actions.append({"action": "priority_change",
                        "details": {"from": before.get("priority", 5),
                                    "to": after.get("priority", 5)}})
    return actions


def schedule_actions(operation: str, old: Body | None, new: Body | None) -> list[Action]:
    """Actions a change to a SyncSchedule amounts to: schedule_create, schedule_toggle
    (suspend flipped), schedule_update (with the fields that changed)."""
    if operation == "CREATE" and new is not None:
        return [{"action": "schedule_create",
                 "details": {"schedule": (new.get("spec") or {}).get("schedule")}}]
    if operation != "UPDATE" or old is None or new is None:
        return []
    before, after = old.get("spec") or {}, new.get("spec") or {}
    actions: list[Action] = []
    if bool(before.get("suspend")) != bool(after.get("suspend")):
        actions.append({"action": "schedule_toggle",
                        "details": {"suspend": bool(after.get("suspend"))}})
    changed = sorted(k for k in set(before) | set(after)
                     if k != "suspend" and before.get(k) != after.get(k))
    if changed:
        actions.append({"action": "schedule_update", "details": {
            "fields": changed, "from": {k: before.get(k) for k in changed},
            "to": {k: after.get(k) for k in changed}}})
    return actions


def _well_formed(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("n"), int) \
        and isinstance(entry.get("action"), str) and bool(entry["action"]) \
        and isinstance(entry.get("by"), str) and isinstance(entry.get("at"), str) \
        and isinstance(entry.get("details", {}), dict)


def recorded_actions(body: Body | None) -> list[Action]:
    """The well-formed actions in a body's annotation; anything else is ignored, never
    fatal (a hand-edited annotation must not wedge the object)."""
    raw = (((body or {}).get("metadata") or {}).get("annotations") or {}).get(
        ACTIONS_ANNOTATION)
    if not raw:
        return []
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return [a for a in loaded if _well_formed(a)] if isinstance(loaded, list) else []


def stamp(old: Body | None, new: Body, actions: list[Action], user: str, now: datetime,
          seen: int | None = None) -> str:
    """The new annotation value: the actions already recorded on the stored object
    (`old`; whatever the request itself carries is ignored, so nobody can write an
    entry in someone else's name) plus this request's, numbered after every number
    used so far."""
    existing = recorded_actions(old)
    if seen is not None:
        existing = [a for a in existing if a["n"] > seen]
    status_seen = int(((new.get("status") or {}).get("actionsSeen")) or 0)
    counter = max([status_seen, *(a["n"] for a in existing)])
    for action in actions:
        counter += 1
        existing.append({"n": counter, "action": action["action"], "by": user,
                         "at": format_time(now), "details": action.get("details") or {}})
    return json.dumps(existing[-MAX_ANNOTATED_ACTIONS:], separators=(",", ":"))


def unseen_actions(body: Body) -> list[Action]:
    """Actions the reconciler has not moved into the outbox yet, oldest first."""
    seen = int(((body.get("status") or {}).get("actionsSeen")) or 0)
    return sorted((a for a in recorded_actions(body) if a["n"] > seen), key=lambda a: a["n"])
