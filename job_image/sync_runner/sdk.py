"""What a sync task sees: its job, its checkpoint, progress, and when to stop.

Tasks are cooperative. They report progress per unit, call `save_checkpoint` after
each unit and `safe_point` between units; the runner turns a pause, a cancel or a
SIGTERM into StopRequested at the next safe point, so a task is only ever stopped
where its checkpoint is current.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, Protocol

from sync_runner.contract import Checkpoint, Progress
from sync_runner.logs import get_logger, log_event

StopReason = Literal["pause", "cancel", "sigterm"]
MAX_WARNING_MESSAGES = 20


class StopRequested(Exception):  # noqa: N818  # name fixed by the SDK brief
    """Raised at a safe point: the task must return control to the runner now."""

    def __init__(self, reason: StopReason, generation: int = 0) -> None:
        super().__init__(f"stop requested: {reason}")
        self.reason: StopReason = reason
        # The control generation that asked for the stop (0 for SIGTERM with no request).
        self.generation = generation


class FatalTaskError(Exception):
    """A failure that retrying cannot fix (bad params, missing prerequisites)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class CheckpointNotSavedError(Exception):
    """A checkpoint could not be stored; the task must not carry on as if it had been."""


@dataclass(frozen=True)
class StopDecision:
    """Why the runner wants the task to stop, and which control generation asked."""

    reason: StopReason
    generation: int


@dataclass(frozen=True)
class JobIdentity:
    """The SyncJob a task runs for."""

    uid: str
    name: str
    namespace: str
    job_type: str
    params: Mapping[str, Any]

    @classmethod
    def create(cls, uid: str, name: str, namespace: str, job_type: str,
               params: Mapping[str, Any]) -> JobIdentity:
        """An identity whose params are a read-only copy, so a task cannot alter them."""
        return cls(uid, name, namespace, job_type,
                   MappingProxyType(json.loads(json.dumps(dict(params)))))


# -- what the context needs from the runner (kept abstract so the SDK has no Redis) --


class StatusSink(Protocol):
    def set_progress(self, progress: Progress) -> None: ...
    def set_warnings(self, count: int) -> None: ...
    def set_checkpoint_at(self, saved_at: float) -> None: ...


class CheckpointStore(Protocol):
    async def save_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class StopSource(Protocol):
    def current(self) -> StopDecision | None: ...


class TaskContext:
    """The task's handle on the runner; one per run."""

    def __init__(self, job: JobIdentity, *, checkpoint: Checkpoint | None,
                 database_url: str | None, pod: str, status: StatusSink,
                 checkpoints: CheckpointStore, stops: StopSource) -> None:
        self.job = job
        self.database_url = database_url
        self.pod = pod
        # The data a previous pod saved; None at first start.
        self.checkpoint: dict[str, Any] | None = (
            dict(checkpoint.data) if checkpoint is not None else None)
        self._progress = checkpoint.progress if checkpoint is not None else Progress()
        self._status = status
        self._checkpoints = checkpoints
        self._stops = stops
        self._warnings: list[str] = []
        self._warning_count = 0
        self._log = get_logger("task")

    @property
    def current_progress(self) -> Progress:
        return self._progress

    @property
    def warnings(self) -> tuple[int, list[str]]:
        """How many warnings, and the first MAX_WARNING_MESSAGES of them."""
        return self._warning_count, list(self._warnings)

    async def progress(self, done: int, total: int | None = None, unit: str = "items",
                       message: str = "") -> None:
        """Record progress; it is published rate-limited, and the latest value always lands."""
        self._progress = Progress(done=done, total=total, unit=unit, message=message)
        self._status.set_progress(self._progress)
        await asyncio.sleep(0)  # let heartbeat and control watcher run in busy tasks

    async def save_checkpoint(self, data: dict[str, Any]) -> None:
        """Persist `data` with the current progress; CheckpointNotSavedError if it cannot land."""
        try:
            copied = json.loads(json.dumps(data))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"checkpoint data must be JSON-serialisable: {exc}") from exc
        checkpoint = Checkpoint(data=copied, progress=self._progress, pod=self.pod)
        try:
            await self._checkpoints.save_checkpoint(checkpoint)
        except Exception as exc:
            log_event(self._log, "checkpoint.not_saved", level=logging.ERROR, error=str(exc))
            raise CheckpointNotSavedError(str(exc)) from exc
        self._status.set_checkpoint_at(checkpoint.saved_at)

    def should_stop(self) -> bool:
        """True once a pause, cancel or SIGTERM asks the task to stop."""
        return self._stops.current() is not None

    async def safe_point(self) -> None:
        """Raise StopRequested if the task should stop here; call it between units."""
        await asyncio.sleep(0)
        decision = self._stops.current()
        if decision is not None:
            raise StopRequested(decision.reason, decision.generation)

    def warn(self, message: str) -> None:
        """Count a warning; the count and the first messages go into the final summary."""
        self._warning_count += 1
        if len(self._warnings) < MAX_WARNING_MESSAGES:
            self._warnings.append(message)
        self._status.set_warnings(self._warning_count)
        log_event(self._log, "task.warning", level=logging.WARNING, message=message)

    def log(self, event: str, **fields: Any) -> None:
        """A structured log line from the task."""
        log_event(self._log, event, **fields)


class Task(Protocol):
    """A sync task: one per job type."""

    job_type: str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        """Do the work, resuming from ctx.checkpoint; return a JSON-able summary."""
        ...
