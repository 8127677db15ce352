"""What the SyncSchedule schema cannot express: a cron that parses, a known time zone."""

from __future__ import annotations

from typing import Any

from sync_operator.syncschedule.cron import validate


def schedule_error(spec: dict[str, Any]) -> str | None:
    """Why a SyncSchedule spec is refused (cron that does not parse, unknown zone)."""
    try:
        validate(str(spec.get("schedule", "")), str(spec.get("timeZone") or "UTC"))
    except ValueError as err:
        return str(err)
    return None
