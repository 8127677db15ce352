"""The runner's side of Redis: status out, control in, checkpoints kept across pods.

Every call here is one short Redis round trip. Nothing here is meant to be cancelled
mid-call: redis-py can lose a cancellation inside a pub/sub read (seen on 3.11), so
the background loops stop cooperatively instead. Outages are expected (Redis restarts,
failovers): `retrying` turns a bounded stretch of them into waiting, and callers
decide what an exhausted budget means (a lost progress tick is fine, a lost
checkpoint is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sync_runner.contract import (
    CONTROL_FIELD,
    STATE_FIELD,
    STATE_TTL_SECONDS,
    Checkpoint,
    Control,
    Keys,
    RunnerStatus,
)
from sync_runner.logs import Throttle, get_logger, log_event

T = TypeVar("T")
log = get_logger("channel")

# Errors that mean "Redis is not reachable right now", worth waiting out.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, OSError,
)


class RedisUnavailableError(Exception):
    """Redis stayed unreachable for the whole retry budget."""


class CheckpointUnreadableError(ValueError):
    """The stored checkpoint is not a Checkpoint (corrupt or from an incompatible runner)."""


@dataclass(frozen=True)
class Backoff:
    """Exponential delays between attempts, capped so recovery is noticed quickly."""

    initial: float = 0.05
    factor: float = 2.0
    cap: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(self.cap, delay * self.factor)


def connect(url: str, *, max_connections: int | None = None) -> aioredis.Redis:
    """A client that fails fast on a dead server, so our own retry loops stay in charge.

    `max_connections` (redis-py's default when None) is for clients shared by many runs.
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        max_connections=max_connections,
    )


async def retrying(op: Callable[[], Awaitable[T]], *, budget_seconds: float, what: str,
                   backoff: Backoff = Backoff()) -> T:
    """Run `op` until it succeeds or `budget_seconds` of transient failures have passed."""
    deadline = time.monotonic() + budget_seconds
    throttle = Throttle(5.0)
    for attempt, delay in enumerate(backoff.delays(), start=1):
        try:
            return await op()
        except TRANSIENT_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RedisUnavailableError(
                    f"{what}: Redis unreachable for {budget_seconds:g}s "
                    f"({attempt} attempts): {exc}") from exc
            if throttle.ready():
                log_event(log, "redis.retrying", what=what, attempt=attempt, error=str(exc))
            await asyncio.sleep(min(delay, left))
    raise AssertionError("unreachable")  # pragma: no cover  # delays() never ends


class RedisChannel:
    """Reads and writes one SyncJob's keys, as the runner."""

    def __init__(self, client: aioredis.Redis, keys: Keys, *, retry_seconds: float) -> None:
        self.client = client
        self.keys = keys
        self.retry_seconds = retry_seconds

    # -- status ---------------------------------------------------------------------

    async def publish_status(self, status: RunnerStatus) -> None:
        """One attempt: store the status in the state hash and announce it on events."""
        body = status.model_dump_json()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.state, STATE_FIELD, body)
            pipe.expire(self.keys.state, STATE_TTL_SECONDS)
            pipe.publish(self.keys.events, body)
            await pipe.execute()

    async def publish_status_reliably(self, status: RunnerStatus) -> None:
        """Publish, waiting out an outage up to the budget; RedisUnavailableError after it."""
        await retrying(lambda: self.publish_status(status),
                       budget_seconds=self.retry_seconds, what="publish status")

    # -- control --------------------------------------------------------------------

    async def read_control(self) -> Control | None:
        """The operator's current request: Control() when none was made, None if unreadable."""
        raw = await self.client.hget(self.keys.control, CONTROL_FIELD)
        return Control() if raw is None else parse_control(str(raw))

    async def read_control_reliably(self) -> Control | None:
        return await retrying(self.read_control, budget_seconds=self.retry_seconds,
                              what="read control")

    async def subscribe_control(self) -> PubSub:
        """A subscription to the control channel, for `next_control`."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.keys.control_channel)
        except BaseException:
            await close_quietly(pubsub)
            raise
        return pubsub

    @staticmethod
    async def next_control(pubsub: PubSub, wait_seconds: float) -> Control | None:
        """The next Control published, or None after up to `wait_seconds` without one.

        Raises on connection loss; the caller re-subscribes (and polls meanwhile).
        """
        message = await pubsub.get_message(ignore_subscribe_messages=True,
                                           timeout=wait_seconds)
        if message is None or message.get("type") != "message":
            return None
        return parse_control(str(message["data"]))

    # -- checkpoints ----------------------------------------------------------------

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store the checkpoint, retrying through an outage; RedisUnavailableError if it can't."""
        body = checkpoint.model_dump_json()

        async def save() -> None:
            await self.client.set(self.keys.checkpoint, body, ex=STATE_TTL_SECONDS)

        await retrying(save, budget_seconds=self.retry_seconds, what="save checkpoint")

    async def load_checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint, or None; CheckpointUnreadableError if it is garbage."""
        raw = await retrying(lambda: self.client.get(self.keys.checkpoint),
                             budget_seconds=self.retry_seconds, what="load checkpoint")
        if raw is None:
            return None
        try:
            return Checkpoint.model_validate_json(raw)
        except ValidationError as exc:
            raise CheckpointUnreadableError(f"{exc.error_count()} errors in {raw[:200]!r}") from exc


async def close_quietly(pubsub: PubSub) -> None:
    """Close a subscription; errors closing a dead connection do not matter."""
    with contextlib.suppress(*TRANSIENT_ERRORS, RedisError):
        await pubsub.aclose()


def parse_control(raw: str) -> Control | None:
    try:
        return Control.model_validate_json(raw)
    except ValidationError as exc:
        log_event(log, "control.unreadable", level=logging.WARNING, error=str(exc), raw=raw[:200])
        return None
