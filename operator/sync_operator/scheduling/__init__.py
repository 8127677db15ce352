"""When SyncSchedules fire: CronJob-compatible cron evaluation and tick decisions, no I/O."""

from sync_operator.api.syncschedule import ConcurrencyPolicy
from sync_operator.scheduling.clock import Clock, ManualClock, SystemClock
from sync_operator.scheduling.cron import (
    CronSchedule,
    next_tick,
    parse_schedule,
    ticks_between,
    validate,
)
from sync_operator.scheduling.decision import (
    TOO_MANY_MISSED,
    ScheduleTiming,
    TickAction,
    TickDecision,
    TickReason,
    decide_tick,
)
from sync_operator.scheduling.history import HistoryEntry, prune_history
from sync_operator.scheduling.naming import MAX_NAME_LENGTH, job_name_for

__all__ = [
    "MAX_NAME_LENGTH",
    "TOO_MANY_MISSED",
    "Clock",
    "ConcurrencyPolicy",
    "CronSchedule",
    "HistoryEntry",
    "ManualClock",
    "ScheduleTiming",
    "SystemClock",
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
