"""Run a sync task in-process through the SDK: a TaskContext whose checkpoints go to
real Redis (the runner's RedisChannel), and a stop source a test can trigger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import create_async_engine

from sync_runner.channel import RedisChannel, connect
from sync_runner.content.store import async_database_url
from sync_runner.contract import Checkpoint, Keys, Progress
from sync_runner.sdk import JobIdentity, StopDecision, Task, TaskContext

FAST_LOCK = {"lockTtlSeconds": 2, "lockWaitSeconds": 10}
FAST_HTTP = {"httpAttempts": 4, "httpBackoffSeconds": 0.01, "httpBackoffMaxSeconds": 0.05,
             "requestTimeoutSeconds": 2}


@dataclass
class Recorder:
    """The StatusSink: every progress report, the warning count, the checkpoint time."""

    progress: list[Progress] = field(default_factory=list)
    warnings: int = 0
    checkpoint_at: float | None = None

    def set_progress(self, progress: Progress) -> None:
        self.progress.append(progress)

    def set_warnings(self, count: int) -> None:
        self.warnings = count

    def set_checkpoint_at(self, saved_at: float) -> None:
        self.checkpoint_at = saved_at


@dataclass
class Stops:
    """The StopSource: asks for a pause once `pause_when` holds for the last progress."""

    recorder: Recorder
    pause_when: Callable[[Progress], bool] | None = None

    def current(self) -> StopDecision | None:
        if self.pause_when and self.recorder.progress and self.pause_when(
                self.recorder.progress[-1]):
            return StopDecision("pause", 1)
        return None


@dataclass
class TaskRun:
    ctx: TaskContext
    recorder: Recorder


async def load_checkpoint(redis_url: str, uid: str) -> Checkpoint | None:
    client = connect(redis_url)
    try:
        return await RedisChannel(client, Keys(uid), retry_seconds=2).load_checkpoint()
    finally:
        await client.aclose()


async def run_task(task: Task, *, uid: str, redis_url: str, database_url: str | None,
                   params: dict[str, Any], job_type: str,
                   pause_when: Callable[[Progress], bool] | None = None,
                   name: str = "job") -> tuple[dict[str, Any], TaskRun]:
    """Run `task` as the runner would, resuming from the job's checkpoint in Redis.

    Raises what the task raises (StopRequested on a pause, FatalTaskError, ...); the
    TaskRun of a raising run is attached to the exception as `.run`.
    """
    client = connect(redis_url)
    channel = RedisChannel(client, Keys(uid), retry_seconds=2)
    recorder = Recorder()
    ctx = TaskContext(JobIdentity.create(uid, name, "tests", job_type, params),
                      checkpoint=await channel.load_checkpoint(), database_url=database_url,
                      pod=f"pod-{name}", status=recorder, checkpoints=channel,
                      stops=Stops(recorder, pause_when))
    run = TaskRun(ctx, recorder)
    try:
        return await task.run(ctx), run
    except BaseException as exc:
        exc.run = run  # type: ignore[attr-defined]
        raise
    finally:
        await client.aclose()


async def query(database_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_async_engine(async_database_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(text(sql), params)).mappings()]
    finally:
        await engine.dispose()


async def count(database_url: str, table: str) -> int:
    return int((await query(database_url, f"SELECT count(*) AS n FROM {table}"))[0]["n"])


async def lock_is_free(client: aioredis.Redis, key: str) -> bool:
    return not await client.exists(key)
