"""Cron expressions, evaluated in a time zone exactly as a Kubernetes CronJob evaluates them.

The CronJob controller parses ``TZ=<timeZone> <schedule>`` with robfig/cron v3
(``ParseStandard``) and steps with ``SpecSchedule.Next``. This module parses the same
grammar and ports ``Next`` statement for statement, so users get CronJob's behaviour,
including around daylight-saving changes:

* Spring forward: a wall time inside the skipped hour does not exist that day and is
  skipped, not moved (``0 2 * * *`` in Europe/Berlin does not run on 2026-03-29;
  the next run is 2026-03-30 02:00 CEST).
* Fall back: a wall time inside the repeated hour runs twice, once per UTC offset
  (``0 2 * * *`` in Europe/Berlin runs on 2026-10-25 at 02:00 CEST and again at
  02:00 CET). Upstream tracks this as kubernetes/kubernetes#121594 (open).
* Schedules whose hour is a wildcard keep their real-time cadence through both.

Checked against github.com/robfig/cron/v3 v3.0.1 (the version Kubernetes 1.37 vendors)
by running both on thousands of random schedules around 2026's transitions.

Syntax is robfig's standard syntax: five fields (``?`` as ``*``, ``JAN``-``DEC``,
``SUN``-``SAT``, ranges, steps, lists, day of week 0-6) or one of the descriptors
``@yearly @annually @monthly @weekly @daily @midnight @hourly``. Extensions CronJob
rejects (seconds or year fields, ``L``, ``W``, ``#``, ``H``, ``@every``, wrap-around
ranges, 7 for Sunday) are rejected too. croniter is deliberately not used for parsing:
7.0 expands a one-value range such as ``12-12`` to ``*`` and accepts those extensions.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_WEEKDAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, _MONTHS, _WEEKDAYS)
_PART = re.compile(r"^(?P<base>\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")
# robfig gives up after five years without a match (e.g. "0 0 30 2 *").
_YEAR_LIMIT = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field, and its time zone."""

    expression: str
    zone: ZoneInfo
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    # robfig's "star bit": with a "*" (or "?") in either day field, both day fields
    # must match (AND); when both are restricted, either may match (OR).
    day_of_month_star: bool
    day_of_week_star: bool

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after `after` (aware UTC), or None if none within 5 years."""
        unix = _next(self, _unix(after))
        return None if unix is None else _EPOCH + timedelta(seconds=unix)

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Ticks strictly after `after`, in order, forever (or until none within 5 years)."""
        unix = _unix(after)
        while True:
            found = _next(self, unix)
            if found is None:
                return
            yield _EPOCH + timedelta(seconds=found)
            unix = found


def validate(expression: str, time_zone: str) -> None:
    """Raise ValueError, with a message fit for an admission response, if either is invalid."""
    parse_schedule(expression, time_zone)


def parse_schedule(expression: str, time_zone: str) -> CronSchedule:
    """Parse and check `expression` in the IANA zone `time_zone` (cached)."""
    return _parse(expression.strip(), time_zone)


def next_tick(expression: str, time_zone: str, after: datetime) -> datetime | None:
    """The first scheduled time strictly after `after`, as an aware UTC datetime."""
    return parse_schedule(expression, time_zone).next_after(after)


def ticks_between(expression: str, time_zone: str, start: datetime,
                  end: datetime) -> list[datetime]:
    """Scheduled times t with start < t <= end (the window CronJob looks at), in order."""
    ticks = []
    for tick in parse_schedule(expression, time_zone).iter_after(start):
        if tick > end:
            break
        ticks.append(tick)
    return ticks


@lru_cache(maxsize=512)
def _parse(expression: str, time_zone: str) -> CronSchedule:
    zone = _load_zone(time_zone)
    if "TZ" in expression:
        raise ValueError(
            f"schedule {expression!r}: TZ or CRON_TZ cannot be used in the schedule; "
            "set timeZone instead")
    if expression.startswith("@"):
        if expression.startswith("@every"):
            raise ValueError(f"schedule {expression!r}: @every is not supported; "
                             "use a five-field cron expression")
        if expression.lower() not in _DESCRIPTORS:
            raise ValueError(f"schedule {expression!r}: unknown descriptor; expected one of "
                             f"{', '.join(_DESCRIPTORS)}")
        expression_5 = _DESCRIPTORS[expression.lower()]
    else:
        expression_5 = expression
    fields = expression_5.lower().split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}")
    parsed = [_parse_field(expression, i, field) for i, field in enumerate(fields)]
    values = [v for v, _ in parsed]
    schedule = CronSchedule(
        expression=expression, zone=zone, minutes=values[0], hours=values[1],
        days_of_month=values[2], months=values[3], days_of_week=values[4],
        day_of_month_star=parsed[2][1], day_of_week_star=parsed[4][1],
    )
    _check_can_fire(schedule)
    return schedule


def _load_zone(time_zone: str) -> ZoneInfo:
    if not time_zone or time_zone == "Local":
        raise ValueError(f"timeZone {time_zone!r}: an IANA time zone name is required "
                         "(for example UTC or Europe/Berlin)")
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(f"timeZone {time_zone!r}: unknown time zone; use an IANA name "
                         "such as UTC, Europe/Berlin or America/New_York") from err


