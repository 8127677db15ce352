"""One holder per synced resource at a time: a Redis lease with a fencing token.

Two runners syncing the same resource (two SyncJobs of a type, or a retry racing a
slow pod) would interleave writes. The lease is `SET key value NX PX ttl`, taken
together with `INCR` of the resource's fence counter in one script, so every lease
has a fencing token larger than any before it. The holder renews the lease in the
background (compare-and-pexpire) and releases it on exit (compare-and-delete); a
holder that dies stops renewing and the lease expires after `ttl`. A holder that
stalls past its ttl may still believe it holds the lease: the fencing token, written
with every upsert (see content.store), lets the database reject its late writes.

Keys: `sync:lock:<job type>:<resource>` (the lease, value: JSON holder) and
`sync:fence:<job type>:<resource>` (the counter).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sync_runner.logs import get_logger, log_event
from sync_runner.sdk import FatalTaskError

LockPolicy = Literal["wait", "fail"]
log = get_logger("lock")

# KEYS[1] lease, KEYS[2] fence counter; ARGV[1] value, ARGV[2] ttl ms.
# Returns the new fencing token, or false when someone else holds the lease.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(job_type: str, resource: str) -> str:
    return f"sync:lock:{job_type}:{resource}"


def fence_key(job_type: str, resource: str) -> str:
    return f"sync:fence:{job_type}:{resource}"


class LockHeldError(FatalTaskError):
    """lockPolicy=fail and another job holds the resource: this sync would be redundant."""

    def __init__(self, key: str, holder: str) -> None:
        super().__init__("LockHeld", f"{key} is held by {holder}; lockPolicy is 'fail', so "
                         "this job stops (set lockPolicy: wait to queue behind it)")
        self.key = key


class LockTimeoutError(RuntimeError):
    """lockPolicy=wait, and the lease did not come free in time; retryable (Job retry)."""


class LockLostError(RuntimeError):
    """The lease expired or was taken while held; retryable, the writes are fenced."""


@dataclass(frozen=True)
class LockSettings:
    policy: LockPolicy = "wait"
    wait_seconds: float = 600.0  # how long `wait` waits before LockTimeoutError
    ttl_seconds: float = 30.0  # lease lifetime without renewal (a dead holder's expiry)
    poll_seconds: float = 1.0  # the longest pause between two tries while waiting


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: the lease value, so a blocked job can say who blocks it."""

    token: str
    job: str
    pod: str

    def value(self) -> str:
        return json.dumps({"token": self.token, "job": self.job, "pod": self.pod},
                          separators=(",", ":"))

    @staticmethod
    def describe(raw: str | None) -> str:
        if raw is None:
            return "nobody (it was just released)"
        try:
            data: dict[str, Any] = json.loads(raw)
            return f"job {data.get('job')!r} (pod {data.get('pod')!r})"
        except (ValueError, AttributeError):
            return "an unknown holder"


class Lease:
    """A held lock: its fencing token, and a background renewal until released."""

    def __init__(self, client: aioredis.Redis, key: str, holder: Holder, fence: int,
                 ttl_seconds: float) -> None:
        self.client = client
        self.key = key
        self.holder = holder
        self.fence = fence
        self.ttl_seconds = ttl_seconds
        self._value = holder.value()
        self._lost: str | None = None
        self._stopping = asyncio.Event()
        self._renewal: asyncio.Task[None] | None = None

    @property
    def lost(self) -> bool:
        return self._lost is not None

    def check(self) -> None:
        """Raise LockLostError if the lease is no longer ours; call it between units."""
        if self._lost is not None:
            raise LockLostError(f"{self.key}: {self._lost}")

    def start_renewal(self) -> None:
        self._renewal = asyncio.create_task(self._renew_loop(), name=f"renew {self.key}")

    async def _renew_loop(self) -> None:
        ttl_ms = int(self.ttl_seconds * 1000)
        interval = self.ttl_seconds / 3
        last_ok = time.monotonic()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            if self._stopping.is_set():
                return
            try:
                renewed = await self.client.eval(_RENEW, 1, self.key, self._value, ttl_ms)
            except (RedisError, OSError) as exc:
                if time.monotonic() - last_ok >= self.ttl_seconds:
                    self._lose(f"not renewed for {self.ttl_seconds:g}s (Redis: {exc})")
                    return
                continue
            if not renewed:
                self._lose("expired or taken by another holder")
                return
            last_ok = time.monotonic()

    def _lose(self, why: str) -> None:
        self._lost = why
        log_event(log, "lock.lost", level=logging.ERROR, key=self.key, fence=self.fence,
                  why=why)

    async def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours (never someone else's)."""
        self._stopping.set()
        if self._renewal is not None:
            await asyncio.wait({self._renewal}, timeout=5)
        with contextlib.suppress(RedisError, OSError):
            await self.client.eval(_RELEASE, 1, self.key, self._value)
        log_event(log, "lock.released", key=self.key, fence=self.fence)

    def abandon(self) -> None:
        """Stop renewing without releasing: what a crashed holder leaves behind (tests)."""
        self._stopping.set()


class ResourceLock:
    """The lock of one (job type, resource), taken per the job's lock policy."""

    def __init__(self, client: aioredis.Redis, job_type: str, resource: str, *, job: str,
                 pod: str, settings: LockSettings | None = None,
                 between_tries: Callable[[], Awaitable[None]] | None = None) -> None:
        self.client = client
        self.key = lock_key(job_type, resource)
        self.fence_key = fence_key(job_type, resource)
        self.job = job
        self.pod = pod
        self.settings = settings or LockSettings()
        # Called while waiting, e.g. the task's safe_point, so a pause is not blocked.
        self.between_tries = between_tries

    async def try_acquire(self) -> Lease | None:
        """One attempt: a Lease (renewal not started), or None if someone holds it."""
        holder = Holder(secrets.token_hex(16), self.job, self.pod)
        ttl_ms = int(self.settings.ttl_seconds * 1000)
        fence = await self.client.eval(
            _ACQUIRE, 2, self.key, self.fence_key, holder.value(), ttl_ms)
        if fence is None or fence is False:
            return None
        return Lease(self.client, self.key, holder, int(fence), self.settings.ttl_seconds)

    async def acquire(self) -> Lease:
        """Take the lease (waiting if the policy says so) and start renewing it."""
        deadline = time.monotonic() + self.settings.wait_seconds
        rng = random.Random()
        delay = 0.05
        logged = False
        while True:
            lease = await self.try_acquire()
            if lease is not None:
                lease.start_renewal()
                log_event(log, "lock.acquired", key=self.key, fence=lease.fence)
                return lease
            raw = await self.client.get(self.key)
            current = Holder.describe(raw.decode() if isinstance(raw, bytes) else raw)
            if self.settings.policy == "fail":
                raise LockHeldError(self.key, current)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(
                    f"{self.key} still held by {current} after waiting "
                    f"{self.settings.wait_seconds:g}s (lockWaitSeconds); the job will retry")
            if not logged:
                log_event(log, "lock.waiting", key=self.key, holder=current,
                          wait_seconds=self.settings.wait_seconds)
                logged = True
            if self.between_tries is not None:
                await self.between_tries()
            await asyncio.sleep(min(left, rng.uniform(delay / 2, delay)))
            delay = min(self.settings.poll_seconds, delay * 2)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[Lease]:
        """`async with lock.held() as lease:` the lease is released however the block ends."""
        lease = await self.acquire()
        try:
            yield lease
        finally:
            await lease.release()
