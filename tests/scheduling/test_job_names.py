"""A tick always maps to the same SyncJob name, short enough for a label, as CronJob's do."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sync_operator.syncschedule import MAX_NAME_LENGTH, job_name_for

TICK = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def test_the_name_is_the_schedule_and_the_minutes_since_the_epoch_like_cronjob() -> None:
    assert job_name_for("quran-daily", TICK) == f"quran-daily-{int(TICK.timestamp()) // 60}"
    assert job_name_for("quran-daily", TICK) == "quran-daily-29538900"


def test_the_same_tick_gives_the_same_name_every_time_in_any_offset() -> None:
    berlin = TICK.astimezone(timezone(timedelta(hours=1)))
    assert job_name_for("quran-daily", TICK) == job_name_for("quran-daily", berlin)
    assert len({job_name_for("quran-daily", TICK) for _ in range(3)}) == 1


def test_different_ticks_and_schedules_give_different_names() -> None:
    names = {job_name_for(schedule, TICK + timedelta(hours=h))
             for schedule in ("quran-daily", "prayer-times") for h in range(6)}
    assert len(names) == 12


def test_a_long_schedule_name_is_cut_to_a_valid_label_and_kept_unique() -> None:
    first, second = "a" * 70 + "-first", "a" * 70 + "-second"
    cut_first, cut_second = job_name_for(first, TICK), job_name_for(second, TICK)
    assert len(cut_first) == MAX_NAME_LENGTH
    assert DNS_LABEL.match(cut_first)
    assert cut_first != cut_second
    assert cut_first.endswith("-29538900")
    assert job_name_for(first, TICK) == cut_first


def test_a_cut_never_leaves_a_dash_before_the_hash() -> None:
    name = job_name_for("x" * 47 + "-" * 20, TICK)
    assert "--" not in name
    assert len(name) <= MAX_NAME_LENGTH


def test_a_name_that_just_fits_is_not_cut() -> None:
    exact = "b" * (MAX_NAME_LENGTH - len("-29538900"))
    assert job_name_for(exact, TICK) == f"{exact}-29538900"


def test_naive_ticks_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        job_name_for("quran-daily", datetime(2026, 3, 1, 3))
