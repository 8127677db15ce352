"""The SyncSchedule controller. Its pure parts (CronJob-compatible cron, tick decisions,
names, history) are re-exported here; `reconciler.py` does the I/O."""

from sync_operator.api.syncschedule import ConcurrencyPolicy
from sync_operator.syncschedule.cron import (
    CronSchedule,
    next_tick,
    parse_schedule,
    ticks_between,
    validate,
)
from sync_operator.syncschedule.decision import (
    TOO_MANY_MISSED,
    ScheduleTiming,
    TickAction,
    TickDecision,
    TickReason,
    decide_tick,
)
from sync_operator.syncschedule.history import HistoryEntry, prune_history
from sync_operator.syncschedule.naming import MAX_NAME_LENGTH, job_name_for

__all__ = [
    "MAX_NAME_LENGTH",
    "TOO_MANY_MISSED",
    "ConcurrencyPolicy",
    "CronSchedule",
    "HistoryEntry",
    "ScheduleTiming",
    "TickAction",
    "TickDecision",
    "TickReason",
    "decide_tick",
    "job_name_for",
    "next_tick",
    "parse_schedule",
    "prune_history",
    "ticks_between",
    "validate",
]
