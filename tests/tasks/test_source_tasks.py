"""quran, hadith, audio and finance end to end: the local source, real PostgreSQL and
Redis, the task run through the SDK as the runner runs it."""

from __future__ import annotations

from typing import Any

import pytest
from task_harness import FAST_HTTP, FAST_LOCK, count, load_checkpoint, query, run_task

from sync_runner.content.pipeline import SourceSyncTask, UpstreamUnavailableError
from sync_runner.content.tally import UpstreamDegradedError
from sync_runner.sdk import FatalTaskError, StopRequested
from sync_runner.services import Services
from sync_runner.tasks.audio import AudioTask
from sync_runner.tasks.finance import FinanceTask
from sync_runner.tasks.hadith import HadithTask
from sync_runner.tasks.quran import QuranTask
from testkit.servers import RedisServer
from testkit.source_server import Faults, SourceServer

pytestmark = pytest.mark.timeout(60)

TASKS: dict[str, tuple[type[SourceSyncTask], str, str, int]] = {
    "quran": (QuranTask, "quran/chapters", "quran_chapters", 114),
    "hadith": (HadithTask, "hadith/hadiths", "hadiths", 250),
    "audio": (AudioTask, "audio/tracks", "audio_tracks", 228),
    "finance": (FinanceTask, "finance/rates", "finance_rates", 240),
}
LOCKS = {"quran": "sync:lock:quran:chapters", "hadith": "sync:lock:hadith:hadiths",
         "audio": "sync:lock:audio:tracks", "finance": "sync:lock:finance:rates"}


async def sync(job_type: str, redis_server: RedisServer, content_db: str, uid: str,
               source: SourceServer | None, **params: Any) -> dict[str, Any]:
    task_class = TASKS[job_type][0]
    services = Services(redis_url=redis_server.url,
                        source_url=source.url if source is not None else None)
    summary, _ = await run_task(task_class(services), uid=uid, redis_url=redis_server.url,
                                database_url=content_db, job_type=job_type,
                                params={"pageSize": 50, **FAST_LOCK, **FAST_HTTP, **params})
    return summary


@pytest.mark.parametrize("job_type", list(TASKS))
async def test_each_source_task_mirrors_its_whole_dataset(
        job_type: str, redis_server: RedisServer, content_db: str, uid: str,
        source: SourceServer) -> None:
    _, _dataset, table, total = TASKS[job_type]

    summary = await sync(job_type, redis_server, content_db, uid, source)

    assert summary["counts"] == {"fetched": total, "upserted": total, "inserted": total,
                                 "updated": 0, "unchanged": 0, "skipped": 0, "warnings": 0}
    assert summary["total"] == total
    assert summary["lock"] == LOCKS[job_type]
    assert await count(content_db, table) == total
    fences = await query(content_db, f"SELECT DISTINCT fence_token FROM {table}")
    assert fences == [{"fence_token": summary["fence"]}]


