"""Cron ticks are the ones a Kubernetes CronJob would get, in any time zone, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sync_operator.syncschedule import next_tick, parse_schedule, ticks_between, validate


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def stamps(ticks: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%dT%H:%M") for t in ticks]


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("expression", [
    "0 3 * * *", "0 */6 * * *", "0 2 * * 0", "*/15 1-5 ? JAN-MAR mon-fri", "5/15 * * * *",
    "0 0 1,15 * *", "@daily", "@hourly", "@weekly", "@yearly", "0 0 29 2 *",
])
def test_standard_cron_expressions_are_accepted(expression: str) -> None:
    validate(expression, "Europe/Berlin")


@pytest.mark.parametrize(("expression", "complaint"), [
    ("", "expected 5 fields"),
    ("0 3 * *", "expected 5 fields"),
    ("0 0 3 * * *", "expected 5 fields"),
    ("0 0 1 1 * 2026", "expected 5 fields"),
    ("61 * * * *", "minute value 61 is outside 0-59"),
    ("0 24 * * *", "hour value 24"),
    ("0 0 0 * *", "day of month value 0"),
    ("0 0 * 13 *", "month value 13"),
    ("0 0 * * 7", "use 0 for Sunday"),
    ("50-10 * * * *", "runs backwards"),
    ("*/0 * * * *", "step in minute field must be positive"),
    ("0 0 L * *", "'l' is not a valid day of month"),
    ("0 0 * * 5#3", "invalid day of week field"),
    ("0 0 15W * *", "is not a valid day of month"),
    ("H 0 * * *", "is not a valid minute"),
    ("0 0 * * funday", "is not a valid day of week"),
    ("@every 1h", "@every is not supported"),
    ("@fortnightly", "unknown descriptor"),
    ("TZ=UTC 0 3 * * *", "set timeZone instead"),
    ("CRON_TZ=UTC 0 3 * * *", "set timeZone instead"),
    ("0 0 30 2 *", "never run"),
    ("0 0 31 4,6,9,11 *", "never run"),
])
def test_invalid_expressions_are_rejected_with_a_clear_message(expression: str,
                                                               complaint: str) -> None:
    with pytest.raises(ValueError, match="schedule") as caught:
        validate(expression, "UTC")
    assert complaint in str(caught.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "Local", "europe/berlin",
                                  "/etc/passwd", "../etc"])
def test_unknown_time_zones_are_rejected(zone: str) -> None:
    with pytest.raises(ValueError, match="timeZone"):
        validate("0 3 * * *", zone)


def test_a_restricted_day_of_week_makes_an_impossible_day_of_month_possible() -> None:
    # Both day fields restricted means "either": every Monday in February (or a 30th).
    validate("0 0 30 2 1", "UTC")
    assert next_tick("0 0 30 2 1", "UTC", utc("2026-01-01T00:00")) == utc("2026-02-02T00:00")


# -- plain ticks ----------------------------------------------------------------------------


def test_next_tick_is_strictly_after_and_in_utc() -> None:
    tick = next_tick("0 3 * * *", "UTC", utc("2026-05-01T03:00"))
    assert tick == utc("2026-05-02T03:00")
    assert tick is not None
    assert tick.utcoffset() == timedelta(0)


def test_next_tick_accepts_any_aware_time_and_rejects_naive_ones() -> None:
    berlin_noon = datetime.fromisoformat("2026-05-01T12:00:00+02:00")
    assert next_tick("0 3 * * *", "UTC", berlin_noon) == utc("2026-05-02T03:00")
    with pytest.raises(ValueError, match="aware"):
        next_tick("0 3 * * *", "UTC", datetime(2026, 5, 1))


def test_the_five_defaults_tick_when_the_original_system_ran_them() -> None:
    start, end = utc("2026-06-06T23:59"), utc("2026-06-08T00:00")  # Sat night .. Mon 00:00
    assert stamps(ticks_between("0 3 * * *", "UTC", start, end)) == ["2026-06-07T03:00"]
    assert stamps(ticks_between("0 */6 * * *", "UTC", start, end)) == [
        "2026-06-07T00:00", "2026-06-07T06:00", "2026-06-07T12:00", "2026-06-07T18:00",
        "2026-06-08T00:00"]
    assert stamps(ticks_between("0 2 * * 0", "UTC", start, end)) == ["2026-06-07T02:00"]
    assert stamps(ticks_between("0 4 * * 0", "UTC", start, end)) == ["2026-06-07T04:00"]
    assert stamps(ticks_between("0 4 * * *", "UTC", start, end)) == ["2026-06-07T04:00"]


def test_ticks_between_excludes_the_start_and_includes_the_end() -> None:
    ticks = ticks_between("0 * * * *", "UTC", utc("2026-01-01T00:00"), utc("2026-01-01T02:00"))
    assert stamps(ticks) == ["2026-01-01T01:00", "2026-01-01T02:00"]


def test_a_local_time_schedule_follows_the_zone_offset_through_the_year() -> None:
    # 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer.
    assert next_tick("0 3 * * *", "Europe/Berlin", utc("2026-01-10T12:00")) == utc(
        "2026-01-11T02:00")
    assert next_tick("0 3 * * *", "Europe/Berlin", utc("2026-07-10T12:00")) == utc(
        "2026-07-11T01:00")


def test_a_never_matching_day_gives_no_tick_within_five_years_like_robfig() -> None:
    leap = parse_schedule("0 0 29 2 *", "UTC")
    assert leap.next_after(utc("2026-03-01T00:00")) == utc("2028-02-29T00:00")


# -- DST, as a CronJob does it (robfig/cron v3 SpecSchedule.Next) ---------------------------
#
# Expected values were produced by github.com/robfig/cron/v3 v3.0.1 itself:
#   cron.ParseStandard("TZ=<zone> <expr>").Next(t), repeatedly, printed in UTC.
ROBFIG_REFERENCE = [
    # Europe/Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC).
    ("Europe/Berlin", "0 2 * * *", "2026-03-27T12:00",
     ["2026-03-28T01:00", "2026-03-30T00:00", "2026-03-31T00:00"]),
    ("Europe/Berlin", "30 2 * * *", "2026-03-27T12:00",
     ["2026-03-28T01:30", "2026-03-30T00:30", "2026-03-31T00:30"]),
    ("Europe/Berlin", "0 * * * *", "2026-03-28T23:20",
     ["2026-03-29T00:00", "2026-03-29T01:00", "2026-03-29T02:00", "2026-03-29T03:00"]),
    ("Europe/Berlin", "0 */6 * * *", "2026-03-28T12:00",
     ["2026-03-28T17:00", "2026-03-28T23:00", "2026-03-29T04:00", "2026-03-29T10:00"]),
    # Europe/Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
    ("Europe/Berlin", "0 2 * * *", "2026-10-23T12:00",
     ["2026-10-24T00:00", "2026-10-25T00:00", "2026-10-25T01:00", "2026-10-26T01:00"]),
    ("Europe/Berlin", "30 2 * * *", "2026-10-23T12:00",
     ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-25T01:30", "2026-10-26T01:30"]),
    ("Europe/Berlin", "30 1 * * *", "2026-10-23T12:00",
     ["2026-10-23T23:30", "2026-10-24T23:30", "2026-10-26T00:30", "2026-10-27T00:30"]),
    ("Europe/Berlin", "0 */6 * * *", "2026-10-24T12:00",
     ["2026-10-24T16:00", "2026-10-24T22:00", "2026-10-25T05:00", "2026-10-25T11:00"]),
    ("Europe/Berlin", "*/30 * * * *", "2026-10-24T23:20",
     ["2026-10-24T23:30", "2026-10-25T00:00", "2026-10-25T00:30", "2026-10-25T01:00",
      "2026-10-25T01:30", "2026-10-25T02:00"]),
    # America/New_York springs forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
    ("America/New_York", "30 2 * * *", "2026-03-06T12:00",
     ["2026-03-07T07:30", "2026-03-09T06:30", "2026-03-10T06:30"]),
    ("America/New_York", "0 2 * * *", "2026-03-06T12:00",
     ["2026-03-07T07:00", "2026-03-09T06:00", "2026-03-10T06:00"]),
    ("America/New_York", "0 */6 * * *", "2026-03-07T12:00",
     ["2026-03-07T17:00", "2026-03-07T23:00", "2026-03-08T05:00", "2026-03-08T10:00"]),
    # America/New_York falls back 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).
    ("America/New_York", "30 1 * * *", "2026-10-30T12:00",
     ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-01T06:30", "2026-11-02T06:30"]),
    ("America/New_York", "0 1 * * *", "2026-10-30T12:00",
     ["2026-10-31T05:00", "2026-11-01T05:00", "2026-11-01T06:00", "2026-11-02T06:00"]),
    ("America/New_York", "0 */6 * * *", "2026-10-31T12:00",
     ["2026-10-31T16:00", "2026-10-31T22:00", "2026-11-01T04:00", "2026-11-01T11:00"]),
    # Midnight that does not exist (Sao Paulo, 2018-11-04 00:00 -> 01:00) is skipped.
    ("America/Sao_Paulo", "0 0 * * *", "2018-11-02T12:00",
     ["2018-11-03T03:00", "2018-11-05T02:00", "2018-11-06T02:00"]),
    # Half-hour DST (Lord Howe) and a 45-minute offset (Kathmandu).
    ("Australia/Lord_Howe", "0,15,30,45 2 * * *", "2026-10-02T12:00",
     ["2026-10-02T15:30", "2026-10-02T15:45", "2026-10-02T16:00", "2026-10-02T16:15",
      "2026-10-03T15:30"]),
    ("Asia/Kathmandu", "0 3 * * *", "2026-01-01T00:00", ["2026-01-01T21:15", "2026-01-02T21:15"]),
    # Both day fields restricted: either matches; "*/10" in the day of month is no star.
    ("UTC", "0 0 */10 * 1", "2026-01-01T00:00",
     ["2026-01-05T00:00", "2026-01-11T00:00", "2026-01-12T00:00", "2026-01-19T00:00"]),
    ("UTC", "0 0 * * */2", "2026-01-01T00:00",
     ["2026-01-03T00:00", "2026-01-04T00:00", "2026-01-06T00:00", "2026-01-08T00:00"]),
]


@pytest.mark.parametrize(("zone", "expression", "start", "expected"), ROBFIG_REFERENCE,
                         ids=[f"{z}|{e}|{s}" for z, e, s, _ in ROBFIG_REFERENCE])
def test_ticks_match_what_robfig_cron_gives_a_cronjob(zone: str, expression: str, start: str,
                                                     expected: list[str]) -> None:
    schedule = parse_schedule(expression, zone)
    ticks, after = [], utc(start)
    for _ in expected:
        tick = schedule.next_after(after)
        assert tick is not None
        ticks.append(tick)
        after = tick
    assert stamps(ticks) == expected


def test_a_time_in_the_skipped_spring_hour_does_not_run_that_day_in_berlin() -> None:
    day = ticks_between("0 2 * * *", "Europe/Berlin", utc("2026-03-28T12:00"),
                        utc("2026-03-29T22:00"))
    assert day == []


def test_a_time_in_the_repeated_autumn_hour_runs_twice_in_berlin() -> None:
    day = ticks_between("0 2 * * *", "Europe/Berlin", utc("2026-10-24T22:00"),
                        utc("2026-10-25T22:00"))
    # 02:00 CEST and 02:00 CET: kubernetes/kubernetes#121594
    assert stamps(day) == ["2026-10-25T00:00", "2026-10-25T01:00"]


def test_a_time_outside_the_repeated_hour_runs_once_in_new_york() -> None:
    day = ticks_between("30 2 * * *", "America/New_York", utc("2026-11-01T04:00"),
                        utc("2026-11-02T04:00"))
    assert stamps(day) == ["2026-11-01T07:30"]  # 02:30 EST, after the repeated 01:xx hour


@pytest.mark.parametrize("day", ["2026-03-08", "2026-11-01"])
def test_every_six_hours_runs_at_the_four_local_hours_on_both_change_days(day: str) -> None:
    zone = ZoneInfo("America/New_York")
    midnight = datetime.fromisoformat(day).replace(tzinfo=zone)
    next_midnight = (midnight + timedelta(days=1)).replace(tzinfo=zone)  # wall-clock day
    ticks = ticks_between("0 */6 * * *", "America/New_York",
                          midnight - timedelta(minutes=1), next_midnight - timedelta(minutes=1))
    assert [t.astimezone(zone).hour for t in ticks] == [0, 6, 12, 18]
