"""The five real sync tasks through the real operator: each job type from SyncJob to rows
in PostgreSQL, and a faulty source, a killed pod and concurrent runners of one type, all
ending with correct data and a status a person can read.

The runner pods are real `python -m sync_runner` processes (the process kubelet), they
pull from the local upstream source (testkit.source_server, in this process on a free
loopback port) and write into a fresh database migrated to head.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.mirror import upgrade
from sync_runner import contract
from testkit.cluster import LocalCluster
from testkit.kubelet import container_pids
from testkit.operator import OperatorProcess
from testkit.source_server import Faults, SourceServer
from testkit.syncjobs import create_syncjob, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

# Quick retries and a short lease, so faults and a dead holder cost seconds, not minutes.
FAST_HTTP = {"httpAttempts": 4, "httpBackoffSeconds": 0.05, "httpBackoffMaxSeconds": 0.2,
             "requestTimeoutSeconds": 10}
FAST_LOCK = {"lockTtlSeconds": 5, "lockWaitSeconds": 90}
RUNNER_TUNING = {"SYNC_RUNNER_HEARTBEAT_SECONDS": "0.5",
                 "SYNC_RUNNER_CONTROL_POLL_SECONDS": "0.5",
                 "SYNC_RUNNER_PROGRESS_MIN_INTERVAL_SECONDS": "0.1"}
QURAN_LOCK = "sync:lock:quran:chapters"
PRAYER_SMALL = {"cities": ["makkah", "cairo", "london"], "methods": ["MWL", "MAKKAH"],
                "madhabs": ["shafi", "hanafi"], "dateFrom": "2026-03-01",
                "dateTo": "2026-03-02"}


@dataclass(frozen=True)
class Dataset:
    """Where a job type's rows land, their natural key, and the source dataset (if any)."""

    table: str
    key: tuple[str, ...]
    source: str | None
    params: dict[str, Any]


DATASETS = {
    "quran": Dataset("quran_chapters", ("number",), "quran/chapters", {"pageSize": 50}),
    "prayer": Dataset("prayer_times", ("city_id", "method", "madhab", "date"), None,
                      PRAYER_SMALL),
    "hadith": Dataset("hadiths", ("collection", "hadith_number"), "hadith/hadiths",
                      {"pageSize": 100}),
    "audio": Dataset("audio_tracks", ("reciter_id", "surah_number"), "audio/tracks",
                     {"pageSize": 100}),
    "finance": Dataset("finance_rates", ("base_currency", "quote_currency", "rate_date"),
                       "finance/rates", {"pageSize": 100}),
}


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
async def source() -> AsyncIterator[SourceServer]:
    """The upstream source on a free 127.0.0.1 port, fault-free until a test sets faults."""
    server = SourceServer(seed=11)
    await server.start(host="127.0.0.1", port=0)
    yield server
    await server.stop()


@pytest.fixture
async def content_db(database_url: str) -> str:
    """A fresh database migrated to head (the mirror and the content tables)."""
    await asyncio.to_thread(upgrade, database_url)
    return database_url


@pytest.fixture
def syncing_operator(start_operator: Callable[..., OperatorProcess], content_db: str,
                     source: SourceServer) -> Callable[..., OperatorProcess]:
    """Starts the operator with runner pods pointed at the database and the source."""
    def start(**overrides: str) -> OperatorProcess:
        env = {"SYNC_SOURCE_URL": source.url, **RUNNER_TUNING}
        return start_operator(runner_database_url=content_db, runner_env=json.dumps(env),
                              **overrides)

    return start


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return list(conn.execute(sql).fetchall())


