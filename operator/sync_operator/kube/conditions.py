"""status.conditions helpers, metav1.Condition semantics (as cert-manager and Kueue do).

lastTransitionTime moves only when a condition's status flips, so "Running since 2h"
stays true while reason, message or observedGeneration are refreshed. The helpers
return new lists and never mutate their input, so a caller can compare old and new to
decide whether a status patch is needed at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sync_operator.kube.timestamps import format_time

Conditions = Sequence[Mapping[str, Any]]

_STATUS_OF_BOOL = {True: "True", False: "False"}


def set_condition(
    conditions: Conditions | None,
    type: str,
    status: str | bool,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """A copy of conditions with the one of this type set (added at the end if new).

    lastTransitionTime is kept when the status is unchanged, set to now otherwise.
    """
    status_str = _STATUS_OF_BOOL[status] if isinstance(status, bool) else str(status)
    if status_str not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    type_str = str(type)
    moment = format_time(now or datetime.now(UTC))
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions or ():
        if cond.get("type") != type_str:
            out.append(dict(cond))
            continue
        found = True
        unchanged = cond.get("status") == status_str and cond.get("lastTransitionTime")
        out.append(_condition(type_str, status_str, reason, message, observed_generation,
                              str(cond["lastTransitionTime"]) if unchanged else moment))
    if not found:
        out.append(_condition(type_str, status_str, reason, message, observed_generation,
                              moment))
    return out


def _condition(type_: str, status: str, reason: str, message: str,
               observed_generation: int | None, last_transition: str) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": str(reason),
        "message": str(message),
        "lastTransitionTime": last_transition,
    }
    if observed_generation is not None:
        cond["observedGeneration"] = int(observed_generation)
    return cond


def get_condition(conditions: Conditions | None, type: str) -> dict[str, Any] | None:
    """The condition of this type, or None."""
    for cond in conditions or ():
        if cond.get("type") == str(type):
            return dict(cond)
    return None


def is_true(conditions: Conditions | None, type: str) -> bool:
    """Whether the condition of this type exists and has status True."""
    cond = get_condition(conditions, type)
    return cond is not None and cond.get("status") == "True"


def remove_condition(conditions: Conditions | None, type: str) -> list[dict[str, Any]]:
    """A copy of conditions without the one of this type."""
    return [dict(c) for c in conditions or () if c.get("type") != str(type)]
