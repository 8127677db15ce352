"""prayer end to end: reference data checked first, times upserted into real PostgreSQL
under the lock, progress per combination, resume, failing cities, the threshold."""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from task_harness import FAST_LOCK, TaskRun, count, load_checkpoint, query, run_task

from sync_runner.sdk import FatalTaskError, StopRequested
from sync_runner.services import Services
from sync_runner.tasks.prayer import PrayerTask
from testkit.servers import RedisServer

pytestmark = pytest.mark.timeout(60)

DATA = Path(str(resources.files("sync_runner.data")))
SMALL = {"cities": ["makkah", "cairo", "london"], "methods": ["MWL", "MAKKAH"],
         "madhabs": ["shafi", "hanafi"], "dateFrom": "2026-03-01", "dateTo": "2026-03-03",
         **FAST_LOCK}


async def prayer(redis_server: RedisServer, database_url: str | None, uid: str,
                 today: dt.date | None = None, **params: Any) -> tuple[dict[str, Any], TaskRun]:
    return await run_task(PrayerTask(Services(redis_url=redis_server.url), today=today),
                          uid=uid, redis_url=redis_server.url, database_url=database_url,
                          job_type="prayer", params={**SMALL, **params})


def data_dir(tmp_path: Path, *, cities: int | None = None, extra: str = "") -> Path:
    """A copy of the shipped data, cut to `cities` cities and/or with extra city rows."""
    target = tmp_path / "prayer-data"
    target.mkdir()
    for name in ("methods.json", "madhabs.json"):
        shutil.copy(DATA / name, target / name)
    lines = [line for line in (DATA / "cities.csv").read_text().splitlines()
             if not line.startswith("#")]
    kept = lines if cities is None else lines[:cities + 1]
    (target / "cities.csv").write_text("\n".join(kept) + "\n" + extra)
    return target


async def test_prayer_task_writes_one_row_per_city_method_madhab_and_date(
        redis_server: RedisServer, content_db: str, uid: str) -> None:
    summary, _run = await prayer(redis_server, content_db, uid)

    assert summary["combinations"] == 12
    assert summary["days"] == 3
    assert summary["counts"] == {"fetched": 36, "upserted": 36, "inserted": 36, "updated": 0,
                                 "unchanged": 0, "skipped": 0, "warnings": 0}
    assert summary["lock"] == "sync:lock:prayer:times"
    assert await count(content_db, "prayer_times") == 36
    (row,) = await query(content_db, "SELECT * FROM prayer_times WHERE city_id = 'makkah' AND "
                         "method = 'MAKKAH' AND madhab = 'shafi' AND date = '2026-03-02'")
    assert row["time_zone"] == "Asia/Riyadh"
    assert row["isha"] - row["maghrib"] == dt.timedelta(minutes=90)
    assert row["fajr"] < row["sunrise"] < row["dhuhr"] < row["asr"] < row["maghrib"]
    assert row["fence_token"] == summary["fence"]


async def test_progress_is_reported_per_combination(
        redis_server: RedisServer, content_db: str, uid: str) -> None:
    _, run = await prayer(redis_server, content_db, uid)

    reports = run.recorder.progress
    assert {p.unit for p in reports} == {"combinations"}
    assert {p.total for p in reports} == {12}
    assert [p.done for p in reports if "done" not in p.message][1:] == list(range(1, 13))
    assert reports[-1].done == 12


async def test_a_rerun_is_idempotent(
        redis_server: RedisServer, content_db: str) -> None:
    await prayer(redis_server, content_db, "run-1")
    before = await query(content_db, "SELECT * FROM prayer_times ORDER BY id")

    again, _ = await prayer(redis_server, content_db, "run-2")

    assert again["counts"]["unchanged"] == 36
    assert again["counts"]["upserted"] == 0
    assert await query(content_db, "SELECT * FROM prayer_times ORDER BY id") == before


async def test_a_paused_job_resumes_at_the_first_city_not_done_without_duplicates(
        redis_server: RedisServer, content_db: str, uid: str) -> None:
    with pytest.raises(StopRequested):  # paused once the first city is done
        await run_task(PrayerTask(Services(redis_url=redis_server.url)), uid=uid,
                       redis_url=redis_server.url, database_url=content_db, job_type="prayer",
                       params=SMALL, pause_when=lambda p: p.done >= 4 and "done" in p.message)
    checkpoint = await load_checkpoint(redis_server.url, uid)
    assert checkpoint is not None
    assert checkpoint.data["nextCity"] == 1
    assert await count(content_db, "prayer_times") == 12

    summary, run = await prayer(redis_server, content_db, uid)

    assert summary["resumedFromCity"] == 1
    assert run.recorder.progress[0].done == 4  # starts where the first pod stopped
    assert summary["counts"]["inserted"] == 36
    assert await count(content_db, "prayer_times") == 36


