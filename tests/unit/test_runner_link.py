"""RunnerLink against a real Redis: the control generation guard and outage tolerance.

The session's `redis_server` (tests/conftest.py) serves every test here; each
test has its own SyncJob uid, so its own keys and channels.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from sync_operator.syncjob.runner_link import RunnerLink
from sync_runner.contract import (
    CONTROL_FIELD,
    STATE_FIELD,
    Checkpoint,
    Control,
    Keys,
    Progress,
    RunnerState,
    RunnerStatus,
)
from testkit.ports import free_port
from testkit.servers import RedisServer

WAIT = 5.0


@pytest.fixture
def uid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RunnerLink]:
    runner_link = RunnerLink(redis_server.url)
    yield runner_link
    await runner_link.close()


class ControlChannel:
    """A subscriber on one job's control channel; returns messages up to a marker."""

    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        self.client = client
        self.channel = channel
        self.pubsub = client.pubsub()

    async def __aenter__(self) -> ControlChannel:
        await self.pubsub.subscribe(self.channel)

        async def confirmed() -> None:  # from here on, every publish reaches us
            async for message in self.pubsub.listen():
                if message["type"] == "subscribe":
                    return

        await asyncio.wait_for(confirmed(), WAIT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    async def until_marker(self) -> list[str]:
        """Every message published before now: publish a marker and read up to it.

        Redis runs commands one at a time and delivers a channel's messages in that
        order, so anything published before the marker arrives before it.
        """
        marker = f"marker-{uuid.uuid4()}"
        await self.client.publish(self.channel, marker)
        seen: list[str] = []

        async def read() -> None:
            async for message in self.pubsub.listen():
                if message["type"] != "message":
                    continue
                if message["data"] == marker:
                    return
                seen.append(str(message["data"]))

        await asyncio.wait_for(read(), WAIT)
        return seen


async def stored_control(client: aioredis.Redis, uid: str) -> Control | None:
    raw = await client.hget(Keys(uid).control, CONTROL_FIELD)
    return None if raw is None else Control.model_validate_json(raw)


async def test_an_older_generation_is_refused_and_only_the_newer_one_is_published(
        link: RunnerLink, redis_client: aioredis.Redis, uid: str) -> None:
    newer = Control(paused=True, generation=2)
    older = Control(cancel=True, generation=1)
    async with ControlChannel(redis_client, Keys(uid).control_channel) as channel:
        assert await link.set_control(uid, newer) is True
        assert await link.set_control(uid, older) is False
        published = await channel.until_marker()

    assert await stored_control(redis_client, uid) == newer
    assert [Control.model_validate_json(m) for m in published] == [newer]
    assert await redis_client.ttl(Keys(uid).control) > 0  # the control hash expires
    assert link.available  # a refused write is not an outage


async def test_an_equal_generation_is_refused(link: RunnerLink, redis_client: aioredis.Redis,
                                              uid: str) -> None:
    first = Control(paused=True, generation=3)
    async with ControlChannel(redis_client, Keys(uid).control_channel) as channel:
        assert await link.set_control(uid, first) is True
        # A replayed request (an operator restart) must not flip the flags it carried.
        assert await link.set_control(uid, Control(paused=False, generation=3)) is False
        published = await channel.until_marker()
    assert await stored_control(redis_client, uid) == first
    assert len(published) == 1


async def test_each_newer_generation_is_stored_and_reaches_a_subscriber(
        link: RunnerLink, redis_client: aioredis.Redis, uid: str) -> None:
    sent = [Control(paused=True, generation=1), Control(paused=False, generation=2),
            Control(cancel=True, generation=5)]
    async with ControlChannel(redis_client, Keys(uid).control_channel) as channel:
        for control in sent:
            assert await link.set_control(uid, control) is True
        published = await channel.until_marker()
    assert [Control.model_validate_json(m) for m in published] == sent
    assert await stored_control(redis_client, uid) == sent[-1]


async def test_a_control_value_that_is_not_json_is_overwritten(
        link: RunnerLink, redis_client: aioredis.Redis, uid: str) -> None:
    await redis_client.hset(Keys(uid).control, CONTROL_FIELD, "{not json")
    control = Control(cancel=True, generation=1)
    assert await link.set_control(uid, control) is True
    assert await stored_control(redis_client, uid) == control


@pytest.mark.parametrize("raw", ["5", '{"generation": null}', '{"generation": "7"}',
                                 "[]", '"a string"', '{"paused": true}'],
                         ids=["number", "null-generation", "string-generation", "array",
                              "string", "no-generation"])
async def test_a_control_value_of_the_wrong_json_shape_does_not_block_a_newer_one(
        link: RunnerLink, redis_client: aioredis.Redis, uid: str, raw: str) -> None:
    await redis_client.hset(Keys(uid).control, CONTROL_FIELD, raw)
    control = Control(cancel=True, generation=8)  # newer than any generation in `raw`
    assert await link.set_control(uid, control) is True
    assert link.available
    assert await stored_control(redis_client, uid) == control


async def test_a_valid_status_and_checkpoint_are_read_back(
        link: RunnerLink, redis_client: aioredis.Redis, uid: str) -> None:
    status = RunnerStatus(state=RunnerState.RUNNING, progress=Progress(done=3, total=9),
                          acked_generation=2)
    checkpoint = Checkpoint(data={"page": 4}, progress=Progress(done=3))
    await redis_client.hset(Keys(uid).state, STATE_FIELD, status.model_dump_json())
    await redis_client.set(Keys(uid).checkpoint, checkpoint.model_dump_json())
    assert await link.status(uid) == status
    assert await link.checkpoint(uid) == checkpoint
    assert await link.status(str(uuid.uuid4())) is None  # nothing stored yet
    assert await link.checkpoint(str(uuid.uuid4())) is None


@pytest.mark.parametrize("raw", [
    "{not json", "[]", '{"state": "dancing"}', '{"progress": {"done": 1}}',
    '{"state": "running", "progress": {"done": -1}}',
], ids=["not-json", "array", "unknown-state", "no-state", "negative-done"])
async def test_a_malformed_status_reads_as_none(link: RunnerLink, redis_client: aioredis.Redis,
                                                uid: str, raw: str) -> None:
    await redis_client.hset(Keys(uid).state, STATE_FIELD, raw)
    assert await link.status(uid) is None
    assert link.available  # bad data is not an outage


@pytest.mark.parametrize("raw", [
    "{not json", '"a string"', '{"progress": {"done": -1}}', '{"data": [1, 2]}',
], ids=["not-json", "string", "negative-done", "data-not-object"])
async def test_a_malformed_checkpoint_reads_as_none(
        link: RunnerLink, redis_client: aioredis.Redis, uid: str, raw: str) -> None:
    await redis_client.set(Keys(uid).checkpoint, raw)
    assert await link.checkpoint(uid) is None
    assert link.available


async def _closed(link: RunnerLink, uid: str) -> list[Any]:
    """What each call answers while nothing listens at the link's address."""
    return [await link.status(uid), await link.checkpoint(uid),
            await link.set_control(uid, Control(paused=True, generation=1)),
            await link.deleter(uid)]


async def test_with_redis_unreachable_reads_are_none_writes_fail_and_it_is_unavailable(
        uid: str) -> None:
    link = RunnerLink(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert link.available
        assert await link.status(uid) is None
        assert link.available is False
        link.available = True
        assert await link.checkpoint(uid) is None
        assert link.available is False
        link.available = True
        assert await link.set_control(uid, Control(paused=True, generation=1)) is False
        assert link.available is False
        # Best-effort calls swallow the outage too.
        await link.record_deleter(uid, "alice")
        await link.forget(uid)
        assert await link.deleter(uid) is None
        assert link.available is False
    finally:
        await link.close()


async def test_availability_returns_after_a_successful_call(tmp_path: Path, uid: str) -> None:
    server = RedisServer(tmp_path / "redis", port=free_port())
    link = RunnerLink(server.url)  # Redis is not started yet
    try:
        assert await _closed(link, uid) == [None, None, False, None]
        assert link.available is False

        server.start()  # Redis comes back at the same address
        assert await link.status(uid) is None  # answered: nothing stored
        assert link.available is True

        link.available = False
        assert await link.set_control(uid, Control(paused=True, generation=1)) is True
        assert link.available is True
        assert await link.status(uid) is None
        assert (await link.redis.hget(Keys(uid).control, CONTROL_FIELD)) is not None
    finally:
        await link.close()
        server.stop()


async def test_availability_returns_after_a_successful_checkpoint_read(
        link: RunnerLink, uid: str) -> None:
    link.available = False  # as left by an outage
    assert await link.checkpoint(uid) is None  # answered: nothing stored
    assert link.available is True


async def test_availability_returns_after_each_kind_of_successful_call(
        link: RunnerLink, uid: str) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: link.record_deleter(uid, "alice"), lambda: link.deleter(uid),
        lambda: link.forget(uid)]
    for call in calls:
        link.available = False  # as left by an outage
        await call()
        assert link.available is True
