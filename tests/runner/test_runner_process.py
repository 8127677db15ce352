"""The runner as a real process against real Redis: progress, pause, resume, cancel, stop."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from runner_harness import (
    drain_statuses,
    has_checkpoint,
    read_checkpoint,
    read_status,
    runner_env,
    set_control,
    start_runner,
    wait_for_status,
)

from sync_runner.channel import close_quietly
from sync_runner.contract import STATE_TTL_SECONDS, ExitCode, Keys, RunnerState
from testkit.ports import free_port
from testkit.servers import RedisServer

pytestmark = pytest.mark.timeout(60)

State = RunnerState


async def test_progress_reaches_redis_hash_and_channel(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(Keys(uid).events)
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 6, "unitSeconds": 0.03}))

    assert await runner.wait() == ExitCode.SUCCEEDED, runner.output()

    published = await drain_statuses(pubsub)
    await close_quietly(pubsub)
    states = [s.state for s in published]
    assert states[0] == State.STARTING
    assert State.RUNNING in states
    assert states[-1] == State.SUCCEEDED
    dones = [s.progress.done for s in published]
    assert dones == sorted(dones)
    final = await read_status(redis_client, uid)
    assert final == published[-1]
    assert final.progress.done == final.progress.total == 6
    assert final.progress.percent == 100
    assert final.summary == {"items": 6, "resumedFrom": 0, "processed": 6}
    for key in (Keys(uid).state, Keys(uid).checkpoint):
        assert 0 < await redis_client.ttl(key) <= STATE_TTL_SECONDS


async def test_logs_are_one_json_object_per_line(
        redis_server: RedisServer, uid: str, tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 2, "unitSeconds": 0}))
    assert await runner.wait() == ExitCode.SUCCEEDED
    lines = runner.output().splitlines()
    events = [json.loads(line) for line in lines]
    assert all(e["job_uid"] == uid for e in events)
    assert {"runner.started", "task.started", "task.succeeded", "runner.exit"} <= {
        e["event"] for e in events}


async def test_pause_flag_stops_at_safe_point_and_acks_with_checkpoint(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 200, "unitSeconds": 0.02}))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 3, runner=runner)

    await set_control(redis_client, uid, paused=True, generation=1)
    paused = await wait_for_status(redis_client, uid, lambda s: s.state == State.PAUSED,
                                   runner=runner)

    assert paused.acked_generation == 1
    checkpoint = await read_checkpoint(redis_client, uid)
    assert checkpoint.data == {"next": paused.progress.done}
    assert checkpoint.progress.done == paused.progress.done < 200
    assert paused.checkpoint_at == checkpoint.saved_at
    # Acknowledged, the pod waits (heartbeating) for the operator to suspend the Job.
    await asyncio.sleep(0.5)
    assert runner.running
    assert (await read_status(redis_client, uid)).heartbeat_at > paused.heartbeat_at
    runner.send(signal.SIGTERM)
    assert await runner.wait() == ExitCode.STOPPED
    assert (await read_checkpoint(redis_client, uid)) == checkpoint  # no work after the ack


async def test_resume_continues_from_checkpoint(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    params = {"items": 30, "unitSeconds": 0.02}
    first = start_runner(tmp_path, runner_env(redis_server.url, uid, params))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 5, runner=first)
    await set_control(redis_client, uid, paused=True, generation=1)
    paused = await wait_for_status(redis_client, uid, lambda s: s.state == State.PAUSED,
                                   runner=first)
    first.send(signal.SIGTERM)
    assert await first.wait() == ExitCode.STOPPED

    await set_control(redis_client, uid, paused=False, generation=2)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(Keys(uid).events)
    second = start_runner(tmp_path, runner_env(redis_server.url, uid, params))
    assert await second.wait() == ExitCode.SUCCEEDED, second.output()

    starting = (await drain_statuses(pubsub))[0]
    await close_quietly(pubsub)
    assert starting.state == State.STARTING
    assert starting.progress.done == paused.progress.done  # not back to zero
    final = await read_status(redis_client, uid)
    assert final.state == State.SUCCEEDED
    assert final.progress.done == 30
    assert final.summary["resumedFrom"] == paused.progress.done
    assert final.summary["processed"] == 30 - paused.progress.done


async def test_cancel_acks_and_exits_stopped_on_sigterm(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 200, "unitSeconds": 0.02}))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 2, runner=runner)

    await set_control(redis_client, uid, cancel=True, generation=4)
    cancelled = await wait_for_status(redis_client, uid,
                                      lambda s: s.state == State.CANCELLED, runner=runner)

    assert cancelled.acked_generation == 4
    assert runner.running
    runner.send(signal.SIGTERM)
    assert await runner.wait() == ExitCode.STOPPED


async def test_cancel_after_a_pause_ack_is_acknowledged_too(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 200, "unitSeconds": 0.02}))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 1, runner=runner)
    await set_control(redis_client, uid, paused=True, generation=1)
    await wait_for_status(redis_client, uid, lambda s: s.state == State.PAUSED, runner=runner)

    await set_control(redis_client, uid, paused=True, cancel=True, generation=2)
    cancelled = await wait_for_status(redis_client, uid,
                                      lambda s: s.state == State.CANCELLED, runner=runner)

    assert cancelled.acked_generation == 2
    runner.send(signal.SIGTERM)
    assert await runner.wait() == ExitCode.STOPPED


async def test_resume_before_the_pod_is_released_exits_so_a_new_pod_continues(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 200, "unitSeconds": 0.02}))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 1, runner=runner)
    await set_control(redis_client, uid, paused=True, generation=1)
    await wait_for_status(redis_client, uid, lambda s: s.state == State.PAUSED, runner=runner)

    await set_control(redis_client, uid, paused=False, generation=2)

    assert await runner.wait(within=5) == ExitCode.STOPPED
    assert "stop.resumed_before_release" in {e["event"] for e in runner.events()}


async def test_nobody_releasing_the_pod_after_an_ack_ends_it_after_the_timeout(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    await set_control(redis_client, uid, paused=True, generation=1)
    runner = start_runner(tmp_path, runner_env(
        redis_server.url, uid, {"items": 5}, SYNC_RUNNER_WAIT_AFTER_ACK_SECONDS="0.5"))

    assert await runner.wait(within=10) == ExitCode.STOPPED
    assert "stop.release_timeout" in {e["event"] for e in runner.events()}


async def test_sigterm_while_running_checkpoints_and_exits_stopped(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 200, "unitSeconds": 0.02}))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 3, runner=runner)

    runner.send(signal.SIGTERM)

    assert await runner.wait(within=5) == ExitCode.STOPPED
    final = await read_status(redis_client, uid)
    assert final.state == State.INTERRUPTED
    assert final.acked_generation == 0
    checkpoint = await read_checkpoint(redis_client, uid)
    assert checkpoint.data == {"next": final.progress.done}
    assert final.checkpoint_at == checkpoint.saved_at


@pytest.mark.parametrize(("params", "reason"), [
    ({"fatal": True}, "FatalRequested"),
    ({"items": "many"}, "InvalidParams"),
])
async def test_fatal_error_exits_with_fatal_code(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path, params: dict[str, Any], reason: str) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid, params))

    assert await runner.wait() == ExitCode.FATAL
    final = await read_status(redis_client, uid)
    assert final.state == State.FAILED
    assert (final.error or "").startswith(f"{reason}: ")


async def test_retryable_failure_exits_failed_and_the_retry_gets_past_it(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    params = {"items": 8, "unitSeconds": 0.01, "failAt": 4}
    first = start_runner(tmp_path, runner_env(redis_server.url, uid, params))
    assert await first.wait() == ExitCode.FAILED
    failed = await read_status(redis_client, uid)
    assert failed.state == State.FAILED
    assert "unit 4 failed" in (failed.error or "")
    assert failed.progress.done == 4

    retry = start_runner(tmp_path, runner_env(redis_server.url, uid, params))
    assert await retry.wait() == ExitCode.SUCCEEDED, retry.output()
    final = await read_status(redis_client, uid)
    assert final.summary["resumedFrom"] == 4
    assert final.progress.done == 8


@pytest.mark.parametrize(("control", "state"), [
    ({"paused": True}, State.PAUSED),
    ({"cancel": True}, State.CANCELLED),
])
async def test_control_set_before_start_is_acked_without_work(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path, control: dict[str, bool], state: RunnerState) -> None:
    await set_control(redis_client, uid, generation=3, **control)
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 5, "unitSeconds": 0.01}))

    acked = await wait_for_status(redis_client, uid, lambda s: s.state == state,
                                  runner=runner)

    assert acked.acked_generation == 3
    assert acked.progress.done == 0
    assert not await has_checkpoint(redis_client, uid)
    assert "task.started" not in {e["event"] for e in runner.events()}
    runner.send(signal.SIGTERM)
    assert await runner.wait() == ExitCode.STOPPED


async def test_ignore_stop_task_keeps_running(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(
        redis_server.url, uid, {"items": 500, "unitSeconds": 0.02, "ignoreStop": True}))
    await wait_for_status(redis_client, uid, lambda s: s.progress.done >= 2, runner=runner)

    await set_control(redis_client, uid, cancel=True, generation=1)
    runner.send(signal.SIGTERM)
    before = (await read_status(redis_client, uid)).progress.done
    await asyncio.sleep(0.6)

    assert runner.running
    status = await read_status(redis_client, uid)
    assert status.state == State.RUNNING
    assert status.acked_generation == 0
    assert status.progress.done > before
    runner.send(signal.SIGKILL)  # what the operator's forced cancel amounts to
    assert await runner.wait() == -signal.SIGKILL


async def test_unknown_job_type_runs_the_fallback_task_with_a_warning(
        redis_server: RedisServer, redis_client: aioredis.Redis, uid: str,
        tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(redis_server.url, uid,
                                               {"items": 2, "unitSeconds": 0},
                                               job_type="zakat"))

    assert await runner.wait() == ExitCode.SUCCEEDED
    final = await read_status(redis_client, uid)
    assert final.warnings == 1
    assert final.summary["warningCount"] == 1
    assert "zakat" in final.summary["warnings"][0]


async def test_runner_survives_a_redis_restart_and_finishes(
        private_redis: RedisServer, uid: str, tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(private_redis.url, uid,
                                               {"items": 40, "unitSeconds": 0.03}))
    client = aioredis.Redis.from_url(private_redis.url, decode_responses=True)
    await wait_for_status(client, uid, lambda s: s.progress.done >= 3, runner=runner)
    await client.aclose()

    private_redis.stop()
    await asyncio.sleep(0.7)
    assert runner.running
    private_redis.start()  # same port, empty (no persistence)

    assert await runner.wait(within=20) == ExitCode.SUCCEEDED, runner.output()
    client = aioredis.Redis.from_url(private_redis.url, decode_responses=True)
    try:
        final = await read_status(client, uid)
        assert final.state == State.SUCCEEDED
        assert final.progress.done == 40
        assert (await read_checkpoint(client, uid)).data == {"next": 40}
    finally:
        await client.aclose()
    assert "redis.retrying" in {e["event"] for e in runner.events()}


async def test_redis_unreachable_at_start_exits_failed_so_the_job_retries(
        uid: str, tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(
        f"redis://127.0.0.1:{free_port()}/0", uid, SYNC_RUNNER_REDIS_RETRY_SECONDS="0.5"))

    assert await runner.wait() == ExitCode.FAILED
    assert "runner.redis_unavailable" in {e["event"] for e in runner.events()}


async def test_sigterm_while_waiting_for_redis_at_start_exits_stopped(
        uid: str, tmp_path: Path) -> None:
    runner = start_runner(tmp_path, runner_env(f"redis://127.0.0.1:{free_port()}/0", uid))
    while not any(e["event"] == "redis.retrying" for e in runner.events()):
        assert runner.running, runner.output()
        await asyncio.sleep(0.02)  # up, signal handlers installed, retrying (budget 10 s)

    runner.send(signal.SIGTERM)

    assert await runner.wait(within=3) == ExitCode.STOPPED