def _parse_field(expression: str, index: int, field: str) -> tuple[frozenset[int], bool]:
    """One field in robfig's grammar: its allowed values, and whether it has the star bit."""
    name, (low, high), names = _FIELDS[index], _BOUNDS[index], _NAMES[index]
    values: set[int] = set()
    star = False
    for part in field.split(","):
        match = _PART.match(part)
        if match is None:
            raise ValueError(f"schedule {expression!r}: invalid {name} field {field!r}")
        base, step_text = match["base"], match["step"]
        step = 1 if step_text is None else int(step_text)
        if step < 1:
            raise ValueError(f"schedule {expression!r}: step in {name} field must be positive")
        if base in ("*", "?"):
            start, end = low, high
            star = star or step == 1
        else:
            bounds = [_value(expression, name, atom, names) for atom in base.split("-")]
            for value in bounds:
                if not low <= value <= high:
                    hint = " (use 0 for Sunday)" if index == 4 and value == 7 else ""
                    raise ValueError(f"schedule {expression!r}: {name} value {value} is "
                                     f"outside {low}-{high}{hint}")
            start = bounds[0]
            # "N/step" means "N-max/step", as in robfig and Vixie cron.
            end = bounds[-1] if len(bounds) == 2 or step_text is None else high
            if start > end:
                raise ValueError(f"schedule {expression!r}: {name} range {base!r} runs "
                                 "backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def _value(expression: str, name: str, atom: str, names: dict[str, int]) -> int:
    if atom.isdigit():
        return int(atom)
    if atom in names:
        return names[atom]
    raise ValueError(f"schedule {expression!r}: {atom!r} is not a valid {name} "
                     "(L, W, # and H are not supported)")


def _check_can_fire(schedule: CronSchedule) -> None:
    """Reject schedules that can never match, like "0 0 30 2 *" (CronJob accepts, never runs)."""
    if not schedule.day_of_week_star or schedule.day_of_month_star:
        return  # the day of week alone (OR) or the day of month in every month (AND) decides
    longest = {m: calendar.monthrange(2024, m)[1] for m in schedule.months}  # 2024: leap year
    if not any(d <= longest[m] for m in schedule.months for d in schedule.days_of_month):
        raise ValueError(f"schedule {schedule.expression!r}: no month has that day, "
                         "so it would never run")


# -- robfig/cron v3 SpecSchedule.Next, ported over integer Unix seconds ------------------


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("cron times must be timezone-aware")
    return (moment - _EPOCH) // _SECOND


def _wall(zone: ZoneInfo, unix: int) -> datetime:
    return datetime.fromtimestamp(unix, zone)


def _offset(zone: ZoneInfo, unix: int) -> int:
    offset = _wall(zone, unix).utcoffset()
    assert offset is not None
    return offset // _SECOND


def _go_date(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0) -> int:
    """Go's time.Date: normalise overflowing month/day; resolve DST gaps and folds as Go does."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    day_start = date(year, month, 1) + timedelta(days=day - 1)
    wall_as_utc = calendar.timegm((day_start.year, day_start.month, day_start.day, hour, 0, 0))
    # Go looks up the offset at the wall time read as UTC, then re-checks it at the
    # corrected instant; the second lookup is the one it uses when the two disagree.
    return wall_as_utc - _offset(zone, wall_as_utc - _offset(zone, wall_as_utc))


def _add_date(zone: ZoneInfo, unix: int, months: int = 0, days: int = 0) -> int:
    """Go's t.AddDate: same wall clock, later calendar date."""
    w = _wall(zone, unix)
    year = w.year + (w.month - 1 + months) // 12
    month = (w.month - 1 + months) % 12 + 1
    day_start = date(year, month, 1) + timedelta(days=w.day - 1 + days)
    wall_as_utc = calendar.timegm(
        (day_start.year, day_start.month, day_start.day, w.hour, w.minute, w.second))
    return wall_as_utc - _offset(zone, wall_as_utc - _offset(zone, wall_as_utc))


def _day_matches(s: CronSchedule, w: datetime) -> bool:
    dom = w.day in s.days_of_month
    dow = (w.weekday() + 1) % 7 in s.days_of_week
    if s.day_of_month_star or s.day_of_week_star:
        return dom and dow
    return dom or dow


def _next(s: CronSchedule, after: int) -> int | None:
    """SpecSchedule.Next, statement for statement, so DST corner cases agree with CronJob."""
    zone = s.zone
    t = after + 1  # "the upcoming second"
    added = False
    year_limit = _wall(zone, t).year + _YEAR_LIMIT
    while True:  # WRAP:
        w = _wall(zone, t)
        if w.year > year_limit:
            return None

        wrapped = False
        while w.month not in s.months:
            if not added:
                added = True
                t = _go_date(zone, w.year, w.month, 1)
            t = _add_date(zone, t, months=1)
            w = _wall(zone, t)
            if w.month == 1:
                wrapped = True
                break
        if wrapped:
            continue

        while not _day_matches(s, w):
            if not added:
                added = True
                t = _go_date(zone, w.year, w.month, w.day)
            t = _add_date(zone, t, days=1)
            w = _wall(zone, t)
            # Midnight may not exist (DST at 00:00): land on the hour nearest to it.
            if w.hour != 0:
                t += (24 - w.hour) * 3600 if w.hour > 12 else -w.hour * 3600
                w = _wall(zone, t)
            if w.day == 1:
                wrapped = True
                break
        if wrapped:
            continue

        while w.hour not in s.hours:
            if not added:
                added = True
                t = _go_date(zone, w.year, w.month, w.day, w.hour)
            t += 3600
            w = _wall(zone, t)
            if w.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue

        while w.minute not in s.minutes:
            if not added:
                added = True
                t -= t % 60
            t += 60
            w = _wall(zone, t)
            if w.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue

        if w.second != 0:  # the seconds field is always "0" in the standard syntax
            added = True
            t += 60 - w.second
            continue
        return t
