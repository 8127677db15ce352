"""The backoff between logins after refused credentials (sync_operator.app.login): kopf
logs in again after every 401, so without it a lasting refusal (the ServiceAccount
deleted under a running pod) spins. A manual clock and a recording sleep: no real
waits."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
import pytest

from sync_operator.app import login as login_module
from sync_operator.app.clock import ManualClock
from sync_operator.app.login import LoginBackoff
from sync_operator.kube.config import Connection

START = datetime(2026, 1, 1, tzinfo=UTC)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def backoff(clock: ManualClock, **kwargs: Any) -> LoginBackoff:
    kwargs.setdefault("jitter", 0.0)
    return LoginBackoff(clock=clock, **kwargs)


def refused_in_a_row(b: LoginBackoff, clock: ManualClock, times: int) -> list[float]:
    """Credentials handed out and refused right away, `times` times; the delays."""
    delays = []
    for _ in range(times):
        b.issued(clock.now() + timedelta(seconds=60))
        clock.advance(timedelta(milliseconds=5))
        delays.append(b.next_delay())
    return delays


def test_the_first_login_waits_for_nothing() -> None:
    clock = ManualClock(START)
    assert backoff(clock).next_delay() == 0.0


def test_refusals_in_a_row_wait_longer_and_longer_up_to_the_cap() -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    b.next_delay()
    assert refused_in_a_row(b, clock, 9) == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert b.refusals == 9


def test_a_refusal_that_lasts_for_hours_stays_at_the_cap() -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    assert set(refused_in_a_row(b, clock, 5000)[6:]) == {30.0}  # 2.0 ** 4998 overflows


def test_credentials_that_expired_unrefused_end_the_streak() -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    refused_in_a_row(b, clock, 4)
    b.issued(clock.now() + timedelta(seconds=60))
    clock.advance(timedelta(seconds=60))  # kopf drops them at their expiry, not later
    assert b.next_delay() == 0.0
    assert b.refusals == 0
    assert refused_in_a_row(b, clock, 2) == [0.0, 1.0]


def test_credentials_that_went_unrefused_for_a_while_end_the_streak() -> None:
    clock = ManualClock(START)
    b = backoff(clock, healthy_seconds=30)
    refused_in_a_row(b, clock, 4)
    b.issued(None)  # a static token: used until refused
    clock.advance(timedelta(seconds=30))
    assert b.next_delay() == 0.0  # a first refusal again: at once
    assert b.refusals == 1
    assert refused_in_a_row(b, clock, 1) == [1.0]


def test_credentials_without_expiry_asked_again_soon_were_refused() -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    delays = []
    for _ in range(3):
        b.issued(None)
        clock.advance(timedelta(seconds=1))
        delays.append(b.next_delay())
    assert delays == [0.0, 1.0, 2.0]


def test_a_naive_expiry_is_read_as_utc_as_kopf_reads_it() -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    b.issued((START + timedelta(seconds=60)).replace(tzinfo=None))
    clock.advance(timedelta(seconds=61))
    assert b.next_delay() == 0.0
    assert b.refusals == 0


def test_a_retry_of_a_login_that_raised_is_not_another_refusal() -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    refused_in_a_row(b, clock, 3)  # the third login then raised: nothing issued
    clock.advance(timedelta(seconds=60))  # kopf's own handler backoff
    assert b.next_delay() == 0.0
    assert b.refusals == 3
    assert refused_in_a_row(b, clock, 1) == [4.0]  # still the same streak


def test_jitter_only_shortens_a_delay_and_never_past_its_share() -> None:
    clock = ManualClock(START)
    b = LoginBackoff(clock=clock, jitter=0.2, rng=random.Random(7))
    b.next_delay()
    delays = refused_in_a_row(b, clock, 40)
    ceilings = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0] + [30.0] * 34
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling * 0.8 <= delay <= ceiling
    assert len(set(delays[6:])) > 1  # at the cap, not in lockstep


def test_each_refusal_is_logged_once_with_its_wait(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(START)
    b = backoff(clock)
    with caplog.at_level(logging.WARNING, logger="sync_operator.app.login"):
        refused_in_a_row(b, clock, 3)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "logging in again." in messages[0]
    assert "2 times in a row" in messages[1]
    assert "in 1.0 s" in messages[1]
    assert "in 2.0 s" in messages[2]


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="jitter"):
        LoginBackoff(jitter=1.5)
    with pytest.raises(ValueError, match="delays"):
        LoginBackoff(base=-1)


async def test_wait_sleeps_only_when_there_is_a_delay() -> None:
    clock = ManualClock(START)
    sleeps = Sleeps()
    b = backoff(clock, sleep=sleeps)
    await b.wait()  # the first login
    for _ in range(3):
        b.issued(None)
        await b.wait()
    assert sleeps.delays == [1.0, 2.0]


async def test_the_login_handler_waits_before_logging_in_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock(START)
    sleeps = Sleeps()
    monkeypatch.setattr(login_module, "BACKOFF", backoff(clock, sleep=sleeps))
    monkeypatch.setattr(login_module, "load_connection",
                        lambda: Connection(server="https://api.test:6443", token="t"))
    # kopf's decorator types it for kopf's call; kopf passes kwargs it ignores.
    login = cast(Callable[[], Awaitable[kopf.ConnectionInfo]], login_module.login)
    infos = [await login() for _ in range(4)]  # each refused at once
    assert [info.token for info in infos] == ["t"] * 4
    assert infos[0].expiration is None  # a static token
    assert sleeps.delays == [1.0, 2.0]
