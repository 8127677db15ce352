"""The operator's requests as the runner sees them: the latest Control, plus SIGTERM.

Pub/sub brings a change within milliseconds; polling the control hash catches
anything pub/sub missed (reconnects, a message sent before we subscribed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio.client import PubSub

from sync_runner.channel import TRANSIENT_ERRORS, Backoff, RedisChannel, close_quietly
from sync_runner.contract import Control
from sync_runner.logs import Throttle, get_logger, log_event
from sync_runner.sdk import StopDecision

log = get_logger("control")


class ControlWatcher:
    """Holds the newest Control; never goes back to an older generation."""

    def __init__(self, channel: RedisChannel, *, initial: Control, poll_seconds: float) -> None:
        self.channel = channel
        self.poll_seconds = poll_seconds
        self.latest = initial
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()

    def offer(self, control: Control) -> bool:
        """Adopt `control` if it is not older than what we have; True if it changed."""
        if control.generation < self.latest.generation or control == self.latest:
            return False
        self.latest = control
        log_event(log, "control.changed", paused=control.paused, cancel=control.cancel,
                  generation=control.generation)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return True

    async def wait_newer(self, generation: int) -> Control:
        """Wait until a Control newer than `generation` arrives."""
        while self.latest.generation <= generation:
            await self._changed.wait()
        return self.latest

    async def poll(self) -> None:
        control = await self.channel.read_control()
        if control is not None:
            self.offer(control)

    def stop(self) -> None:
        """Ask `run` to return after its current Redis call (never cancelled mid-read)."""
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def run(self) -> None:
        """Subscribe (re-subscribing after errors) and poll on every quiet tick until stopped."""
        backoff = Backoff(initial=0.1, cap=self.poll_seconds)
        delays = backoff.delays()
        throttle = Throttle(10.0)
        while not self._stopping.is_set():
            pubsub: PubSub | None = None
            try:
                pubsub = await self.channel.subscribe_control()
                await self.poll()  # whatever was published before we listened
                delays = backoff.delays()
                while not self._stopping.is_set():
                    control = await self.channel.next_control(pubsub, self.poll_seconds)
                    if control is None:
                        await self.poll()
                    else:
                        self.offer(control)
            except Exception as exc:
                level = logging.WARNING if isinstance(exc, TRANSIENT_ERRORS) else logging.ERROR
                if throttle.ready():
                    log_event(log, "control.watch_failed", level=level, error=repr(exc))
                await self._pause(next(delays))
            finally:
                if pubsub is not None:
                    await close_quietly(pubsub)


class StopSignals:
    """Combines the operator's request with SIGTERM into one stop decision for the task."""

    def __init__(self, watcher: ControlWatcher, terminated: asyncio.Event | None = None) -> None:
        self.watcher = watcher
        # Set by the runner's SIGTERM/SIGINT handler.
        self.terminated = terminated if terminated is not None else asyncio.Event()

    def terminate(self) -> None:
        self.terminated.set()

    def current(self) -> StopDecision | None:
        """Cancel outranks pause (both get acknowledged); SIGTERM alone interrupts."""
        control = self.watcher.latest
        if control.cancel:
            return StopDecision("cancel", control.generation)
        if control.paused:
            return StopDecision("pause", control.generation)
        if self.terminated.is_set():
            return StopDecision("sigterm", control.generation)
        return None
