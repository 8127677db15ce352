"""The per-resource lease in real Redis: fencing tokens, policies, renewal, expiry."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from sync_runner.locks import (
    LockHeldError,
    LockLostError,
    LockSettings,
    LockTimeoutError,
    ResourceLock,
    lock_key,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def resource() -> str:
    return f"res-{uuid.uuid4().hex[:8]}"


def lock(client: aioredis.Redis, resource: str, job: str, **settings: object) -> ResourceLock:
    return ResourceLock(client, "quran", resource, job=job, pod=f"{job}-pod",
                        settings=LockSettings(**settings))  # type: ignore[arg-type]


def test_lock_keys_name_the_job_type_and_the_resource() -> None:
    assert lock_key("quran", "chapters") == "sync:lock:quran:chapters"


async def test_each_lease_gets_a_larger_fencing_token(
        redis_client: aioredis.Redis, resource: str) -> None:
    fences = []
    for _ in range(3):
        async with lock(redis_client, resource, "a").held() as lease:
            fences.append(lease.fence)

    assert fences == sorted(fences)
    assert len(set(fences)) == 3
    assert not await redis_client.exists(lock_key("quran", resource))


async def test_second_holder_with_fail_policy_is_told_who_holds_the_lock(
        redis_client: aioredis.Redis, resource: str) -> None:
    async with lock(redis_client, resource, "first").held():
        with pytest.raises(LockHeldError) as raised:
            await lock(redis_client, resource, "second", policy="fail").acquire()

    assert raised.value.reason == "LockHeld"
    assert "job 'first' (pod 'first-pod')" in raised.value.message
    assert f"sync:lock:quran:{resource}" in raised.value.message


async def test_second_holder_with_wait_policy_gets_the_lock_once_released(
        redis_client: aioredis.Redis, resource: str) -> None:
    first = await lock(redis_client, resource, "first").acquire()
    waiting = asyncio.create_task(
        lock(redis_client, resource, "second", poll_seconds=0.05).acquire())
    await asyncio.sleep(0.3)
    assert not waiting.done()

    await first.release()
    second = await asyncio.wait_for(waiting, 5)

    assert second.fence > first.fence
    await second.release()


async def test_waiting_is_bounded_and_ends_in_a_retryable_error(
        redis_client: aioredis.Redis, resource: str) -> None:
    async with lock(redis_client, resource, "first").held():
        with pytest.raises(LockTimeoutError, match="still held by job 'first'"):
            await lock(redis_client, resource, "second", wait_seconds=0.3,
                       poll_seconds=0.05).acquire()


async def test_a_held_lease_is_renewed_past_its_ttl(
        redis_client: aioredis.Redis, resource: str) -> None:
    async with lock(redis_client, resource, "a", ttl_seconds=0.6).held() as lease:
        await asyncio.sleep(1.5)
        lease.check()
        assert await redis_client.pttl(lock_key("quran", resource)) > 0


async def test_a_dead_holders_lease_expires_and_the_next_holder_fences_it_out(
        redis_client: aioredis.Redis, resource: str) -> None:
    dead = await lock(redis_client, resource, "dead", ttl_seconds=0.5).acquire()
    dead.abandon()  # the pod died: nobody renews

    async with lock(redis_client, resource, "next", poll_seconds=0.05).held() as lease:
        assert lease.fence > dead.fence


async def test_release_never_deletes_another_holders_lease(
        redis_client: aioredis.Redis, resource: str) -> None:
    stale = await lock(redis_client, resource, "stale", ttl_seconds=0.4).acquire()
    stale.abandon()
    await asyncio.sleep(0.6)
    current = await lock(redis_client, resource, "current").acquire()

    await stale.release()

    assert await redis_client.exists(lock_key("quran", resource))
    await current.release()


async def test_a_lease_taken_away_is_noticed_at_the_next_check(
        redis_client: aioredis.Redis, resource: str) -> None:
    lease = await lock(redis_client, resource, "a", ttl_seconds=0.6).acquire()
    await redis_client.delete(lock_key("quran", resource))
    await asyncio.sleep(0.5)

    with pytest.raises(LockLostError, match="expired or taken"):
        lease.check()
    await lease.release()
