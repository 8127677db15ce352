"""The registry: every content job type has its task, and params.task overrides it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync_runner import contract, tasks
from sync_runner.tasks.audio import AudioTask
from sync_runner.tasks.demo import DemoTask
from sync_runner.tasks.finance import FinanceTask
from sync_runner.tasks.hadith import HadithTask
from sync_runner.tasks.prayer import PrayerTask
from sync_runner.tasks.quran import QuranTask


@pytest.fixture(autouse=True)
def no_runner_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.ENV_JOB_PARAMS, raising=False)


@pytest.mark.parametrize(("job_type", "task"), [
    ("quran", QuranTask), ("prayer", PrayerTask), ("hadith", HadithTask),
    ("audio", AudioTask), ("finance", FinanceTask)])
def test_each_content_job_type_runs_its_own_task(job_type: str, task: Any) -> None:
    assert tasks.resolve(job_type) == (task, False)
    assert task.job_type == job_type


def test_params_task_overrides_the_job_type() -> None:
    assert tasks.resolve("quran", {"task": "demo", "items": 3}) == (DemoTask, False)
    assert tasks.resolve("demo", {"task": "finance"}) == (FinanceTask, False)


def test_without_params_the_runners_environment_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_JOB_PARAMS, json.dumps({"task": "demo"}))

    assert tasks.resolve("hadith") == (DemoTask, False)


def test_params_without_a_task_keep_the_job_types_task() -> None:
    assert tasks.resolve("audio", {"items": 3}) == (AudioTask, False)
    assert tasks.resolve("unknown-type", {}) == (DemoTask, True)


def test_a_params_task_that_names_no_task_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match=r"params\.task names no registered task: 'nope'"):
        tasks.resolve("quran", {"task": "nope"})
