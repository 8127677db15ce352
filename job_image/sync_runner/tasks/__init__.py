"""The task registry: job type -> task factory.

A task module registers itself with `@register("quran")`; every module in this
package is imported on first lookup, so adding a task is adding a module. A job
type with no task of its own runs the FALLBACK task (the demo, for now), so every
SyncJob type works end to end before its real task exists.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from sync_runner.sdk import Task

TaskFactory = Callable[[], Task]
F = TypeVar("F", bound=TaskFactory)

FALLBACK = "*"  # the key of the task that runs job types nobody registered
TASKS: dict[str, TaskFactory] = {}
_discovered = False


def register(*job_types: str, fallback: bool = False) -> Callable[[F], F]:
    """Register a task factory (usually the task class) for `job_types`."""
    keys = [*job_types, *([FALLBACK] if fallback else [])]
    if not keys:
        raise ValueError("register() needs a job type or fallback=True")

    def add(factory: F) -> F:
        for key in keys:
            existing = TASKS.get(key)
            if existing is not None and existing is not factory:
                raise ValueError(f"job type {key!r} already has a task: {existing!r}")
            TASKS[key] = factory
        return factory

    return add


def discover() -> None:
    """Import every task module in this package once, so each registers itself."""
    global _discovered
    if _discovered:
        return
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    _discovered = True


def resolve(job_type: str) -> tuple[TaskFactory, bool]:
    """The factory for `job_type` and whether it is the fallback; LookupError if none."""
    discover()
    if job_type in TASKS:
        return TASKS[job_type], False
    if FALLBACK in TASKS:
        return TASKS[FALLBACK], True
    raise LookupError(f"no task registered for job type {job_type!r} and no fallback")
