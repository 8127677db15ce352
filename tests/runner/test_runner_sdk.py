"""The SDK and its Redis side in-process: rate-limited progress, checkpoints through
outages, stop decisions. Real Redis; a private one where a test stops it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from runner_harness import maybe_status, read_checkpoint, read_status, set_control

from sync_runner.channel import RedisChannel, connect
from sync_runner.contract import Checkpoint, Control, Keys, Progress, RunnerState, RunnerStatus
from sync_runner.control import ControlWatcher, StopSignals
from sync_runner.reporter import StatusReporter
from sync_runner.sdk import (
    CheckpointNotSavedError,
    JobIdentity,
    StopDecision,
    StopRequested,
    TaskContext,
)
from testkit.servers import RedisServer

pytestmark = pytest.mark.timeout(30)


@dataclass
class Rig:
    """The runner's parts around one TaskContext, with the loops running."""

    client: aioredis.Redis
    reporter: StatusReporter
    watcher: ControlWatcher
    stops: StopSignals
    ctx: TaskContext


async def rig(url: str, uid: str, *, retry_seconds: float = 5.0,
              min_interval: float = 0.2, checkpoint: Checkpoint | None = None
              ) -> AsyncIterator[Rig]:
    client = connect(url)
    channel = RedisChannel(client, Keys(uid), retry_seconds=retry_seconds)
    reporter = StatusReporter(channel, RunnerStatus(state=RunnerState.RUNNING, pod="p"),
                              min_interval=min_interval, heartbeat_seconds=0.3)
    watcher = ControlWatcher(channel, initial=Control(), poll_seconds=0.2)
    stops = StopSignals(watcher)
    ctx = TaskContext(JobIdentity.create(uid, "j", "ns", "demo", {}), checkpoint=checkpoint,
                      database_url=None, pod="p", status=reporter, checkpoints=channel,
                      stops=stops)
    loops = [asyncio.create_task(reporter.run()), asyncio.create_task(watcher.run())]
    try:
        yield Rig(client, reporter, watcher, stops, ctx)
    finally:
        reporter.stop()
        watcher.stop()
        await asyncio.wait(loops, timeout=10)
        await client.aclose()


@pytest.fixture
async def parts(redis_server: RedisServer, uid: str) -> AsyncIterator[Rig]:
    async for made in rig(redis_server.url, uid):
        yield made


@pytest.fixture
async def parts_on_private_redis(private_redis: RedisServer, uid: str) -> AsyncIterator[Rig]:
    async for made in rig(private_redis.url, uid, retry_seconds=0.8, min_interval=0.01):
        yield made


async def eventually_status(client: aioredis.Redis, uid: str, done: int,
                            within: float = 5.0) -> RunnerStatus:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = await maybe_status(client, uid)
        if status is not None and status.progress.done == done:
            return status
        await asyncio.sleep(0.02)
    raise TimeoutError(f"progress {done} never landed")


async def test_progress_is_rate_limited_but_the_latest_value_lands(
        parts: Rig, redis_client: aioredis.Redis, uid: str) -> None:
    for done in range(1, 201):
        await parts.ctx.progress(done, 200, "ayahs", f"ayah {done}")

    status = await eventually_status(redis_client, uid, 200)

    assert parts.reporter.publishes <= 5
    assert status.progress.total == 200
    assert status.progress.unit == "ayahs"
    assert status.progress.message == "ayah 200"


async def test_heartbeat_is_published_while_the_task_is_quiet(
        parts: Rig, redis_client: aioredis.Redis, uid: str) -> None:
    await parts.ctx.progress(1)
    first = await eventually_status(redis_client, uid, 1)

    await asyncio.sleep(0.8)

    assert (await read_status(redis_client, uid)).heartbeat_at >= first.heartbeat_at + 0.25


async def test_saved_checkpoint_carries_data_and_progress_and_is_reported(
        parts: Rig, redis_client: aioredis.Redis, uid: str) -> None:
    await parts.ctx.progress(7, 10)

    await parts.ctx.save_checkpoint({"next": 7, "cursor": "abc"})

    stored = await read_checkpoint(redis_client, uid)
    assert stored.data == {"next": 7, "cursor": "abc"}
    assert stored.progress.done == 7
    assert stored.pod == "p"
    assert parts.reporter.status.checkpoint_at == stored.saved_at


