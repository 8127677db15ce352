"""Deterministic SyncJob names per tick, so a tick can create at most one job.

Like CronJob (``<cronjob>-<minutes since epoch of the scheduled time>``): a second
create for the same tick, by a restarted or newly elected operator, gets 409
AlreadyExists, which means "already done".
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

MAX_NAME_LENGTH = 63  # a DNS label: the name also ends up in Job and Pod labels
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HASH_LENGTH = 5


def job_name_for(schedule_name: str, tick: datetime) -> str:
    """``<schedule>-<minutes since epoch>``; long schedule names are cut and given a hash."""
    if tick.tzinfo is None:
        raise ValueError("tick must be timezone-aware")
    suffix = str((tick - _EPOCH) // timedelta(minutes=1))
    room = MAX_NAME_LENGTH - len(suffix) - 1
    if len(schedule_name) > room:
        # Keep names of different long schedules distinct: cut, then add a hash of the whole.
        digest = hashlib.sha256(schedule_name.encode()).hexdigest()[:_HASH_LENGTH]
        cut = schedule_name[: room - _HASH_LENGTH - 1].rstrip("-.")
        schedule_name = f"{cut}-{digest}"
    return f"{schedule_name}-{suffix}"
