"""Migration 0002_content against real PostgreSQL, and the fenced upsert it serves."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import NullPool, create_engine
from task_harness import count, query

from sync_operator.mirror.schema import current_revision, downgrade, upgrade
from sync_runner.content.models import ContentBase, Hadith, QuranChapter
from sync_runner.content.store import ContentStore, Fence, StaleFenceError, UpsertResult
from sync_runner.locks import LockSettings, ResourceLock, lock_key

CONTENT_TABLES = {"prayer_times", "quran_chapters", "hadiths", "audio_tracks", "finance_rates",
                  "sync_fences"}
MIRROR_TABLES = {"sync_job_control", "sync_job_schedules", "sync_job_audit_logs"}
FATIHAH = {"number": 1, "name_arabic": "الفاتحة", "name_english": "Al-Fatihah",
           "name_translation": "The Opening", "verses_count": 7, "revelation_place": "makkah"}


async def tables(url: str) -> set[str]:
    rows = await query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def test_migration_creates_exactly_what_the_content_models_declare(content_db: str) -> None:
    engine = create_engine(content_db, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True,
                                                       "compare_server_default": True}),
                ContentBase.metadata)
    finally:
        engine.dispose()
    ours = [d for d in diff if not (d[0] == "remove_table" and d[1].name not in CONTENT_TABLES)
            and not (d[0] == "remove_index" and d[1].table.name not in CONTENT_TABLES)]
    assert ours == []


async def test_downgrade_to_the_mirror_drops_only_the_content_tables(database_url: str) -> None:
    upgrade(database_url, "0002_content")
    assert await tables(database_url) >= CONTENT_TABLES | MIRROR_TABLES

    downgrade(database_url, "0001_mirror")

    assert current_revision(database_url) == "0001_mirror"
    remaining = await tables(database_url)
    assert not remaining & CONTENT_TABLES
    assert remaining >= MIRROR_TABLES
    upgrade(database_url, "0002_content")
    assert await tables(database_url) >= CONTENT_TABLES


async def test_upsert_inserts_then_updates_only_what_changed(content_db: str) -> None:
    fence = Fence("sync:lock:quran:chapters", 1, "test")
    async with ContentStore(content_db) as store:
        first = await store.upsert(QuranChapter, [FATIHAH], fence)
        again = await store.upsert(QuranChapter, [FATIHAH], Fence(fence.resource, 2, "t"))
        renamed = {**FATIHAH, "name_translation": "The Opener"}
        changed = await store.upsert(QuranChapter, [renamed, renamed],
                                     Fence(fence.resource, 3, "t"))

    assert (first, again, changed) == (UpsertResult(inserted=1), UpsertResult(unchanged=1),
                                       UpsertResult(updated=1))
    (row,) = await query(content_db, "SELECT name_translation, fence_token FROM quran_chapters")
    assert row == {"name_translation": "The Opener", "fence_token": 3}


async def test_unchanged_rows_keep_the_fence_and_time_of_their_last_change(
        content_db: str) -> None:
    async with ContentStore(content_db) as store:
        await store.upsert(QuranChapter, [FATIHAH], Fence("r", 1, "t"))
        before = await query(content_db, "SELECT fence_token, synced_at FROM quran_chapters")
        await store.upsert(QuranChapter, [FATIHAH], Fence("r", 2, "t"))

    assert await query(content_db, "SELECT fence_token, synced_at FROM quran_chapters") == before


async def test_a_stale_holders_writes_are_refused_after_a_newer_holder_wrote(
        content_db: str) -> None:
    async with ContentStore(content_db) as store:
        await store.upsert(QuranChapter, [FATIHAH], Fence("sync:lock:quran:chapters", 5, "new"))
        stale = {**FATIHAH, "verses_count": 8}

        with pytest.raises(StaleFenceError, match=r"token 4 is stale, token 5 \(new\) has written"):
            await store.upsert(QuranChapter, [stale], Fence("sync:lock:quran:chapters", 4, "old"))

    assert (await query(content_db, "SELECT verses_count FROM quran_chapters"))[0] == {
        "verses_count": 7}
    assert await count(content_db, "quran_chapters") == 1


async def test_fences_are_kept_per_resource(content_db: str) -> None:
    async with ContentStore(content_db) as store:
        await store.upsert(QuranChapter, [FATIHAH], Fence("sync:lock:quran:chapters", 9, "a"))
        result = await store.upsert(QuranChapter, [], Fence("sync:lock:hadith:hadiths", 1, "b"))

    assert result == UpsertResult()
    rows = await query(content_db, "SELECT resource, token FROM sync_fences ORDER BY resource")
    assert rows == [{"resource": "sync:lock:hadith:hadiths", "token": 1},
                    {"resource": "sync:lock:quran:chapters", "token": 9}]


async def test_missing_tables_are_named(database_url: str) -> None:
    upgrade(database_url, "0001_mirror")
    async with ContentStore(database_url) as store:
        assert await store.missing_tables(["quran_chapters", "sync_job_control"]) == [
            "quran_chapters"]


async def test_a_batch_beyond_one_statements_parameter_limit_lands_whole(
        content_db: str) -> None:
    rows = [{"collection": "synthetic-sample-a", "hadith_number": n, "narrator": "Sample",
             "text_english": f"[SYNTHETIC] {n}", "text_arabic": None, "grade": "unknown"}
            for n in range(1, 5001)]  # 5000 rows x 7 columns > PostgreSQL's 32767 parameters

    async with ContentStore(content_db) as store:
        result = await store.upsert(Hadith, rows, Fence("sync:lock:hadith:hadiths", 1, "t"))

    assert result == UpsertResult(inserted=5000)
    assert await count(content_db, "hadiths") == 5000


async def test_a_stalled_holder_is_fenced_out_once_the_next_holder_has_written(
        content_db: str, redis_client: aioredis.Redis) -> None:
    resource = f"chapters-{uuid.uuid4().hex[:6]}"
    stalled = await ResourceLock(redis_client, "quran", resource, job="a", pod="a",
                                 settings=LockSettings(ttl_seconds=0.4)).acquire()
    stalled.abandon()  # e.g. a long GC pause: no renewal, the lease expires
    await asyncio.sleep(0.6)
    newer = await ResourceLock(redis_client, "quran", resource, job="b", pod="b").acquire()
    key = lock_key("quran", resource)

    async with ContentStore(content_db) as store:
        await store.upsert(QuranChapter, [FATIHAH], Fence(key, newer.fence, "b"))
        with pytest.raises(StaleFenceError):  # the stalled holder wakes up and writes
            await store.upsert(QuranChapter, [{**FATIHAH, "verses_count": 9}],
                               Fence(key, stalled.fence, "a"))

    await newer.release()
    assert (await query(content_db, "SELECT verses_count, fence_token FROM quran_chapters")) == [
        {"verses_count": 7, "fence_token": newer.fence}]
