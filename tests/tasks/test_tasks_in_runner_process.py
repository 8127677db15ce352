"""The real tasks in the real runner process (`python -m sync_runner`): the summary in
the published status, exit codes, and two runners contending for one resource lock."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from task_harness import FAST_HTTP, count

from sync_runner import contract
from sync_runner.contract import ExitCode, Keys, RunnerState, RunnerStatus
from testkit.servers import RedisServer
from testkit.source_server import Faults, SourceServer

pytestmark = pytest.mark.timeout(60)

FAST = {"SYNC_RUNNER_HEARTBEAT_SECONDS": "0.3", "SYNC_RUNNER_CONTROL_POLL_SECONDS": "0.2",
        "SYNC_RUNNER_PROGRESS_MIN_INTERVAL_SECONDS": "0.05",
        "SYNC_RUNNER_REDIS_RETRY_SECONDS": "5"}


@dataclass
class Runner:
    uid: str
    proc: subprocess.Popen[bytes]
    log: Path

    async def wait(self, within: float = 30.0) -> int:
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise TimeoutError(f"runner still running:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(tmp_path: Path, job_type: str, params: dict[str, Any], *, redis_url: str,
          database_url: str, source_url: str | None = None) -> Runner:
    uid = str(uuid.uuid4())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update({
        contract.ENV_JOB_UID: uid, contract.ENV_JOB_NAME: f"{job_type}-{uid[:6]}",
        contract.ENV_JOB_NAMESPACE: "tests", contract.ENV_JOB_TYPE: job_type,
        contract.ENV_JOB_PARAMS: json.dumps(params), contract.ENV_REDIS_URL: redis_url,
        contract.ENV_DATABASE_URL: database_url, contract.ENV_POD_NAME: f"pod-{uid[:6]}",
        **FAST})
    if source_url:
        env["SYNC_SOURCE_URL"] = source_url
    log = tmp_path / f"runner-{uid[:8]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sync_runner"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Runner(uid, proc, log)


async def status(client: aioredis.Redis, uid: str) -> RunnerStatus:
    raw = await client.hget(Keys(uid).state, contract.STATE_FIELD)
    assert raw is not None, f"no status for {uid}"
    return RunnerStatus.model_validate_json(str(raw))


async def test_quran_sync_runs_in_the_runner_and_publishes_its_summary(
        redis_server: RedisServer, redis_client: aioredis.Redis, content_db: str,
        source: SourceServer, tmp_path: Path) -> None:
    source.set_faults("quran/chapters", Faults(malformed_records=frozenset({0})))
    runner = start(tmp_path, "quran", {"pageSize": 40, **FAST_HTTP},
                   redis_url=redis_server.url, database_url=content_db, source_url=source.url)

    assert await runner.wait() == ExitCode.SUCCEEDED, runner.output()

    final = await status(redis_client, runner.uid)
    assert final.state == RunnerState.SUCCEEDED
    assert final.summary["counts"]["upserted"] == 113
    assert final.summary["counts"]["skipped"] == 1
    assert final.summary["warningCount"] == 1  # succeeded, with a warning
    assert final.warnings == 1
    assert final.progress.done == final.progress.total == 114
    assert final.progress.unit == "chapters"
    assert await count(content_db, "quran_chapters") == 113


async def test_params_task_demo_runs_the_demo_for_a_content_job_type(
        redis_server: RedisServer, redis_client: aioredis.Redis, content_db: str,
        tmp_path: Path) -> None:
    runner = start(tmp_path, "hadith", {"task": "demo", "items": 3, "unitSeconds": 0},
                   redis_url=redis_server.url, database_url=content_db)

    assert await runner.wait() == ExitCode.SUCCEEDED, runner.output()

    final = await status(redis_client, runner.uid)
    assert final.summary == {"items": 3, "resumedFrom": 0, "processed": 3}


async def test_missing_prerequisites_end_the_runner_with_the_fatal_code(
        redis_server: RedisServer, redis_client: aioredis.Redis, content_db: str,
        tmp_path: Path) -> None:
    data = tmp_path / "few"
    data.mkdir()
    (data / "cities.csv").write_text("id,name,country,latitude,longitude,timezone\n"
                                     "makkah,Makkah,SA,21.4225,39.8262,Asia/Riyadh\n")
    runner = start(tmp_path, "prayer", {"dataDir": str(data)}, redis_url=redis_server.url,
                   database_url=content_db)

    assert await runner.wait() == ExitCode.FATAL, runner.output()

    final = await status(redis_client, runner.uid)
    assert final.state == RunnerState.FAILED
    assert final.error is not None
    assert final.error.startswith("PrerequisitesMissing: reference data in ")
    assert "cities.csv has 1 valid cities" in final.error
    assert "methods.json unreadable" in final.error


async def test_a_second_runner_waits_for_the_lock_then_proceeds_and_one_with_fail_policy_stops(
        redis_server: RedisServer, redis_client: aioredis.Redis, content_db: str,
        source: SourceServer, tmp_path: Path) -> None:
    # 12 pages at 1 s: the first runner holds the lock for about 12 s, until the waiter
    # is seen waiting (then the source speeds up): a slow machine cannot let the
    # waiter start after the lock is free.
    source.set_faults("quran/chapters", Faults(delay_seconds=1.0))
    common = {"pageSize": 10, "lockTtlSeconds": 2, **FAST_HTTP}
    first = start(tmp_path, "quran", common, redis_url=redis_server.url,
                  database_url=content_db, source_url=source.url)
    deadline = time.monotonic() + 10
    while not await redis_client.exists("sync:lock:quran:chapters"):
        assert first.proc.poll() is None, first.output()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)

    waiter = start(tmp_path, "quran", {**common, "lockPolicy": "wait", "lockWaitSeconds": 30},
                   redis_url=redis_server.url, database_url=content_db, source_url=source.url)
    refuser = start(tmp_path, "quran", {**common, "lockPolicy": "fail"},
                    redis_url=redis_server.url, database_url=content_db, source_url=source.url)

    assert await refuser.wait() == ExitCode.FATAL, refuser.output()
    deadline = time.monotonic() + 30
    while "lock.waiting" not in waiter.output():
        assert first.proc.poll() is None, "the first runner finished before the waiter waited"
        assert time.monotonic() < deadline, waiter.output()
        await asyncio.sleep(0.05)
    source.clear_faults()  # the waiter waits: the rest need not be slow
    assert await first.wait() == ExitCode.SUCCEEDED, first.output()
    assert await waiter.wait() == ExitCode.SUCCEEDED, waiter.output()

    refused = await status(redis_client, refuser.uid)
    assert refused.error is not None
    assert refused.error.startswith(
        "LockHeld: sync:lock:quran:chapters is held by job 'quran-")
    done_first = await status(redis_client, first.uid)
    done_waiter = await status(redis_client, waiter.uid)
    assert done_waiter.summary["fence"] > done_first.summary["fence"]
    assert done_first.summary["counts"]["inserted"] == 114
    assert done_waiter.summary["counts"]["unchanged"] == 114
    assert "lock.waiting" in waiter.output()
    assert await count(content_db, "quran_chapters") == 114
    assert not await redis_client.exists("sync:lock:quran:chapters")
