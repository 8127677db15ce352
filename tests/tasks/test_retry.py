"""Bounded retries with exponential backoff and jitter."""

from __future__ import annotations

import random

import pytest

from sync_runner.retry import RetriesExhaustedError, RetryPolicy, retry_async


class Flaky:
    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError)


async def test_transient_failures_are_retried_with_growing_jittered_delays() -> None:
    op, sleeps = Flaky(3), Sleeps()
    policy = RetryPolicy(attempts=5, base_seconds=1.0, max_seconds=100.0, jitter=0.5)

    assert await retry_async(op, policy, retryable=transient, sleep=sleeps,
                             rng=random.Random(1)) == "ok"

    assert op.calls == 4
    for retry, delay in enumerate(sleeps.delays, start=1):
        ceiling = 2.0 ** (retry - 1)
        assert ceiling / 2 <= delay <= ceiling  # half fixed, half random


async def test_retries_are_bounded_and_the_last_error_is_kept() -> None:
    op, sleeps = Flaky(10), Sleeps()

    with pytest.raises(RetriesExhaustedError) as raised:
        await retry_async(op, RetryPolicy(attempts=3), retryable=transient, sleep=sleeps)

    assert op.calls == 3
    assert len(sleeps.delays) == 2
    assert str(raised.value.last) == "failure 3"


async def test_an_error_retrying_cannot_fix_is_raised_at_once() -> None:
    op = Flaky(1, ValueError)

    with pytest.raises(ValueError, match="failure 1"):
        await retry_async(op, RetryPolicy(attempts=5), retryable=transient, sleep=Sleeps())

    assert op.calls == 1


def test_delays_are_capped_and_jitter_makes_them_differ() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=5.0, jitter=1.0)
    rng = random.Random(3)

    delays = [policy.delay(retry, rng) for retry in range(1, 30)]

    assert all(0 <= d <= 5.0 for d in delays)
    assert len(set(delays)) == len(delays)


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