async def test_a_city_that_cannot_be_computed_is_a_warning_and_the_rest_continues(
        redis_server: RedisServer, content_db: str, uid: str, tmp_path: Path) -> None:
    data = data_dir(tmp_path, extra="longyearbyen,Longyearbyen,SJ,78.2232,15.6267,"
                                     "Arctic/Longyearbyen\n")

    summary, run = await prayer(redis_server, content_db, uid, dataDir=str(data),
                                cities=["makkah", "longyearbyen", "cairo", "london"],
                                dateFrom="2026-12-20", dateTo="2026-12-21",
                                maxFailureRatio=0.25)

    assert summary["failedCities"] == ["longyearbyen"]
    assert summary["counts"]["skipped"] == 8
    assert summary["counts"]["upserted"] == 24
    count_, messages = run.ctx.warnings
    assert count_ == 1
    assert "longyearbyen (Longyearbyen) skipped: no sunrise" in messages[0]
    cities = await query(content_db, "SELECT DISTINCT city_id FROM prayer_times ORDER BY 1")
    assert [c["city_id"] for c in cities] == ["cairo", "london", "makkah"]


async def test_too_many_failed_cities_fail_the_job_for_good(
        redis_server: RedisServer, content_db: str, uid: str, tmp_path: Path) -> None:
    data = data_dir(tmp_path, extra="longyearbyen,Longyearbyen,SJ,78.2232,15.6267,"
                                     "Arctic/Longyearbyen\n")

    with pytest.raises(FatalTaskError) as raised:
        await prayer(redis_server, content_db, uid, dataDir=str(data),
                     cities=["makkah", "longyearbyen"], dateFrom="2026-12-21",
                     dateTo="2026-12-21")

    assert raised.value.reason == "TooManyFailures"
    assert "1 of 2 cities skipped (50.0%)" in raised.value.message


async def test_ten_cities_fail_the_prerequisites_before_any_work(
        redis_server: RedisServer, content_db: str, uid: str, tmp_path: Path) -> None:
    data = data_dir(tmp_path, cities=10)

    with pytest.raises(FatalTaskError) as raised:
        await prayer(redis_server, content_db, uid, dataDir=str(data), cities=None)

    assert raised.value.reason == "PrerequisitesMissing"
    assert "cities.csv has 10 valid cities" in raised.value.message
    assert "at least 100 are needed" in raised.value.message
    assert await count(content_db, "prayer_times") == 0
    assert await load_checkpoint(redis_server.url, uid) is None


async def test_the_data_directory_may_come_from_the_environment(
        redis_server: RedisServer, content_db: str, uid: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_PRAYER_DATA_DIR", str(data_dir(tmp_path, cities=10)))

    with pytest.raises(FatalTaskError, match="PrerequisitesMissing"):
        await prayer(redis_server, content_db, uid, cities=None)


async def test_no_database_fails_the_prerequisites(
        redis_server: RedisServer, uid: str) -> None:
    with pytest.raises(FatalTaskError) as raised:
        await prayer(redis_server, None, uid)

    assert raised.value.reason == "PrerequisitesMissing"
    assert "SYNC_DATABASE_URL" in raised.value.message


async def test_the_default_range_is_today_and_the_next_thirty_days(
        redis_server: RedisServer, content_db: str, uid: str) -> None:
    summary, _ = await prayer(redis_server, content_db, uid, today=dt.date(2026, 2, 10),
                              dateFrom=None, dateTo=None, cities=["doha"], methods=["QATAR"],
                              madhabs=["shafi"])

    assert (summary["dateFrom"], summary["dateTo"], summary["days"]) == (
        "2026-02-10", "2026-03-12", 31)
    assert await count(content_db, "prayer_times") == 31


@pytest.mark.parametrize(("params", "complaint"), [
    ({"dateFrom": "2026-03-05", "dateTo": "2026-03-01"}, "is before dateFrom"),
    ({"dateFrom": "2026-01-01", "dateTo": "2027-01-02"}, "spans 367 days"),
    ({"cities": ["atlantis"]}, "unknown cities: atlantis"),
    ({"methods": ["NOPE"]}, "unknown methods: NOPE"),
    ({"maxFailureRatio": 2}, "maxFailureRatio"),
])
async def test_bad_params_fail_with_invalid_params(
        redis_server: RedisServer, content_db: str, uid: str, params: dict[str, Any],
        complaint: str) -> None:
    with pytest.raises(FatalTaskError) as raised:
        await prayer(redis_server, content_db, uid, **params)

    assert raised.value.reason == "InvalidParams"
    assert complaint in raised.value.message


async def test_the_full_catalogue_for_a_day_fits_in_a_few_seconds(
        redis_server: RedisServer, content_db: str, uid: str) -> None:
    summary, _ = await prayer(redis_server, content_db, uid, cities=None, methods=None,
                              madhabs=None, dateFrom="2026-04-01", dateTo="2026-04-01")

    assert summary["cities"] >= 100
    assert summary["methods"] >= 15
    assert summary["counts"]["inserted"] == summary["combinations"]
    assert summary["counts"]["warnings"] == 0
