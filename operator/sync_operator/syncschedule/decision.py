"""What a schedule should do now: the CronJob controller's tick decision as a pure function.

Mirrors ``syncCronJob`` in pkg/controller/cronjob (Kubernetes 1.37):

* Only the most recent unmet tick since ``lastScheduleTime`` (or the schedule's
  creation) is considered; older missed ticks are dropped, only counted.
* If that tick is more than ``startingDeadlineSeconds`` old it is skipped
  (``MissedDeadline``); ``lastScheduleTime`` stays, so the miss is seen again
  until the next tick, exactly as upstream.
* A tick whose job is already in the active list was started before (``AlreadyStarted``):
  the caller only has to record ``lastScheduleTime``.
* ``Forbid`` skips while any job of the schedule is active (``JobAlreadyActive``); the
  tick stays due, so it starts late once the active job ends, if still within the
  deadline. ``Replace`` cancels the active jobs, then creates. ``Allow`` creates.
* ``suspend`` does nothing and needs no wake-up (a spec change wakes the reconciler).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sync_operator.api.syncschedule import ConcurrencyPolicy, SyncScheduleSpec
from sync_operator.syncschedule.cron import CronSchedule, parse_schedule
from sync_operator.syncschedule.naming import job_name_for

# CronJob emits TooManyMissedTimes above this many missed ticks; counting stops just past it.
TOO_MANY_MISSED = 100


class TickAction(StrEnum):
    """The one thing the reconciler does for this tick."""

    WAIT = "Wait"  # nothing due now; sleep until next_schedule_time
    CREATE = "Create"  # create job_name (after cancelling `cancel`); 409 means already done
    SKIP = "Skip"  # a tick is due but must not start; worth an Event with the reason


class TickReason(StrEnum):
    """Why; names follow the CronJob controller's Event reasons where one exists."""

    DUE = "Due"
    NOT_DUE = "NotDue"
    SUSPENDED = "Suspended"
    ALREADY_STARTED = "AlreadyStarted"
    MISSED_DEADLINE = "MissedDeadline"
    JOB_ALREADY_ACTIVE = "JobAlreadyActive"


@dataclass(frozen=True)
class ScheduleTiming:
    """The SyncSchedule spec fields that decide when jobs start (defaults as the CRD's)."""

    schedule: str
    time_zone: str = "UTC"
    suspend: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    starting_deadline_seconds: int | None = None

    @classmethod
    def from_spec(cls, spec: SyncScheduleSpec | Mapping[str, Any]) -> ScheduleTiming:
        """Take the timing fields of a SyncSchedule spec (the model or its camelCase dict)."""
        if isinstance(spec, SyncScheduleSpec):
            return cls(spec.schedule, spec.time_zone, spec.suspend, spec.concurrency_policy,
                       spec.starting_deadline_seconds)
        deadline = spec.get("startingDeadlineSeconds")
        return cls(
            schedule=str(spec["schedule"]),
            time_zone=str(spec.get("timeZone") or "UTC"),
            suspend=bool(spec.get("suspend", False)),
            concurrency_policy=ConcurrencyPolicy(spec.get("concurrencyPolicy") or "Forbid"),
            starting_deadline_seconds=None if deadline is None else int(deadline),
        )


@dataclass(frozen=True)
class TickDecision:
    """The outcome of one look at a schedule."""

    action: TickAction
    reason: TickReason
    scheduled_time: datetime | None = None  # the tick acted on or skipped
    job_name: str | None = None  # deterministic name for scheduled_time
    cancel: tuple[str, ...] = field(default=())  # active jobs to cancel first (Replace)
    missed_ticks: int = 0  # ticks since the last run that will never run (capped at 101)
    next_schedule_time: datetime | None = None  # wake-up / status.nextScheduleTime

    @property
    def too_many_missed(self) -> bool:
        """CronJob's TooManyMissedTimes warning: check clocks or set a starting deadline."""
        return self.missed_ticks > TOO_MANY_MISSED


def decide_tick(schedule_name: str, timing: ScheduleTiming, *, created_at: datetime,
                last_schedule_time: datetime | None, now: datetime,
                active_jobs: Collection[str] = ()) -> TickDecision:
    """Decide what the schedule does at `now`; `active_jobs` are its unfinished jobs' names."""
    if timing.suspend:
        return TickDecision(TickAction.WAIT, TickReason.SUSPENDED)
    cron = parse_schedule(timing.schedule, timing.time_zone)
    next_time = cron.next_after(now)
    earliest = last_schedule_time or created_at
    due = _latest_tick(cron, after=earliest, until=now)
    if due is None:
        return TickDecision(TickAction.WAIT, TickReason.NOT_DUE, next_schedule_time=next_time)
    older = _count_ticks(cron, after=earliest, before=due)
    name = job_name_for(schedule_name, due)
    deadline = timing.starting_deadline_seconds

    def decision(action: TickAction, reason: TickReason, missed: int = older,
                 cancel: tuple[str, ...] = ()) -> TickDecision:
        return TickDecision(action, reason, due, name, cancel, missed, next_time)

    if deadline is not None and due + timedelta(seconds=deadline) < now:
        return decision(TickAction.SKIP, TickReason.MISSED_DEADLINE, missed=older + 1)
    if name in active_jobs:
        return decision(TickAction.WAIT, TickReason.ALREADY_STARTED)
    if timing.concurrency_policy == ConcurrencyPolicy.FORBID and active_jobs:
        return decision(TickAction.SKIP, TickReason.JOB_ALREADY_ACTIVE)
    cancel = tuple(sorted(active_jobs)) if (
        timing.concurrency_policy == ConcurrencyPolicy.REPLACE) else ()
    return decision(TickAction.CREATE, TickReason.DUE, cancel=cancel)


def _latest_tick(cron: CronSchedule, *, after: datetime, until: datetime) -> datetime | None:
    """The last tick in (after, until], looking back in growing windows.

    Cron has no "previous"; walking forward from a long-gone `after` (a clock off by
    years) would be slow, so start near `until` and widen only while nothing is found.
    """
    span = timedelta(hours=1)
    while True:
        start = max(after, until - span)
        latest = None
        for tick in cron.iter_after(start):
            if tick > until:
                break
            latest = tick
        if latest is not None or start == after:
            return latest
        span *= 4


def _count_ticks(cron: CronSchedule, *, after: datetime, before: datetime) -> int:
    """How many ticks lie in (after, before), counting no further than TOO_MANY_MISSED + 1."""
    count = 0
    for tick in cron.iter_after(after):
        if tick >= before or count > TOO_MANY_MISSED:
            break
        count += 1
    return count