async def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run off the event loop: the source server shares it."""
    return await asyncio.to_thread(rows, url, sql)


async def row_count(url: str, table: str) -> int:
    return int((await query(url, f"SELECT count(*) FROM {table}"))[0][0])


async def distinct_keys(url: str, dataset: Dataset) -> int:
    columns = ", ".join(dataset.key)
    return int((await query(url, f"SELECT count(*) FROM (SELECT DISTINCT {columns} "
                                 f"FROM {dataset.table}) AS k"))[0][0])


async def fences(url: str, table: str) -> set[int]:
    return {int(r[0]) for r in await query(url, f"SELECT DISTINCT fence_token FROM {table}")}


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body["status"].get("conditions", [])}


def runner_logs(cluster: LocalCluster, namespace: str, job: str) -> str:
    """The output of every runner pod of one SyncJob (the process kubelet's log files)."""
    logs = sorted((cluster.root / "kubelet" / "logs").glob(f"{namespace}_{job}-*.log"))
    return "".join(path.read_text(errors="replace") for path in logs)


def runner_pids(uid: str) -> list[int]:
    """Local processes that run the SyncJob `uid` (its runner's container)."""
    return container_pids(contract.ENV_JOB_UID, uid)


async def done_at_least(kube: KubeClient, namespace: str, name: str, n: int) -> bool:
    body = await kube.get(SYNCJOBS, name, namespace)
    progress = body.get("status", {}).get("progress") or {}
    return int(progress.get("done") or 0) >= n


def source_params(**params: Any) -> dict[str, Any]:
    return {**FAST_HTTP, **FAST_LOCK, **params}


# -- each job type --------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", list(DATASETS))
async def test_each_job_type_runs_to_completion_through_the_operator(
        job_type: str, kube: KubeClient, namespace: str, content_db: str,
        source: SourceServer, syncing_operator: Callable[..., OperatorProcess]) -> None:
    dataset = DATASETS[job_type]
    if dataset.source is not None:
        expected_rows = units = len(source.datasets[dataset.source])
    else:  # prayer: one row per city, method, madhab and day; progress per combination
        units = len(PRAYER_SMALL["cities"]) * len(PRAYER_SMALL["methods"]) \
            * len(PRAYER_SMALL["madhabs"])
        expected_rows = units * 2
    syncing_operator()

    await create_syncjob(kube, namespace, syncjob(
        "sync", job_type, params=source_params(**dataset.params)))
    body = await wait_phase(kube, namespace, "sync", "Succeeded", "Failed", timeout=120)

    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] == 1
    assert status["progress"]["percent"] == 100
    assert status["progress"]["done"] == status["progress"]["total"] == units
    assert status["result"]["counts"] == {
        "fetched": expected_rows, "upserted": expected_rows, "inserted": expected_rows,
        "updated": 0, "unchanged": 0, "skipped": 0, "warnings": 0}
    assert not status.get("warnings")
    assert conditions(body)["Complete"]["message"] == "completed"
    assert await row_count(content_db, dataset.table) == expected_rows
    assert await distinct_keys(content_db, dataset) == expected_rows
    assert await fences(content_db, dataset.table) == {status["result"]["fence"]}
    if job_type == "quran":
        assert expected_rows == 114
        assert await query(content_db, "SELECT sum(verses_count) FROM quran_chapters") \
            == [(6236,)]


# -- a faulty source --------------------------------------------------------------------------


async def test_faulty_source_ends_succeeded_with_warnings_and_correct_data(
        kube: KubeClient, namespace: str, content_db: str, source: SourceServer,
        syncing_operator: Callable[..., OperatorProcess]) -> None:
    malformed = frozenset({5, 77, 201})
    # Page 2 answers 503 twice and page 4 once before they recover: the retries absorb it.
    source.set_faults("hadith/hadiths", Faults(error_pages={2: 2, 4: 1},
                                               malformed_records=malformed))
    syncing_operator()

    await create_syncjob(kube, namespace, syncjob(
        "faulty", "hadith", params=source_params(pageSize=50)))
    body = await wait_phase(kube, namespace, "faulty", "Succeeded", "Failed", timeout=90)

    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["warnings"] == len(malformed)
    counts = status["result"]["counts"]
    assert counts["skipped"] == len(malformed)
    assert counts["upserted"] == 250 - len(malformed)
    assert status["result"]["failedPages"] == []
    assert all("invalid record skipped" in w for w in status["result"]["warnings"])
    assert conditions(body)["Complete"]["message"] == f"completed with {len(malformed)} warning(s)"
    assert source.requests_for("hadith/hadiths") == {1: 1, 2: 3, 3: 1, 4: 2, 5: 1}
    records = source.datasets["hadith/hadiths"]
    valid = {(r["collection"], r["number"]) for i, r in enumerate(records) if i not in malformed}
    stored = {(c, n) for c, n in await query(
        content_db, "SELECT collection, hadith_number FROM hadiths")}
    assert stored == valid