async def test_checkpoint_data_must_be_json(parts: Rig) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await parts.ctx.save_checkpoint({"when": object()})


async def test_context_offers_the_previous_pods_checkpoint_data(
        redis_server: RedisServer, uid: str) -> None:
    previous = Checkpoint(data={"next": 4}, progress=Progress(done=4, total=9))
    async for made in rig(redis_server.url, uid, checkpoint=previous):
        assert made.ctx.checkpoint == {"next": 4}
        assert made.ctx.current_progress.done == 4


async def test_checkpoint_save_waits_out_a_short_redis_outage(
        private_redis: RedisServer, uid: str) -> None:
    async for made in rig(private_redis.url, uid, retry_seconds=10):
        private_redis.stop()
        save = asyncio.create_task(made.ctx.save_checkpoint({"next": 3}))
        await asyncio.sleep(0.5)
        assert not save.done()

        private_redis.start()
        await asyncio.wait_for(save, 10)

        assert (await read_checkpoint(made.client, uid)).data == {"next": 3}


async def test_checkpoint_that_cannot_be_saved_is_reported_not_claimed(
        parts_on_private_redis: Rig, private_redis: RedisServer) -> None:
    private_redis.stop()

    with pytest.raises(CheckpointNotSavedError, match="save checkpoint"):
        await parts_on_private_redis.ctx.save_checkpoint({"next": 1})

    assert parts_on_private_redis.reporter.status.checkpoint_at is None


async def test_progress_lands_after_redis_comes_back(
        parts_on_private_redis: Rig, private_redis: RedisServer, uid: str) -> None:
    private_redis.stop()
    await parts_on_private_redis.ctx.progress(5, 9)  # does not block the task
    await asyncio.sleep(0.5)

    private_redis.start()

    await eventually_status(parts_on_private_redis.client, uid, 5, within=10)


async def test_safe_point_raises_the_requested_stop(
        parts: Rig, redis_client: aioredis.Redis, uid: str) -> None:
    await parts.ctx.safe_point()
    assert not parts.ctx.should_stop()

    await set_control(redis_client, uid, paused=True, generation=2)
    await asyncio.wait_for(parts.watcher.wait_newer(0), 2)

    assert parts.ctx.should_stop()
    with pytest.raises(StopRequested) as raised:
        await parts.ctx.safe_point()
    assert (raised.value.reason, raised.value.generation) == ("pause", 2)


async def test_cancel_outranks_pause_and_sigterm(
        parts: Rig, redis_client: aioredis.Redis, uid: str) -> None:
    parts.stops.terminate()
    assert parts.stops.current() == StopDecision("sigterm", 0)

    await set_control(redis_client, uid, paused=True, cancel=True, generation=5)
    await asyncio.wait_for(parts.watcher.wait_newer(0), 2)

    assert parts.stops.current() == StopDecision("cancel", 5)


async def test_control_watcher_never_goes_back_to_an_older_generation(parts: Rig) -> None:
    assert parts.watcher.offer(Control(paused=True, generation=3))

    assert not parts.watcher.offer(Control(paused=False, generation=2))
    assert parts.watcher.latest.generation == 3


async def test_warnings_are_counted_and_reported(
        parts: Rig, redis_client: aioredis.Redis, uid: str) -> None:
    parts.ctx.warn("ayah 3 has no translation")
    parts.ctx.warn("ayah 9 has no translation")
    await parts.ctx.progress(1)

    status = await eventually_status(redis_client, uid, 1)

    assert status.warnings == 2
    assert parts.ctx.warnings == (2, ["ayah 3 has no translation", "ayah 9 has no translation"])


def test_job_params_are_a_read_only_copy() -> None:
    params = {"surahs": [1, 2]}
    job = JobIdentity.create("u", "n", "ns", "quran", params)
    params["surahs"].append(3)

    assert job.params == {"surahs": [1, 2]}
    with pytest.raises(TypeError):
        job.params["x"] = 1  # type: ignore[index]
