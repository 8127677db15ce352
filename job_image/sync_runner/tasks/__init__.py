"""The task registry: job type -> task factory.

A task module registers itself with `@register("quran")`; every module in this
package is imported on first lookup, so adding a task is adding a module. A job
type with no task of its own runs the FALLBACK task (the demo, for now), so every
SyncJob type works end to end before its real task exists. A job's `params.task`
names a task to run instead of its type's, so smoke tests of the control plane can
run the demo for any job type.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sync_runner.contract import ENV_JOB_PARAMS
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


def _requested_task(params: Mapping[str, Any] | None) -> str | None:
    """params.task; without `params`, the job's params from the runner's environment
    (where the operator puts spec.params), so `resolve(job_type)` honours it too."""
    if params is None:
        try:
            params = json.loads(os.environ.get(ENV_JOB_PARAMS) or "{}")
        except json.JSONDecodeError:
            return None
        if not isinstance(params, dict):
            return None
    task = params.get("task")
    return task if isinstance(task, str) and task else None


def resolve(job_type: str, params: Mapping[str, Any] | None = None
            ) -> tuple[TaskFactory, bool]:
    """The factory for the job and whether it is the fallback; LookupError if none.

    `params.task`, when set, overrides the job type and must name a registered task.
    """
    discover()
    requested = _requested_task(params)
    if requested is not None:
        if requested not in TASKS or requested == FALLBACK:
            known = ", ".join(sorted(k for k in TASKS if k != FALLBACK))
            raise LookupError(f"params.task names no registered task: {requested!r} "
                              f"(known: {known})")
        return TASKS[requested], False
    if job_type in TASKS:
        return TASKS[job_type], False
    if FALLBACK in TASKS:
        return TASKS[FALLBACK], True
    raise LookupError(f"no task registered for job type {job_type!r} and no fallback")
