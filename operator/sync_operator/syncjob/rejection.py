"""What to write when the API server refuses a SyncJob's status with 422 Invalid.

A refused status is not a conflict: writing the same decision again is refused
again, forever, while the job holds its slot. So the reconciler writes this
instead: the status it had (which the server accepted), made terminal: phase
Failed, condition Failed=True with reason StatusRejected naming the refused
fields, and an audit entry. Capacity is released, and a person sees why in
`kubectl describe` (with a Warning Event) and in SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sync_operator.api.bounds import clip, clip_middle
from sync_operator.api.common import ConditionType, Phase, Reason
from sync_operator.audit.outbox import append_entry
from sync_operator.kube import ApiError
from sync_operator.kube.bodies import Document
from sync_operator.kube.conditions import set_condition
from sync_operator.kube.timestamps import format_time

INVALID = 422
AUDIT_ACTION = "failed"
# A field path in the API's message: status.progress.unit, status.conditions[0].reason.
_FIELD = re.compile(r"\b((?:status|metadata|spec)(?:\.[A-Za-z0-9_-]+|\[\d+\])+)")
MAX_FIELDS = 10


def is_invalid(err: ApiError) -> bool:
    """The server refused the object as invalid (not a conflict, not unavailable)."""
    return err.status == INVALID


def refused_fields(err: ApiError) -> list[str]:
    """The fields the API server named: its Status causes, else the paths in its message."""
    details = err.body.get("details") if isinstance(err.body, Mapping) else None
    causes = (details or {}).get("causes") if isinstance(details, Mapping) else None
    fields = [str(c["field"]) for c in causes or [] if isinstance(c, Mapping) and c.get("field")]
    if not fields:
        fields = _FIELD.findall(err.message or "")
    return list(dict.fromkeys(fields))[:MAX_FIELDS]


def rejection_message(err: ApiError) -> str:
    """One line for the condition, status.error and the Event."""
    fields = ", ".join(refused_fields(err)) or "unknown fields"
    return clip_middle(f"the API server refused the status write ({fields}): {err.message}")


def rejected_status(old: Mapping[str, Any], message: str, *, now: datetime, generation: int,
                    identity: str) -> Document:
    """`old` (the status the server holds) made Failed with reason StatusRejected."""
    status: Document = dict(old)
    moment = format_time(now)
    status["phase"] = Phase.FAILED.value
    status["completedAt"] = moment
    status["error"] = message
    conditions = set_condition(status.get("conditions"), ConditionType.RUNNING, False,
                               Reason.STATUS_REJECTED, "the status could not be written",
                               generation, now)
    status["conditions"] = set_condition(conditions, ConditionType.FAILED, True,
                                         Reason.STATUS_REJECTED, message, generation, now)
    status["observedGeneration"] = generation
    status["mirror"] = append_entry(
        status.get("mirror"), AUDIT_ACTION, identity, Phase.FAILED.value,
        {"reason": Reason.STATUS_REJECTED.value, "message": clip(message, 1024)}, now)
    return status
