"""The operator's side of the Redis wire contract: control flags out, runner status in.

Redis is treated as fast but lossy: every read tolerates an outage (returning
None, so the state machine falls back to its timeouts), and control flags are
written with their generation so a stale write can never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from sync_runner.contract import (
    CONTROL_FIELD,
    EVENTS_PATTERN,
    STATE_FIELD,
    STATE_TTL_SECONDS,
    Checkpoint,
    Control,
    Keys,
    RunnerStatus,
)

log = logging.getLogger(__name__)

# Write the control message only if it is newer than what Redis holds, then publish it.
# A stored value that is not a JSON object with a numeric generation (not JSON, a bare
# number or string, a null or string generation) counts as absent: it is overwritten,
# never compared (cjson decodes null as a truthy userdata, and comparing a string or
# indexing a number would error the script).
_SET_CONTROL = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' then
    local generation = decoded['generation']
    if type(generation) == 'number' and generation >= tonumber(ARGV[3]) then
      return 0
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
"""

def _deleter_key(job_uid: str) -> str:
    """Operator-only key (not part of the runner contract): who deleted the job."""
    return f"{Keys(job_uid).state.rsplit(':', 1)[0]}:deleted-by"


StatusCallback = Callable[[str, RunnerStatus], Awaitable[None]]


class RunnerLink:
    def __init__(self, redis_url: str) -> None:
        # Bytes that are not UTF-8 (a corrupt hash, a foreign publisher) decode with
        # U+FFFD and then fail validation as malformed, like any other bad report: with
        # strict decoding they raised from every read and ended the follower (fuzzed).
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            redis_url, decode_responses=True, encoding_errors="replace", socket_timeout=5,
            socket_connect_timeout=3, health_check_interval=10)
        self._set_control = self.redis.register_script(_SET_CONTROL)
        self.available = True

    async def close(self) -> None:
        await self.redis.aclose()

    def _outage(self, what: str, err: Exception) -> None:
        if self.available:
            log.warning("redis unavailable (%s): %s", what, err)
        self.available = False

    def _answered(self) -> None:
        """Redis answered a call: it is available again (whatever the answer was)."""
        self.available = True

    async def status(self, job_uid: str) -> RunnerStatus | None:
        try:
            raw = await self.redis.hget(Keys(job_uid).state, STATE_FIELD)
        except (RedisError, OSError) as err:
            self._outage("read status", err)
            return None
        self._answered()
        if not raw:
            return None
        try:
            return RunnerStatus.model_validate_json(raw)
        except ValidationError as err:
            log.warning("ignoring malformed runner status of %s: %s", job_uid, err)
            return None

    async def checkpoint(self, job_uid: str) -> Checkpoint | None:
        try:
            raw = await self.redis.get(Keys(job_uid).checkpoint)
        except (RedisError, OSError) as err:
            self._outage("read checkpoint", err)
            return None
        self._answered()
        if not raw:
            return None
        try:
            return Checkpoint.model_validate_json(raw)
        except ValidationError as err:  # the runner starts over from such a checkpoint
            log.warning("ignoring malformed checkpoint of %s: %s", job_uid, err)
            return None

    async def set_control(self, job_uid: str, control: Control) -> bool:
        """Publish `control` unless Redis already holds this generation or a newer one."""
        keys = Keys(job_uid)
        try:
            written = await self._set_control(
                keys=[keys.control, keys.control_channel],
                args=[CONTROL_FIELD, control.model_dump_json(), control.generation,
                      STATE_TTL_SECONDS])
        except (RedisError, OSError) as err:
            self._outage("write control", err)
            return False
        self._answered()
        return bool(written)

    async def record_deleter(self, job_uid: str, user: str) -> None:
        """Remember who asked to delete a job, for the finalizer's audit row."""
        try:
            await self.redis.set(_deleter_key(job_uid), user, ex=STATE_TTL_SECONDS)
        except (RedisError, OSError) as err:
            self._outage("record deleter", err)
            return
        self._answered()

    async def deleter(self, job_uid: str) -> str | None:
        try:
            value = await self.redis.get(_deleter_key(job_uid))
        except (RedisError, OSError) as err:
            self._outage("read deleter", err)
            return None
        self._answered()
        return str(value) if value else None

    async def forget(self, job_uid: str) -> None:
        """Drop a deleted job's keys (best effort: they expire anyway)."""
        try:
            await self.redis.delete(*Keys(job_uid).all(), _deleter_key(job_uid))
        except (RedisError, OSError) as err:
            self._outage("forget", err)
            return
        self._answered()

    async def follow(self, on_status: StatusCallback) -> None:
        """Deliver every runner status published on any job's channel, forever."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(EVENTS_PATTERN)
                self._answered()
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    try:
                        uid = Keys.uid_from_channel(str(message["channel"]))
                        status = RunnerStatus.model_validate_json(message["data"])
                    except (ValueError, ValidationError) as err:
                        log.warning("ignoring malformed runner event: %s", err)
                        continue
                    await on_status(uid, status)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as err:
                self._outage("subscribe", err)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
