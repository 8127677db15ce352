"""A schedule starts the right job at the right time, like a CronJob, under a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_operator.api.syncschedule import SyncScheduleSpec
from sync_operator.app.clock import ManualClock
from sync_operator.syncschedule import (
    ConcurrencyPolicy,
    ScheduleTiming,
    TickAction,
    TickDecision,
    TickReason,
    decide_tick,
    job_name_for,
)

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
DAILY_3AM = ScheduleTiming("0 3 * * *", "UTC", concurrency_policy=ConcurrencyPolicy.ALLOW)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def decide(timing: ScheduleTiming, now: datetime, last: datetime | None = None,
           active: tuple[str, ...] = ()) -> TickDecision:
    return decide_tick("quran-daily", timing, created_at=CREATED, last_schedule_time=last,
                       now=now, active_jobs=active)


class Scheduler:
    """The reconciler's part, reduced to bookkeeping: apply decisions as they come."""

    def __init__(self, timing: ScheduleTiming, clock: ManualClock) -> None:
        self.timing, self.clock = timing, clock
        self.created_at = clock.now()
        self.last: datetime | None = None
        self.created: list[datetime] = []

    def step(self) -> TickDecision:
        decision = decide_tick("s", self.timing, created_at=self.created_at,
                               last_schedule_time=self.last, now=self.clock.now())
        if decision.action is TickAction.CREATE:
            assert decision.scheduled_time is not None
            self.created.append(decision.scheduled_time)
            self.last = decision.scheduled_time
        return decision

    def run_until(self, end: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        while self.clock.now() < end:
            self.clock.advance(step)
            self.step()


# -- on time --------------------------------------------------------------------------------


def test_nothing_is_due_before_the_first_tick_and_the_wake_up_is_that_tick() -> None:
    decision = decide(DAILY_3AM, utc("2026-01-01T02:59:59"))
    assert decision.action is TickAction.WAIT
    assert decision.reason is TickReason.NOT_DUE
    assert decision.next_schedule_time == utc("2026-01-01T03:00")


def test_a_tick_is_due_at_its_time_with_its_deterministic_name() -> None:
    decision = decide(DAILY_3AM, utc("2026-01-01T03:00:00.2"))
    assert decision.action is TickAction.CREATE
    assert decision.reason is TickReason.DUE
    assert decision.scheduled_time == utc("2026-01-01T03:00")
    assert decision.job_name == job_name_for("quran-daily", utc("2026-01-01T03:00"))
    assert decision.missed_ticks == 0
    assert decision.next_schedule_time == utc("2026-01-02T03:00")


def test_a_tick_already_recorded_is_not_due_again() -> None:
    decision = decide(DAILY_3AM, utc("2026-01-01T03:00:05"), last=utc("2026-01-01T03:00"))
    assert decision.action is TickAction.WAIT
    assert decision.reason is TickReason.NOT_DUE


def test_a_schedule_created_after_todays_tick_waits_for_tomorrow() -> None:
    decision = decide_tick("s", DAILY_3AM, created_at=utc("2026-01-01T03:00:01"),
                           last_schedule_time=None, now=utc("2026-01-01T09:00"))
    assert decision.action is TickAction.WAIT
    assert decision.next_schedule_time == utc("2026-01-02T03:00")


def test_a_local_time_schedule_ticks_at_local_time_under_a_fake_clock() -> None:
    clock = ManualClock(utc("2026-07-01T00:00"))
    scheduler = Scheduler(ScheduleTiming("0 3 * * *", "Europe/Berlin"), clock)
    scheduler.run_until(utc("2026-07-03T00:00"))
    assert scheduler.created == [utc("2026-07-01T01:00"), utc("2026-07-02T01:00")]  # CEST


# -- across DST, as the CronJob controller would -------------------------------------------


def test_a_berlin_0200_job_skips_the_spring_forward_day() -> None:
    clock = ManualClock(utc("2026-03-27T12:00"))
    scheduler = Scheduler(ScheduleTiming("0 2 * * *", "Europe/Berlin"), clock)
    scheduler.run_until(utc("2026-03-30T12:00"))
    assert scheduler.created == [utc("2026-03-28T01:00"), utc("2026-03-30T00:00")]


def test_a_berlin_0200_job_runs_twice_on_the_fall_back_day() -> None:
    clock = ManualClock(utc("2026-10-24T12:00"))
    scheduler = Scheduler(ScheduleTiming("0 2 * * *", "Europe/Berlin"), clock)
    scheduler.run_until(utc("2026-10-25T12:00"))
    assert scheduler.created == [utc("2026-10-25T00:00"), utc("2026-10-25T01:00")]
    assert len({job_name_for("s", t) for t in scheduler.created}) == 2


def test_a_new_york_0130_job_runs_twice_on_the_fall_back_day_and_once_otherwise() -> None:
    clock = ManualClock(utc("2026-10-30T12:00"))
    scheduler = Scheduler(ScheduleTiming("30 1 * * *", "America/New_York"), clock)
    scheduler.run_until(utc("2026-11-02T12:00"))
    assert scheduler.created == [utc("2026-10-31T05:30"), utc("2026-11-01T05:30"),
                                 utc("2026-11-01T06:30"), utc("2026-11-02T06:30")]


def test_every_six_hours_in_new_york_loses_and_repeats_nothing_across_spring_forward() -> None:
    clock = ManualClock(utc("2026-03-07T12:00"))
    scheduler = Scheduler(ScheduleTiming("0 */6 * * *", "America/New_York"), clock)
    scheduler.run_until(utc("2026-03-09T04:00"), step=timedelta(minutes=7))
    # 12:00 and 18:00 EST; 00:00 EST; then 06:00, 12:00, 18:00 and 00:00 EDT
    assert scheduler.created == [utc("2026-03-07T17:00"), utc("2026-03-07T23:00"),
                                 utc("2026-03-08T05:00"), utc("2026-03-08T10:00"),
                                 utc("2026-03-08T16:00"), utc("2026-03-08T22:00"),
                                 utc("2026-03-09T04:00")]


# -- missed ticks and the starting deadline ------------------------------------------------


def test_after_downtime_only_the_most_recent_missed_tick_starts() -> None:
    hourly = ScheduleTiming("0 * * * *", concurrency_policy=ConcurrencyPolicy.ALLOW)
    decision = decide(hourly, utc("2026-01-01T05:20"), last=utc("2026-01-01T01:00"))
    assert decision.action is TickAction.CREATE
    assert decision.scheduled_time == utc("2026-01-01T05:00")
    assert decision.missed_ticks == 3  # 02:00, 03:00 and 04:00 never run


def test_a_missed_tick_within_the_starting_deadline_still_starts() -> None:
    timing = ScheduleTiming("0 3 * * *", starting_deadline_seconds=600)
    decision = decide(timing, utc("2026-01-02T03:09:59"), last=utc("2026-01-01T03:00"))
    assert decision.action is TickAction.CREATE
    assert decision.scheduled_time == utc("2026-01-02T03:00")


def test_a_missed_tick_beyond_the_starting_deadline_is_skipped() -> None:
    timing = ScheduleTiming("0 3 * * *", starting_deadline_seconds=600)
    decision = decide(timing, utc("2026-01-02T03:10:01"), last=utc("2026-01-01T03:00"))
    assert decision.action is TickAction.SKIP
    assert decision.reason is TickReason.MISSED_DEADLINE
    assert decision.scheduled_time == utc("2026-01-02T03:00")
    assert decision.missed_ticks == 1
    assert decision.next_schedule_time == utc("2026-01-03T03:00")


def test_a_schedule_down_for_days_counts_its_missed_ticks_and_warns_past_a_hundred() -> None:
    minutely = ScheduleTiming("* * * * *")
    few = decide(minutely, utc("2026-01-01T00:50:30"), last=utc("2026-01-01T00:00"))
    assert (few.missed_ticks, few.too_many_missed) == (49, False)
    many = decide(minutely, utc("2026-03-01T00:00:30"), last=utc("2026-01-01T00:00"))
    assert many.scheduled_time == utc("2026-03-01T00:00")
    assert many.too_many_missed
    assert many.missed_ticks == 101  # counting stops just past the warning threshold


def test_a_clock_set_years_ahead_still_decides_quickly() -> None:
    yearly = ScheduleTiming("0 0 1 1 *")
    decision = decide(yearly, utc("2046-06-01T00:00"), last=utc("2026-01-01T00:00"))
    assert decision.scheduled_time == utc("2046-01-01T00:00")
    assert decision.missed_ticks == 19


# -- concurrency policy and suspend ---------------------------------------------------------


@pytest.mark.parametrize(("policy", "action", "reason", "cancel"), [
    (ConcurrencyPolicy.ALLOW, TickAction.CREATE, TickReason.DUE, ()),
    (ConcurrencyPolicy.FORBID, TickAction.SKIP, TickReason.JOB_ALREADY_ACTIVE, ()),
    (ConcurrencyPolicy.REPLACE, TickAction.CREATE, TickReason.DUE,
     ("quran-daily-old-1", "quran-daily-old-2")),
])
def test_a_due_tick_with_an_active_job_follows_the_concurrency_policy(
        policy: ConcurrencyPolicy, action: TickAction, reason: TickReason,
        cancel: tuple[str, ...]) -> None:
    timing = ScheduleTiming("0 3 * * *", concurrency_policy=policy)
    decision = decide(timing, utc("2026-01-02T03:00:01"), last=utc("2026-01-01T03:00"),
                      active=("quran-daily-old-2", "quran-daily-old-1"))
    assert (decision.action, decision.reason, decision.cancel) == (action, reason, cancel)


def test_forbid_starts_the_tick_late_once_the_active_job_is_gone() -> None:
    timing = ScheduleTiming("0 3 * * *", concurrency_policy=ConcurrencyPolicy.FORBID)
    last = utc("2026-01-01T03:00")
    busy = decide(timing, utc("2026-01-02T03:00:01"), last=last, active=("old",))
    free = decide(timing, utc("2026-01-02T03:20:00"), last=last)
    assert busy.action is TickAction.SKIP
    assert free.action is TickAction.CREATE
    assert free.scheduled_time == busy.scheduled_time


def test_the_job_of_this_very_tick_being_active_means_it_already_started() -> None:
    name = job_name_for("quran-daily", utc("2026-01-02T03:00"))
    timing = ScheduleTiming("0 3 * * *", concurrency_policy=ConcurrencyPolicy.REPLACE)
    decision = decide(timing, utc("2026-01-02T03:00:05"), last=utc("2026-01-01T03:00"),
                      active=(name,))
    assert decision.action is TickAction.WAIT  # never cancel the job of the tick itself
    assert decision.reason is TickReason.ALREADY_STARTED
    assert decision.job_name == name


def test_a_suspended_schedule_does_nothing_and_needs_no_wake_up() -> None:
    timing = ScheduleTiming("0 3 * * *", suspend=True)
    decision = decide(timing, utc("2026-01-02T03:00:01"), last=utc("2026-01-01T03:00"))
    assert decision == TickDecision(TickAction.WAIT, TickReason.SUSPENDED)


def test_timing_reads_a_syncschedule_spec_as_a_dict_or_as_the_model() -> None:
    spec = {"jobType": "quran", "schedule": "0 3 * * *", "timeZone": "Europe/Berlin",
            "suspend": False, "concurrencyPolicy": "Replace", "startingDeadlineSeconds": 300,
            "priority": 1}
    expected = ScheduleTiming("0 3 * * *", "Europe/Berlin", False, ConcurrencyPolicy.REPLACE, 300)
    assert ScheduleTiming.from_spec(spec) == expected
    assert ScheduleTiming.from_spec(SyncScheduleSpec.model_validate(spec)) == expected


def test_timing_defaults_are_the_crds_defaults() -> None:
    defaults = SyncScheduleSpec.model_validate({"jobType": "quran", "schedule": "@daily"})
    assert ScheduleTiming.from_spec({"schedule": "@daily"}) == ScheduleTiming("@daily")
    assert ScheduleTiming.from_spec(defaults) == ScheduleTiming("@daily")


def test_decisions_are_plain_values() -> None:
    first = decide(DAILY_3AM, utc("2026-01-01T03:00:01"))
    assert first == decide(DAILY_3AM, utc("2026-01-01T03:00:01"))
    with pytest.raises(AttributeError):
        first.action = TickAction.SKIP  # type: ignore[misc]
