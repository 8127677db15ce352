"""prayer: compute prayer times for cities x methods x madhabs over a date range.

The times come from the PrayTimes algorithm (sync_runner.praytimes.calculator, whose
docstring says why it is ours and not a PyPI library) and the shipped reference data
(checked first: PrerequisitesMissing if it cannot serve). They are upserted into
prayer_times, one row per (city, method, madhab, date), under the lock
sync:lock:prayer:times.

params (besides content.params.SyncParams: maxFailureRatio, lockPolicy, ...):
  dateFrom, dateTo   ISO dates; default today (UTC) and dateFrom + 30 days; at most
                     366 days in all
  cities, methods, madhabs   lists of ids to restrict to (default: all)
  dataDir            a directory with cities.csv, methods.json, madhabs.json to use
                     instead of the shipped ones (also SYNC_PRAYER_DATA_DIR)

Progress counts combinations (city, method, madhab); the unit of work and of the
checkpoint is a city (all its combinations in one transaction), so a resumed job
starts at the first city not done. A city whose times cannot be computed (the sun
does not rise or set there in the range) is a warning and is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import Field

from sync_runner.content.models import PrayerTime
from sync_runner.content.params import SyncParams, parse_params
from sync_runner.content.session import PrerequisitesMissing, SyncSession, sync_session
from sync_runner.content.tally import Counts, enforce_threshold
from sync_runner.praytimes.calculator import City, Madhab, Method, UndefinedTimeError, compute_day
from sync_runner.praytimes.reference import (
    PrerequisitesMissingError,
    ReferenceData,
    data_dir,
    load_reference,
)
from sync_runner.sdk import FatalTaskError, TaskContext
from sync_runner.services import Services
from sync_runner.tasks import register

DEFAULT_DAYS = 31  # today and the next 30 days
MAX_DAYS = 366
UNIT = "combinations"
T = TypeVar("T")


class PrayerParams(SyncParams):
    date_from: dt.date | None = Field(default=None, alias="dateFrom")
    date_to: dt.date | None = Field(default=None, alias="dateTo")
    cities: list[str] | None = Field(default=None, min_length=1)
    methods: list[str] | None = Field(default=None, min_length=1)
    madhabs: list[str] | None = Field(default=None, min_length=1)
    data_dir: str | None = Field(default=None, alias="dataDir")

    def date_range(self, today: dt.date) -> list[dt.date]:
        first = self.date_from or today
        last = self.date_to or first + dt.timedelta(days=DEFAULT_DAYS - 1)
        if last < first:
            raise FatalTaskError("InvalidParams", f"dateTo {last} is before dateFrom {first}")
        days = (last - first).days + 1
        if days > MAX_DAYS:
            raise FatalTaskError("InvalidParams", f"{first}..{last} spans {days} days; at most "
                                 f"{MAX_DAYS} per job (split the range over several jobs)")
        return [first + dt.timedelta(days=n) for n in range(days)]


def _select(kind: str, known: Mapping[str, T], wanted: list[str] | None) -> list[T]:
    if wanted is None:
        return list(known.values())
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise FatalTaskError("InvalidParams",
                             f"unknown {kind}: {', '.join(unknown)} (known: "
                             f"{', '.join(list(known)[:30])}{', ...' if len(known) > 30 else ''})")
    return [known[w] for w in dict.fromkeys(wanted)]


def _row(city: City, method: Method, madhab: Madhab, day: dt.date) -> dict[str, Any]:
    times = compute_day(city, method, madhab, day)
    return {"city_id": city.id, "method": method.id, "madhab": madhab.id, "date": day,
            "time_zone": city.time_zone, "fajr": times.fajr, "sunrise": times.sunrise,
            "dhuhr": times.dhuhr, "asr": times.asr, "maghrib": times.maghrib,
            "isha": times.isha}


def _plan(days: Sequence[dt.date], cities: Sequence[City], methods: Sequence[Method],
          madhabs: Sequence[Madhab]) -> str:
    raw = json.dumps([days[0].isoformat(), days[-1].isoformat(), [c.id for c in cities],
                      [m.id for m in methods], [h.id for h in madhabs]])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@register("prayer")
class PrayerTask:
    job_type = "prayer"

    def __init__(self, services: Services | None = None,
                 today: dt.date | None = None) -> None:
        self.services = services if services is not None else Services.from_environ()
        self.today = today

    def _reference(self, params: PrayerParams) -> ReferenceData:
        try:
            return load_reference(data_dir(params.data_dir))
        except PrerequisitesMissingError as exc:
            raise PrerequisitesMissing(str(exc)) from exc

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        params = parse_params(PrayerParams, ctx)
        days = params.date_range(self.today or dt.datetime.now(dt.UTC).date())
        reference = self._reference(params)
        for rejected in reference.rejected:
            ctx.warn(f"reference row left out: {rejected}")
        cities = _select("cities", reference.cities, params.cities)
        methods = _select("methods", reference.methods, params.methods)
        madhabs = _select("madhabs", reference.madhabs, params.madhabs)

        plan = _plan(days, cities, methods, madhabs)
        saved = ctx.checkpoint if ctx.checkpoint and ctx.checkpoint.get("plan") == plan else {}
        if ctx.checkpoint and not saved:
            ctx.log("prayer.checkpoint_ignored", reason="dates, cities, methods or madhabs changed")
        start = int(saved.get("nextCity", 0))
        counts = Counts.from_checkpoint(saved.get("counts"))
        failed: list[str] = list(saved.get("failedCities", []))
        per_city = len(methods) * len(madhabs)
        total = len(cities) * per_city
        if start:
            ctx.log("prayer.resuming", next_city=start, of=len(cities))

        async with sync_session(ctx, self.services, resource="times",
                                tables=[PrayerTime.__tablename__], params=params) as session:
            await ctx.progress(start * per_city, total, UNIT, f"starting at city {start + 1}")
            for index in range(start, len(cities)):
                await ctx.safe_point()
                session.check()
                counts = await self._city(ctx, session, cities[index], methods, madhabs, days,
                                          index * per_city, total, counts, failed)
                await ctx.progress((index + 1) * per_city, total, UNIT,
                                   f"{cities[index].name} done ({index + 1}/{len(cities)})")
                await ctx.save_checkpoint({"plan": plan, "nextCity": index + 1,
                                           "counts": counts.to_checkpoint(),
                                           "failedCities": failed})
            ratio = enforce_threshold(what="cities", skipped=len(failed), expected=len(cities),
                                      unreachable=0, max_ratio=params.max_failure_ratio)
            warnings, _ = ctx.warnings
            return {
                "dateFrom": days[0].isoformat(), "dateTo": days[-1].isoformat(),
                "days": len(days), "cities": len(cities), "methods": len(methods),
                "madhabs": len(madhabs), "combinations": total, "failedCities": failed,
                "resumedFromCity": start, "failureRatio": round(ratio, 4),
                "lock": session.fence.resource, "fence": session.fence.token,
                "counts": counts.summary(skipped=len(failed) * per_city * len(days),
                                         warnings=warnings),
            }

    @staticmethod
    async def _city(ctx: TaskContext, session: SyncSession, city: City,
                    methods: Sequence[Method], madhabs: Sequence[Madhab],
                    days: Sequence[dt.date], done: int, total: int, counts: Counts,
                    failed: list[str]) -> Counts:
        """Compute and upsert one city's rows; a city that cannot be computed is skipped."""
        rows: list[dict[str, Any]] = []
        try:
            for method in methods:
                for madhab in madhabs:
                    rows.extend(_row(city, method, madhab, day) for day in days)
                    done += 1
                    await ctx.progress(done, total, UNIT, f"{city.name} {method.id} {madhab.id}")
        except (UndefinedTimeError, ValueError, ArithmeticError) as exc:
            ctx.warn(f"city {city.id} ({city.name}) skipped: {exc}")
            if city.id not in failed:
                failed.append(city.id)
            return counts
        result = await session.store.upsert(PrayerTime, rows, session.fence)
        return counts.with_upsert(len(rows), 0, result)