async def test_source_failing_beyond_threshold_fails_with_a_clear_reason(
        kube: KubeClient, namespace: str, content_db: str, source: SourceServer,
        syncing_operator: Callable[..., OperatorProcess]) -> None:
    # Pages 2 and 3 of 5 never answer: 100 of 250 hadiths, above maxFailureRatio 10%.
    source.set_faults("hadith/hadiths", Faults(error_pages={2: -1, 3: -1}, error_status=502))
    syncing_operator()

    await create_syncjob(kube, namespace, syncjob(
        "degraded", "hadith", retryAttempts=0, params=source_params(pageSize=50)))
    body = await wait_phase(kube, namespace, "degraded", "Failed", "Succeeded", timeout=90)

    status = body["status"]
    assert status["phase"] == "Failed", status
    failed = conditions(body)["Failed"]
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "failed after 1 attempt(s)" in failed["message"]
    assert "100 of 250 hadiths skipped (40.0%), more than maxFailureRatio 10.0%" \
        in failed["message"]
    assert "2 unit(s) could not be fetched after retries" in failed["message"]
    assert status["error"] == failed["message"]
    # What could be fetched was stored (and a later retry fetches only the missing pages).
    assert await row_count(content_db, "hadiths") == 150
    assert source.requests_for("hadith/hadiths")[2] == FAST_HTTP["httpAttempts"]


# -- a killed pod -------------------------------------------------------------------------------


async def test_killed_pod_is_retried_and_resumes_without_duplicate_rows(
        kube: KubeClient, namespace: str, content_db: str, source: SourceServer,
        syncing_operator: Callable[..., OperatorProcess]) -> None:
    # 23 pages at 0.5 s each: the first pod is killed part-way through.
    source.set_faults("quran/chapters", Faults(delay_seconds=0.5))
    syncing_operator()
    created = await create_syncjob(kube, namespace, syncjob(
        "killed", "quran", retryAttempts=2, params=source_params(pageSize=5)))
    uid = created["metadata"]["uid"]
    await wait_phase(kube, namespace, "killed", "Running", timeout=60)
    await eventually(lambda: done_at_least(kube, namespace, "killed", 15), timeout=60,
                     what="three pages synced")

    pids = runner_pids(uid)
    assert len(pids) == 1, f"runner processes of {uid}: {pids}"
    os.kill(pids[0], signal.SIGKILL)
    source.clear_faults()  # the retry need not be slow too

    body = await wait_phase(kube, namespace, "killed", "Succeeded", "Failed", timeout=120)

    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] == 2
    result = status["result"]
    resumed_from = result["resumedFromPage"]
    assert 4 <= resumed_from <= 23
    # Pages the first pod checkpointed were not fetched again.
    requests = source.requests_for("quran/chapters")
    assert all(requests[page] == 1 for page in range(1, resumed_from)), requests
    counts = result["counts"]
    assert counts["fetched"] == 114
    assert counts["skipped"] == 0
    assert counts["inserted"] + counts["unchanged"] == 114
    assert counts["updated"] == 0
    assert await row_count(content_db, "quran_chapters") == 114
    assert await distinct_keys(content_db, DATASETS["quran"]) == 114
    # Rows from both pods: the first pod's writes stayed, the retry wrote the rest.
    assert len(await fences(content_db, "quran_chapters")) == 2
    assert status["progress"]["percent"] == 100


# -- concurrent runners of one type -----------------------------------------------------------


async def lock_holder(redis_client: aioredis.Redis) -> str | None:
    raw = await redis_client.get(QURAN_LOCK)
    return str(json.loads(raw)["job"]) if raw else None


