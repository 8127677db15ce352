"""The runner's status as published to Redis: one current value, sent when it changes.

Progress changes are coalesced (at most one publish per min interval, the latest
value always wins), a quiet runner still publishes every heartbeat interval, and a
failed publish is retried until it lands: Redis being away costs freshness, not the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from sync_runner.channel import Backoff, RedisChannel, RedisUnavailableError
from sync_runner.contract import Progress, RunnerStatus
from sync_runner.logs import Throttle, get_logger, log_event

log = get_logger("status")


class StatusReporter:
    """Owns the RunnerStatus; implements the SDK's StatusSink."""

    def __init__(self, channel: RedisChannel, initial: RunnerStatus, *,
                 min_interval: float, heartbeat_seconds: float) -> None:
        self.channel = channel
        self.min_interval = min_interval
        self.heartbeat_seconds = heartbeat_seconds
        self._status = initial
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._last_publish = float("-inf")
        self._throttle = Throttle(10.0)
        self.publishes = 0

    @property
    def status(self) -> RunnerStatus:
        return self._status

    def update(self, **changes: Any) -> None:
        """Change fields of the status; the background loop publishes it soon."""
        self._status = self._status.model_copy(update=changes)
        self._dirty.set()

    # StatusSink
    def set_progress(self, progress: Progress) -> None:
        self.update(progress=progress)

    def set_warnings(self, count: int) -> None:
        self.update(warnings=count)

    def set_checkpoint_at(self, saved_at: float) -> None:
        self.update(checkpoint_at=saved_at)

    async def _send(self, *, reliably: bool) -> None:
        """Send the current status, stamped with the heartbeat; re-mark dirty if it fails."""
        send = self.channel.publish_status_reliably if reliably else self.channel.publish_status
        async with self._lock:
            self._dirty.clear()
            snapshot = self._status.model_copy(update={"heartbeat_at": time.time()})
            try:
                await send(snapshot)
            except BaseException:
                self._dirty.set()
                raise
            self._last_publish = time.monotonic()
            self.publishes += 1

    async def publish_now(self, **changes: Any) -> bool:
        """Apply `changes` and publish at once, retrying through an outage up to the budget.

        Returns False if it did not land in time; the background loop keeps trying.
        """
        self.update(**changes)
        try:
            await self._send(reliably=True)
        except RedisUnavailableError as exc:
            log_event(log, "status.not_published", level=logging.ERROR,
                      state=self._status.state.value, error=str(exc))
            return False
        return True

    def stop(self) -> None:
        """Ask `run` to return after its current publish (never cancelled mid-call)."""
        self._stopping.set()
        self._dirty.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def run(self) -> None:
        """Publish changes (rate-limited) and heartbeats until stopped; never raises."""
        fresh = Backoff(initial=0.1, cap=2.0)
        delays = fresh.delays()
        while True:
            # Quiet for a heartbeat interval: publish anyway, as a heartbeat.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=self.heartbeat_seconds)
            if self._stopping.is_set():
                return
            await self._pause(self._last_publish + self.min_interval - time.monotonic())
            if self._stopping.is_set():
                return
            try:
                await self._send(reliably=False)
            except Exception as exc:
                if self._throttle.ready():
                    log_event(log, "status.publish_failed", level=logging.WARNING,
                              error=repr(exc))
                await self._pause(next(delays))
            else:
                delays = fresh.delays()
