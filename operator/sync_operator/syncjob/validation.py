"""What the SyncJob schema cannot express, refused at admission with words for the
person who made the change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sync_operator.api.common import Phase

Body = Mapping[str, Any]


def syncjob_update_error(old: Body, new: Body) -> str | None:
    """Why an update to a SyncJob is refused, in words for the person who made it.

    The CRD's CEL rules cover most of it; this covers what they cannot express."""
    before, after = old.get("spec") or {}, new.get("spec") or {}
    name = (new.get("metadata") or {}).get("name")
    if before.get("params", {}) != after.get("params", {}) \
            and json.dumps(before.get("params", {}), sort_keys=True) \
            != json.dumps(after.get("params", {}), sort_keys=True):
        return "spec.params is immutable"
    phase = (old.get("status") or {}).get("phase")
    try:
        terminal = Phase(phase).is_terminal if phase else False
    except ValueError:
        terminal = False
    if terminal:
        for field in ("paused", "priority"):
            if before.get(field) != after.get(field):
                return (f"SyncJob {name} is {phase}: changing spec.{field} has no effect on a "
                        "finished job; create a new SyncJob instead")
    return None