async def test_second_concurrent_runner_waits_for_the_lock_and_data_stays_correct(
        cluster: LocalCluster, kube: KubeClient, namespace: str, content_db: str,
        source: SourceServer, redis_client: aioredis.Redis,
        syncing_operator: Callable[..., OperatorProcess]) -> None:
    # 23 pages at 1 s: the first job holds the lock until the test lifts the delay.
    source.set_faults("quran/chapters", Faults(delay_seconds=1.0))
    syncing_operator(type_limits='{"quran": 2}')
    params = source_params(pageSize=5, lockPolicy="wait")
    await create_syncjob(kube, namespace, syncjob("first", "quran", params=params))
    await eventually(lambda: _held_by(redis_client, "first"), timeout=60,
                     what="the first job holding the lock")

    await create_syncjob(kube, namespace, syncjob("second", "quran", params=params))
    # Both admitted (the type's limit is 2); the second runs but waits for the lock.
    await wait_phase(kube, namespace, "second", "Running", timeout=60)
    await eventually(lambda: _logged(cluster, namespace, "second", "lock.waiting"),
                     timeout=60, what="the second runner waiting for the lock")
    waiting = runner_logs(cluster, namespace, "second")
    assert "job 'first'" in waiting
    assert await lock_holder(redis_client) == "first"
    assert await done_at_least(kube, namespace, "second", 1) is False
    source.clear_faults()

    first = await wait_phase(kube, namespace, "first", "Succeeded", "Failed", timeout=90)
    second = await wait_phase(kube, namespace, "second", "Succeeded", "Failed", timeout=90)

    assert first["status"]["phase"] == second["status"]["phase"] == "Succeeded"
    assert first["status"]["result"]["counts"]["inserted"] == 114
    # The second ran after the first released the lock: a newer fence, nothing to change.
    assert second["status"]["result"]["fence"] > first["status"]["result"]["fence"]
    assert second["status"]["result"]["counts"]["unchanged"] == 114
    assert second["status"]["startedAt"] <= first["status"]["completedAt"]
    for body in (first, second):
        assert body["status"]["attempts"] == 1
        assert body["status"]["progress"]["percent"] == 100
    assert await row_count(content_db, "quran_chapters") == 114
    assert await distinct_keys(content_db, DATASETS["quran"]) == 114
    assert await lock_holder(redis_client) is None


async def test_concurrent_runner_with_lock_policy_fail_fails_naming_the_holder(
        kube: KubeClient, namespace: str, content_db: str, source: SourceServer,
        redis_client: aioredis.Redis,
        syncing_operator: Callable[..., OperatorProcess]) -> None:
    # 23 pages at 1 s: the first job holds the lock until the test lifts the delay.
    source.set_faults("quran/chapters", Faults(delay_seconds=1.0))
    syncing_operator(type_limits='{"quran": 2}')
    await create_syncjob(kube, namespace, syncjob(
        "holder", "quran", params=source_params(pageSize=5)))
    await eventually(lambda: _held_by(redis_client, "holder"), timeout=60,
                     what="the first job holding the lock")

    await create_syncjob(kube, namespace, syncjob(
        "refuser", "quran", retryAttempts=3, params=source_params(pageSize=5,
                                                                  lockPolicy="fail")))
    refused = await wait_phase(kube, namespace, "refuser", "Failed", "Succeeded", timeout=60)
    source.clear_faults()

    status = refused["status"]
    assert status["phase"] == "Failed", status
    assert status["attempts"] == 1  # not retried: another run would be refused the same way
    failed = conditions(refused)["Failed"]
    assert failed["reason"] == "LockHeld"
    assert failed["message"].startswith(
        f"LockHeld: {QURAN_LOCK} is held by job 'holder' (pod 'holder-")
    assert "set lockPolicy: wait to queue behind it" in failed["message"]
    holder = await wait_phase(kube, namespace, "holder", "Succeeded", "Failed", timeout=90)
    assert holder["status"]["phase"] == "Succeeded", holder["status"]
    assert holder["status"]["result"]["counts"]["inserted"] == 114
    assert await row_count(content_db, "quran_chapters") == 114


async def _held_by(redis_client: aioredis.Redis, job: str) -> bool:
    return await lock_holder(redis_client) == job


async def _logged(cluster: LocalCluster, namespace: str, job: str, event: str) -> bool:
    return f'"{event}"' in runner_logs(cluster, namespace, job)
