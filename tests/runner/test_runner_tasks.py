"""The task registry: real tasks by job type, the demo for the rest."""

from __future__ import annotations

import pytest

from sync_runner import tasks
from sync_runner.sdk import TaskContext
from sync_runner.tasks.demo import DemoTask


def test_demo_job_type_resolves_to_the_demo_task() -> None:
    assert tasks.resolve("demo") == (DemoTask, False)


def test_job_type_without_a_task_resolves_to_the_fallback() -> None:
    assert tasks.resolve("zakat") == (DemoTask, True)


def test_registering_a_second_task_for_a_job_type_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "TASKS", {})

    @tasks.register("prayer")
    class First:
        job_type = "prayer"

        async def run(self, ctx: TaskContext) -> dict[str, object]:
            return {}

    with pytest.raises(ValueError, match="already has a task"):
        @tasks.register("prayer")
        class Second(First):
            pass

    assert list(tasks.TASKS.items()) == [("prayer", First)]


def test_no_task_and_no_fallback_is_a_lookup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "TASKS", {})

    with pytest.raises(LookupError, match="hadith"):
        tasks.resolve("hadith")
