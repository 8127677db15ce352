"""Bounded retries with exponential backoff and jitter, for calls to upstream sources.

Jitter spreads the retries of many runners hitting the same failing upstream, so
they do not come back in lockstep; the cap and the attempt count bound how long a
single item (a page) may hold up the job before it is given up and counted.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; the n-th wait is up to base * 2**(n-1), capped, jittered."""

    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    # Fraction of each delay that is random: 1.0 is "full jitter", 0.0 none.
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_seconds < 0 or self.max_seconds < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("delays must be >= 0 and jitter within [0, 1]")

    def delay(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (1 = the first retry)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** (retry - 1))
        spread: float = rng.uniform(0, ceiling * self.jitter)
        return ceiling * (1 - self.jitter) + spread


class RetriesExhaustedError(Exception):
    """Every attempt failed; `last` is the final error."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempt(s): {last}")
        self.attempts = attempts
        self.last = last


async def retry_async(
    op: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retryable: Callable[[BaseException], bool],
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `op`, retrying errors `retryable` accepts; RetriesExhaustedError at the end.

    An error `retryable` rejects is raised at once, unwrapped: retrying cannot help.
    """
    chance = rng or random.Random()
    for attempt in range(1, policy.attempts + 1):
        try:
            return await op()
        except Exception as exc:
            if not retryable(exc):
                raise
            if attempt == policy.attempts:
                raise RetriesExhaustedError(attempt, exc) from exc
            wait = policy.delay(attempt, chance)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