async def test_synced_quran_chapters_are_the_real_metadata(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    await sync("quran", redis_server, content_db, uid, source)

    rows = await query(content_db, "SELECT number, name_english, verses_count, "
                       "revelation_place FROM quran_chapters WHERE number IN (1, 2, 114) "
                       "ORDER BY number")
    assert rows == [
        {"number": 1, "name_english": "Al-Fatihah", "verses_count": 7,
         "revelation_place": "makkah"},
        {"number": 2, "name_english": "Al-Baqarah", "verses_count": 286,
         "revelation_place": "madinah"},
        {"number": 114, "name_english": "An-Nas", "verses_count": 6,
         "revelation_place": "makkah"}]
    total = await query(content_db, "SELECT sum(verses_count) AS n FROM quran_chapters")
    assert total == [{"n": 6236}]


async def test_a_rerun_changes_nothing(
        redis_server: RedisServer, content_db: str, source: SourceServer) -> None:
    await sync("hadith", redis_server, content_db, "run-1", source)
    before = await query(content_db, "SELECT * FROM hadiths ORDER BY id")

    again = await sync("hadith", redis_server, content_db, "run-2", source)

    assert again["counts"]["unchanged"] == 250
    assert again["counts"]["upserted"] == 0
    assert await query(content_db, "SELECT * FROM hadiths ORDER BY id") == before


async def test_upstream_changes_update_just_the_changed_rows(
        redis_server: RedisServer, content_db: str, source: SourceServer) -> None:
    await sync("finance", redis_server, content_db, "run-1", source)
    source.set_revision(2)  # the last day's rates move

    again = await sync("finance", redis_server, content_db, "run-2", source)

    assert again["counts"]["updated"] == 8
    assert again["counts"]["unchanged"] == 232
    changed = await query(content_db, "SELECT DISTINCT fence_token FROM finance_rates "
                          "WHERE rate_date = '2026-01-30'")
    assert changed == [{"fence_token": again["fence"]}]


async def test_5xx_responses_are_retried_until_the_page_recovers(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("audio/tracks", Faults(error_pages={2: 2, 4: 1}))

    summary = await sync("audio", redis_server, content_db, uid, source)

    assert summary["counts"]["skipped"] == 0
    assert summary["failedPages"] == []
    assert summary["counts"]["warnings"] == 0
    assert source.requests_for("audio/tracks") == {1: 1, 2: 3, 3: 1, 4: 2, 5: 1}
    assert await count(content_db, "audio_tracks") == 228


async def test_a_slow_response_times_out_and_is_retried(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("quran/chapters", Faults(slow_pages={2: 1.0}, slow_times=1))

    summary = await sync("quran", redis_server, content_db, uid, source,
                         requestTimeoutSeconds=0.3)

    assert summary["counts"]["upserted"] == 114
    assert source.requests_for("quran/chapters")[2] == 2


async def test_malformed_records_are_skipped_counted_and_warned(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("quran/chapters", Faults(malformed_records=frozenset({3, 60, 113})))

    summary, run = await run_task(
        QuranTask(Services(redis_server.url, source.url)), uid=uid, redis_url=redis_server.url,
        database_url=content_db, job_type="quran",
        params={"pageSize": 50, **FAST_LOCK, **FAST_HTTP})

    assert summary["counts"]["skipped"] == 3
    assert summary["counts"]["upserted"] == 111
    assert summary["counts"]["warnings"] == 3
    count_, messages = run.ctx.warnings
    assert count_ == 3
    assert all("invalid record skipped" in m for m in messages)
    assert "page 1 item 3" in messages[0]
    assert "page 2 item 10" in messages[1]
    numbers = {r["number"] for r in await query(content_db, "SELECT number FROM quran_chapters")}
    assert numbers == set(range(1, 115)) - {4, 61, 114}


async def test_a_page_that_never_recovers_is_skipped_when_within_the_threshold(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("quran/chapters", Faults(error_pages={2: -1}))

    summary = await sync("quran", redis_server, content_db, uid, source, pageSize=10,
                         maxFailureRatio=0.1)

    assert summary["failedPages"] == [2]
    assert summary["counts"]["skipped"] == 10
    assert summary["failureRatio"] == round(10 / 114, 4)
    assert source.requests_for("quran/chapters")[2] == FAST_HTTP["httpAttempts"]
    assert await count(content_db, "quran_chapters") == 104


async def test_unreachable_pages_beyond_the_threshold_fail_retryably_and_the_retry_fetches_only_them(  # noqa: E501
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("hadith/hadiths", Faults(error_pages={2: -1, 3: -1}))

    with pytest.raises(UpstreamDegradedError, match="100 of 250 hadiths skipped"):
        await sync("hadith", redis_server, content_db, uid, source)
    assert await count(content_db, "hadiths") == 150

    source.clear_faults()
    source.requests.clear()
    summary = await sync("hadith", redis_server, content_db, uid, source)  # the Job's retry

    assert source.requests_for("hadith/hadiths") == {2: 1, 3: 1}
    assert summary["failedPages"] == []
    assert summary["counts"]["fetched"] == 250
    assert summary["counts"]["skipped"] == 0
    assert await count(content_db, "hadiths") == 250


async def test_invalid_records_beyond_the_threshold_fail_the_job_for_good(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("finance/rates", Faults(malformed_rate=0.3))

    with pytest.raises(FatalTaskError) as raised:
        await sync("finance", redis_server, content_db, uid, source)

    assert raised.value.reason == "TooManyFailures"
    assert "more than maxFailureRatio 10.0%" in raised.value.message


async def test_an_unavailable_first_page_is_a_retryable_failure(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    source.set_faults("quran/chapters", Faults(error_pages={1: -1}))

    with pytest.raises(UpstreamUnavailableError, match="HTTP 503"):
        await sync("quran", redis_server, content_db, uid, source)


async def test_a_paused_sync_resumes_from_its_checkpoint_without_duplicates(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    task = HadithTask(Services(redis_server.url, source.url))
    params = {"pageSize": 50, **FAST_LOCK, **FAST_HTTP}

    with pytest.raises(StopRequested):
        await run_task(task, uid=uid, redis_url=redis_server.url, database_url=content_db,
                       job_type="hadith", params=params,
                       pause_when=lambda p: p.done >= 100)
    checkpoint = await load_checkpoint(redis_server.url, uid)
    assert checkpoint is not None
    assert checkpoint.data["nextPage"] == 3
    assert await count(content_db, "hadiths") == 100

    source.requests.clear()
    summary, _ = await run_task(task, uid=uid, redis_url=redis_server.url,
                                database_url=content_db, job_type="hadith", params=params)

    assert summary["resumedFromPage"] == 3
    assert sorted(source.requests_for("hadith/hadiths")) == [3, 4, 5]
    assert summary["counts"]["inserted"] == 250
    assert await count(content_db, "hadiths") == 250


async def test_a_source_task_without_a_source_url_fails_on_prerequisites(
        redis_server: RedisServer, content_db: str, uid: str) -> None:
    with pytest.raises(FatalTaskError) as raised:
        await sync("audio", redis_server, content_db, uid, None)

    assert raised.value.reason == "PrerequisitesMissing"
    assert "params.sourceUrl or SYNC_SOURCE_URL" in raised.value.message


async def test_an_unmigrated_database_fails_on_prerequisites(
        redis_server: RedisServer, database_url: str, uid: str, source: SourceServer) -> None:
    with pytest.raises(FatalTaskError) as raised:
        await sync("quran", redis_server, database_url, uid, source)

    assert raised.value.reason == "PrerequisitesMissing"
    assert "lacks table(s) quran_chapters, sync_fences" in raised.value.message
    assert "alembic upgrade head" in raised.value.message
    assert source.requests_for("quran/chapters") == {}


async def test_bad_params_fail_the_job_with_invalid_params(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    with pytest.raises(FatalTaskError) as raised:
        await sync("quran", redis_server, content_db, uid, source, pageSize=0,
                   lockPolicy="later")

    assert raised.value.reason == "InvalidParams"
    assert "pageSize" in raised.value.message
    assert "lockPolicy" in raised.value.message


async def test_a_sync_paused_after_its_first_page_does_not_fetch_it_again(
        redis_server: RedisServer, content_db: str, uid: str, source: SourceServer) -> None:
    task = AudioTask(Services(redis_server.url, source.url))
    params = {"pageSize": 100, **FAST_LOCK, **FAST_HTTP}
    with pytest.raises(StopRequested):
        await run_task(task, uid=uid, redis_url=redis_server.url, database_url=content_db,
                       job_type="audio", params=params, pause_when=lambda p: p.done >= 100)

    summary, _ = await run_task(task, uid=uid, redis_url=redis_server.url,
                                database_url=content_db, job_type="audio", params=params)

    assert source.requests_for("audio/tracks") == {1: 1, 2: 1, 3: 1}
    assert summary["counts"]["fetched"] == 228
    assert summary["counts"]["inserted"] == 228
