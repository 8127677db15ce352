"""User actions on SyncJobs and SyncSchedules: what changed, who did it, and whether
it is allowed. Pure functions, used by the admission webhook and the reconciler.

Who did what is stamped at admission, one annotation per action:

    actions.sync.jobcontrol.io/<n>: <action>|<details>|<username>

for example `actions.sync.jobcontrol.io/7: priority_change|from=5,to=1|alice`. The
API server writes it (policies/mutating-stamp-actions.yaml, a MutatingAdmissionPolicy
built from request.userInfo), and so does the operator's webhook on clusters without
that API, in the very same format. The format is what CEL can build and check, since
Kubernetes CEL has no JSON: `<details>` is `key=value` pairs separated by `,` (`a.b=v`
nests, `fields` lists names joined by `+`), and `%`, `|`, `,` and `=` inside a field
are percent-escaped. `<n>` only grows: it comes after every stamp stored so far and
after status.actionsSeen, the highest number the reconciler has moved into the status
outbox (status.mirror), so an action is recorded exactly once even if the operator
stops between the two writes. Stamps numbered up to status.actionsSeen are dropped at
the next stamping, so the object stays small. A stamp carries no time (CEL has no
clock): the reconciler records the time it first sees it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

STAMP_PREFIX = "actions.sync.jobcontrol.io/"
# How many not-yet-audited stamps an object keeps (the policies use the same number):
# only a long operator outage reaches it; the oldest are then dropped and the changes
# they explained are audited as "unknown" (audit.recording.audit_unattributed).
MAX_UNSEEN = 100
_SERIAL = re.compile(r"[1-9][0-9]{0,8}")
_ACTION = re.compile(r"[a-z][a-z_]*")
_INT = re.compile(r"-?[0-9]+")
# At most one of each SyncJob change per request: pause/resume, cancel, priority_change.
MAX_ACTIONS_PER_REQUEST = 3
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
    (suspend flipped), schedule_update (the fields that changed, with from/to of the
    scalar ones: the policy's CEL cannot serialise jobTemplate)."""
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
                     if k != "suspend" and (k not in before or k not in after
                                            or before[k] != after[k]))
    if changed:
        actions.append({"action": "schedule_update", "details": {
            "fields": changed,
            "from": {k: before[k] for k in changed if _scalar(before.get(k))},
            "to": {k: after[k] for k in changed if _scalar(after.get(k))}}})
    return actions


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | bool)


# -- the stamp format -------------------------------------------------------------------

def escape(text: str) -> str:
    """Percent-escape the four characters the format uses, exactly as the policy does."""
    return (text.replace("%", "%25").replace("|", "%7C").replace(",", "%2C")
            .replace("=", "%3D"))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def encode_details(details: Mapping[str, Any]) -> str:
    """`key=value,...` as the policy writes it: None is left out, a list is joined by
    `+`, a mapping becomes `key.sub=value` pairs."""
    pairs: list[str] = []
    for key, value in details.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(f"{key}.{sub}={_literal(v)}" for sub, v in value.items()
                         if v is not None)
        elif isinstance(value, list):
            pairs.append(f"{key}={'+'.join(escape(str(v)) for v in value)}")
        else:
            pairs.append(f"{key}={_literal(value)}")
    return ",".join(pairs)


def stamp_value(action: Action, user: str) -> str:
    return f"{action['action']}|{encode_details(action.get('details') or {})}|{escape(user)}"


def _typed(text: str) -> Any:
    """Details come back as the types the actions had: bools, ints, else strings."""
    if text in ("true", "false"):
        return text == "true"
    return int(text) if _INT.fullmatch(text) else unquote(text)


def decode_details(text: str) -> dict[str, Any]:
    """The inverse of encode_details; a pair without `=` is skipped."""
    details: dict[str, Any] = {}
    for pair in filter(None, text.split(",")):
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            continue
        if key == "fields":
            details[key] = [unquote(f) for f in raw.split("+") if f]
        elif "." in key:
            outer, _, inner = key.partition(".")
            nested = details.setdefault(outer, {})
            if isinstance(nested, dict) and inner:
                nested[inner] = _typed(raw)
        else:
            details[key] = _typed(raw)
    return details


def serial(key: str) -> int | None:
    """The number of a stamp annotation's key, or None if the key is not a stamp."""
    if not key.startswith(STAMP_PREFIX):
        return None
    number = key[len(STAMP_PREFIX):]
    return int(number) if _SERIAL.fullmatch(number) else None


def parse_stamp(key: str, value: Any) -> Action | None:
    """One stamp as {n, action, by, details}, or None when it is not well formed."""
    n = serial(key)
    if n is None or not isinstance(value, str):
        return None
    parts = value.split("|")
    if len(parts) != 3 or not _ACTION.fullmatch(parts[0]):
        return None
    user = unquote(parts[2])
    if not user:
        return None
    return {"n": n, "action": parts[0], "by": user, "details": decode_details(parts[1])}


def _annotations(body: Body | None) -> Mapping[str, Any]:
    return (((body or {}).get("metadata") or {}).get("annotations")) or {}


def _seen(body: Body | None) -> int:
    seen = ((body or {}).get("status") or {}).get("actionsSeen")
    return seen if isinstance(seen, int) and not isinstance(seen, bool) else 0


def recorded_actions(body: Body | None) -> list[Action]:
    """The well-formed stamps on a body, by number; anything else is ignored, never
    fatal (a hand-edited annotation must not wedge the object)."""
    found = (parse_stamp(k, v) for k, v in _annotations(body).items())
    return sorted((a for a in found if a is not None), key=lambda a: int(a["n"]))


def unseen_actions(body: Body) -> list[Action]:
    """Actions the reconciler has not moved into the outbox yet, oldest first."""
    seen = _seen(body)
    return [a for a in recorded_actions(body) if a["n"] > seen]


def stamp_patch(old: Body | None, new: Body, actions: list[Action],
                user: str) -> dict[str, str | None]:
    """The annotation changes (None: remove) that turn `new` into what the policy
    stores, computed the same way: the stored object's unaudited stamps restored, this
    request's actions numbered after everything stored and seen, and every other
    stamp the request carries removed. Empty when `new` already is that (the policy
    ran first), so the webhook and the policy never fight."""
    stored, carried = _annotations(old), _annotations(new)
    seen = _seen(old)
    numbers = {k: n for k in stored if (n := serial(k)) is not None}
    top = max([seen, *numbers.values()])
    kept = {k: str(stored[k]) for k, n in numbers.items()
            if n > seen and n > top - MAX_UNSEEN}
    fresh = {f"{STAMP_PREFIX}{top + 1 + i}": stamp_value(action, user)
             for i, action in enumerate(actions[:MAX_ACTIONS_PER_REQUEST])}
    wanted = {**kept, **fresh}
    patch: dict[str, str | None] = {
        k: None for k in carried if k.startswith(STAMP_PREFIX) and k not in wanted}
    patch.update({k: v for k, v in wanted.items() if carried.get(k) != v})
    return patch
