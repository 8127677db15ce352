"""A keyed work queue: each key is worked on by one worker at a time, and a key
added while it is being worked on is worked on again afterwards (client-go style).

It is what makes the reconciler level-triggered: many events about one SyncJob
collapse into one reconcile that reads the world as it is now. A key whose work keeps
failing comes back after an exponentially growing delay, per key (client-go's
ItemExponentialFailureRateLimiter), so one broken object never spins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")


class WorkQueue(Generic[K]):
    def __init__(self, *, backoff_base: float = 0.5, backoff_max: float = 60.0) -> None:
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._failures: dict[K, int] = {}
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def add(self, key: K) -> None:
        """Ask for `key` to be reconciled soon (no-op if it already waits)."""
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile `key` after `delay` seconds; an earlier request wins over a later one."""
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + delay
        if existing is not None and existing.when() <= when:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being worked on (timers may still be pending)."""
        return not self._queued and not self._processing

    def backoff(self, key: K) -> float:
        """The delay before the next try of a key that failed (and counts the failure)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(self._backoff_base * 2 ** min(failures, 32), self._backoff_max))

    async def run_worker(self, work: Callable[[K], Awaitable[float | None]],
                         on_error: Callable[[K, BaseException], float | None]) -> None:
        """Take keys forever; `work` may return a delay to come back after. After a
        failure, `on_error` may name the delay; None means the key's own backoff."""
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            failed = False
            try:
                delay = await work(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                failed = True
                delay = on_error(key, err)
                if delay is None:
                    delay = self.backoff(key)
            finally:
                self._processing.discard(key)
            dirty = key in self._dirty
            self._dirty.discard(key)
            if dirty and not failed:
                self.add(key)
            elif delay is not None:
                # A failed key waits out its delay even when events came meanwhile (its
                # own writes' echoes, often): the next try reads the latest anyway.
                self.add_after(key, delay)
