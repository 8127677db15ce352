"""The per-resource lease in real Redis: fencing tokens, policies, renewal, expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

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
from testkit.waiting import eventually

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def resource() -> str:
    return f"res-{uuid.uuid4().hex[:8]}"


def lock(client: aioredis.Redis, resource: str, job: str,
         between_tries: Callable[[], Awaitable[None]] | None = None,
         **settings: object) -> ResourceLock:
    return ResourceLock(client, "quran", resource, job=job, pod=f"{job}-pod",
                        settings=LockSettings(**settings),  # type: ignore[arg-type]
                        between_tries=between_tries)


async def key_gone(client: aioredis.Redis, resource: str) -> bool:
    return not await client.exists(lock_key("quran", resource))


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
    key = lock_key("quran", resource)
    first = await lock(redis_client, resource, "first").acquire()
    tries = 0
    refused_thrice = asyncio.Event()

    async def between_tries() -> None:  # called after each try that found the lease held
        nonlocal tries
        tries += 1
        if tries == 3:
            refused_thrice.set()

    waiting = asyncio.create_task(lock(redis_client, resource, "second", between_tries,
                                       poll_seconds=0.05).acquire())
    try:
        await asyncio.wait_for(refused_thrice.wait(), 10)
        # Three tries found the lease held; the second holder is still waiting for it.
        assert not waiting.done()
        assert await redis_client.get(key) == first.holder.value()

        await first.release()
        second = await asyncio.wait_for(waiting, 5)
    finally:
        waiting.cancel()

    assert second.fence > first.fence
    assert await redis_client.get(key) == second.holder.value()
    await second.release()


async def test_waiting_is_bounded_and_ends_in_a_retryable_error(
        redis_client: aioredis.Redis, resource: str) -> None:
    async with lock(redis_client, resource, "first").held():
        with pytest.raises(LockTimeoutError, match="still held by job 'first'"):
            await lock(redis_client, resource, "second", wait_seconds=0.3,
                       poll_seconds=0.05).acquire()


async def test_a_held_lease_is_renewed_past_its_ttl(
        redis_client: aioredis.Redis, resource: str) -> None:
    ttl = 1.0
    key = lock_key("quran", resource)
    async with lock(redis_client, resource, "a", ttl_seconds=ttl).held() as lease:
        # The lease was SET with PX ttl before this instant, so unrenewed it is gone
        # by acquired + ttl.
        acquired = time.monotonic()
        refreshes = 0
        last_pttl = await redis_client.pttl(key)

        async def renewed_past_its_ttl() -> bool:
            nonlocal refreshes, last_pttl
            sampled = time.monotonic()
            pttl = await redis_client.pttl(key)
            assert pttl > 0, f"the held lease's key is gone (PTTL {pttl})"
            assert await redis_client.get(key) == lease.holder.value()  # same holder, token
            if pttl > last_pttl:  # counting down, unless a renewal pushed it back up
                refreshes += 1
            last_pttl = pttl
            return refreshes >= 2 and sampled - acquired > 1.5 * ttl

        await eventually(renewed_past_its_ttl, timeout=20, interval=0.05,
                         what="the lease to outlive its ttl through renewals")
        lease.check()


async def test_a_dead_holders_lease_expires_and_the_next_holder_fences_it_out(
        redis_client: aioredis.Redis, resource: str) -> None:
    key = lock_key("quran", resource)
    dead = await lock(redis_client, resource, "dead", ttl_seconds=0.5).acquire()
    dead.abandon()  # the pod died: nobody renews
    assert await redis_client.get(key) == dead.holder.value()  # nor released it

    await eventually(lambda: key_gone(redis_client, resource), timeout=10,
                     what="the dead holder's lease to expire")

    # policy=fail: the lease is free now, with no waiting.
    async with lock(redis_client, resource, "next", policy="fail").held() as lease:
        assert lease.fence > dead.fence
        assert await redis_client.get(key) == lease.holder.value()


async def test_release_never_deletes_another_holders_lease(
        redis_client: aioredis.Redis, resource: str) -> None:
    key = lock_key("quran", resource)
    stale = await lock(redis_client, resource, "stale", ttl_seconds=0.4).acquire()
    stale.abandon()
    await eventually(lambda: key_gone(redis_client, resource), timeout=10,
                     what="the stale lease to expire")
    current = await lock(redis_client, resource, "current", policy="fail").acquire()

    await stale.release()

    assert await redis_client.get(key) == current.holder.value()
    current.check()
    await current.release()
    assert not await redis_client.exists(key)  # while a holder's own release does delete it


async def test_a_lease_taken_away_is_noticed_at_the_next_check(
        redis_client: aioredis.Redis, resource: str) -> None:
    key = lock_key("quran", resource)
    lease = await lock(redis_client, resource, "a", ttl_seconds=0.6).acquire()
    lease.check()  # held: no error
    await redis_client.delete(key)  # as if it expired during a stall ...
    thief = await lock(redis_client, resource, "b", policy="fail").acquire()  # ... and taken

    async def check_fails() -> LockLostError | None:
        try:
            lease.check()
        except LockLostError as err:
            return err
        return None

    try:
        lost = await eventually(check_fails, timeout=10, interval=0.05,
                                what="a check of the taken lease to fail")
        assert "expired or taken" in str(lost)
        await lease.release()
        assert await redis_client.get(key) == thief.holder.value()
    finally:
        await thief.release()
