"""The SyncJob state machine: from what is observed to what should happen next.

Pure: `decide` reads an `Observation` (the SyncJob, its batch Job, the runner's
status in Redis, whether the queue admitted it, the time) and returns a
`Decision` (the next phase, the status fields to write, the actions to take on
the Job and in Redis, the Events to record). The reconciler does the I/O. Being
level-triggered, `decide` can be called any number of times on the same world
and asks for the same thing, which is what makes an operator restart safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync_operator.api.bounds import (
    MESSAGE_MAX,
    PROGRESS_MESSAGE_MAX,
    PROGRESS_UNIT_MAX,
    bounded_result,
    clip,
    clip_middle,
    condition_reason,
)
from sync_operator.api.common import ConditionType, Phase, Reason
from sync_operator.api.syncjob import SyncJobSpec
from sync_operator.kube.bodies import Document
from sync_operator.kube.conditions import set_condition
from sync_operator.kube.timestamps import format_time, parse_time
from sync_runner.contract import Checkpoint, Control, RunnerState, RunnerStatus

Status = Document

# -- what is observed -------------------------------------------------------------------


@dataclass(frozen=True)
class JobObservation:
    """The parts of the owned batch/v1 Job that matter to the state machine."""

    name: str
    suspended: bool
    active: int
    failed: int
    succeeded: int
    complete: bool
    failed_reason: str | None
    failed_message: str | None

    @classmethod
    def from_body(cls, job: Mapping[str, Any]) -> JobObservation:
        status = job.get("status", {}) or {}
        conditions = {c["type"]: c for c in status.get("conditions", []) or []
                      if c.get("status") == "True"}
        failed = conditions.get("Failed")
        return cls(
            name=job["metadata"]["name"],
            suspended=bool(job.get("spec", {}).get("suspend")),
            active=int(status.get("active", 0) or 0) + int(status.get("terminating", 0) or 0),
            failed=int(status.get("failed", 0) or 0),
            succeeded=int(status.get("succeeded", 0) or 0),
            complete="Complete" in conditions,
            failed_reason=failed.get("reason") if failed else None,
            failed_message=failed.get("message") if failed else None,
        )


@dataclass(frozen=True)
class Observation:
    generation: int
    spec: SyncJobSpec
    status: Status
    now: datetime
    job: JobObservation | None = None
    runner: RunnerStatus | None = None
    checkpoint: Checkpoint | None = None
    granted: bool = False
    duplicate_of: str | None = None
    # The name the batch Job has, or will have once created (it is derived, not chosen).
    job_name: str | None = None
    # Whether Redis answered: no report then means none was written, not an outage.
    runner_reachable: bool = True


@dataclass(frozen=True)
class Timeouts:
    pause_grace_seconds: float = 60.0
    cancel_grace_seconds: float = 30.0
    # A running job whose runner has not beaten its heart for this long is reported
    # (condition Progressing=False, a Warning Event): hung, or cut off from Redis.
    heartbeat_stale_seconds: float = 60.0


# -- what should happen -----------------------------------------------------------------


@dataclass(frozen=True)
class CreateJob:
    """Create the batch Job (or, if it exists suspended, unsuspend it)."""

    remaining_seconds: int | None


@dataclass(frozen=True)
class SuspendJob:
    """Suspend the Job: its pods get SIGTERM and go; the Job stays for its history."""


@dataclass(frozen=True)
class SetControl:
    """Publish the control flags to the runner through Redis."""

    control: Control


@dataclass(frozen=True)
class Note:
    """An Event for `kubectl describe` (unless `event` is False) and, with `audit`, an
    audit log entry."""

    reason: str
    message: str
    warning: bool = False
    audit: str | None = None
    event: bool = True


Action = CreateJob | SuspendJob | SetControl


@dataclass(frozen=True)
class Decision:
    phase: Phase
    status: Status
    actions: tuple[Action, ...] = ()
    notes: tuple[Note, ...] = ()
    requeue_after: float | None = None
    changed: bool = field(default=False)


# -- helpers ----------------------------------------------------------------------------


class _Builder:
    """Accumulates the new status and actions of one decision."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.status: Status = {k: v for k, v in obs.status.items()}
        self.phase = Phase(obs.status.get("phase") or Phase.PENDING)
        self.actions: list[Action] = []
        self.notes: list[Note] = []
        self.requeue: float | None = None
        self.timeouts = Timeouts()

    @property
    def now_str(self) -> str:
        return format_time(self.obs.now)

    def condition(self, ctype: ConditionType, status: bool, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            list(self.status.get("conditions") or []), ctype, "True" if status else "False",
            condition_reason(reason, fallback=UNSPECIFIED_REASON), _bounded(message),
            self.obs.generation, self.obs.now,
        )

    def go(self, phase: Phase, reason: str, message: str, *, warning: bool = False,
           audit: str | None = None, event: bool = True) -> None:
        if phase != self.phase:
            self.notes.append(Note(reason, message, warning, audit or phase.value.lower(),
                                   event))
        self.phase = phase
        self.status["phase"] = phase.value

    def control(self, *, paused: bool, cancel: bool) -> None:
        """Ask the runner for a new control state, with a fresh generation."""
        current = self.status.get("control") or {}
        if bool(current.get("paused")) == paused and bool(current.get("cancel")) == cancel \
                and current.get("generation"):
            self.actions.append(SetControl(Control(**_control_kwargs(current))))
            return
        generation = int(current.get("generation", 0)) + 1
        self.status["control"] = {"paused": paused, "cancel": cancel, "generation": generation,
                                  "requestedAt": self.now_str}
        self.actions.append(SetControl(Control(paused=paused, cancel=cancel,
                                               generation=generation)))

    def acked(self, state: RunnerState) -> bool:
        runner = self.obs.runner
        generation = int((self.status.get("control") or {}).get("generation", 0))
        return runner is not None and runner.state == state \
            and runner.acked_generation >= generation > 0

    def seconds_since(self, key: str) -> float:
        start = parse_time((self.status.get("control") or {}).get(key))
        return (self.obs.now - start).total_seconds() if start else 0.0

    def stop_the_clock(self) -> None:
        """Add the current run's time to runSeconds (the deadline budget already spent)."""
        started = parse_time(self.status.pop("runStartedAt", None))
        if started is not None:
            spent = max(0.0, (self.obs.now - started).total_seconds())
            self.status["runSeconds"] = round(float(self.status.get("runSeconds") or 0) + spent, 1)

    def suspend(self) -> None:
        job = self.obs.job
        if job is not None and not job.suspended:
            self.actions.append(SuspendJob())
        self.stop_the_clock()

    def remaining_seconds(self) -> int | None:
        timeout = self.obs.spec.timeout_minutes
        if timeout is None:
            return None
        spent = float(self.status.get("runSeconds") or 0)
        return max(1, int(timeout * 60 - spent))

    def finish(self, phase: Phase, reason: str, message: str, *, warning: bool = False) -> None:
        reason = condition_reason(reason, fallback=Reason.JOB_FAILED)
        message = _bounded(message)
        self.stop_the_clock()
        self.status["completedAt"] = self.now_str
        self.go(phase, reason, message, warning=warning)
        self.condition(ConditionType.RUNNING, False, reason, message)
        if phase == Phase.SUCCEEDED:
            self.condition(ConditionType.COMPLETE, True, reason, message)
        elif phase == Phase.FAILED:
            self.status["error"] = message
            self.condition(ConditionType.FAILED, True, reason, message)
        elif phase == Phase.CANCELLED:
            self.status["cancelledAt"] = self.now_str
            self.condition(ConditionType.CANCELLED, True, reason, message)

    def decision(self) -> Decision:
        self.status["observedGeneration"] = self.obs.generation
        self.status["phase"] = self.phase.value
        if self.obs.job is not None:
            self.status["jobRef"] = self.obs.job.name
            self.status["attempts"] = max(int(self.status.get("attempts") or 0),
                                          self.obs.job.failed + (1 if self.obs.job.active else 0)
                                          + self.obs.job.succeeded)
        actions = tuple(dict.fromkeys(self.actions))  # each action once, in order
        return Decision(phase=self.phase, status=self.status, actions=actions,
                        notes=tuple(self.notes), requeue_after=self.requeue,
                        changed=self.status != self.obs.status)


MAX_MESSAGE = MESSAGE_MAX
UNSPECIFIED_REASON = "Unspecified"  # a condition whose reason could not be made valid


def _bounded(message: str) -> str:
    """Runner errors can be long; the CRD caps messages, and a write over the cap would
    be refused. Keep the start and the end, which say the most."""
    return clip_middle(message, MAX_MESSAGE)


def _control_kwargs(current: dict[str, Any]) -> dict[str, Any]:
    return {"paused": bool(current.get("paused")), "cancel": bool(current.get("cancel")),
            "generation": int(current.get("generation", 0))}


# -- the machine ------------------------------------------------------------------------


def decide(obs: Observation, timeouts: Timeouts = Timeouts()) -> Decision:
    """The next step for one SyncJob. See the module docstring."""
    b = _Builder(obs)
    b.timeouts = timeouts
    spec, job = obs.spec, obs.job

    if b.phase.is_terminal:
        if b.phase == Phase.CANCELLED and job is not None and not job.suspended \
                and not job.complete and job.failed_reason is None:
            b.actions.append(SuspendJob())
        return b.decision()

    if b.phase == Phase.PENDING and obs.duplicate_of:
        b.status["duplicateOf"] = obs.duplicate_of
        b.finish(Phase.CANCELLED, Reason.DUPLICATE,
                 f"dedupKey {spec.dedup_key!r} is already active in SyncJob "
                 f"{obs.duplicate_of!r}")
        return b.decision()

    # The batch Job's own verdict comes first: work that finished is not undone.
    if job is not None and job.complete:
        b.finish(Phase.SUCCEEDED, Reason.COMPLETED, _success_message(obs))
        _final_progress(b)
        return b.decision()
    if job is not None and job.failed_reason is not None:
        if b.phase == Phase.CANCELLING:
            b.finish(Phase.CANCELLED, Reason.CANCELLED_BY_USER, "cancelled while its Job failed")
        else:
            reason, message = _failure(obs)
            b.finish(Phase.FAILED, reason, message, warning=True)
        return b.decision()

    if spec.cancel:
        _cancel(b, timeouts)
        return b.decision()
    if spec.paused:
        _pause(b, timeouts)
        return b.decision()
    _run(b)
    return b.decision()


def _cancel(b: _Builder, timeouts: Timeouts) -> None:
    job = b.obs.job
    holds_pod = job is not None and not job.suspended and job.active > 0
    if b.phase in (Phase.PENDING, Phase.QUEUED, Phase.PAUSED) or not holds_pod:
        b.suspend()
        b.finish(Phase.CANCELLED, Reason.CANCELLED_BY_USER, "cancelled")
        return
    if b.phase != Phase.CANCELLING:
        b.control(paused=bool(b.obs.spec.paused), cancel=True)
        b.go(Phase.CANCELLING, Reason.CANCEL_REQUESTED,
             "cancel requested: the runner stops at its next safe point", audit="cancel_requested")
        b.requeue = timeouts.cancel_grace_seconds
        return
    b.control(paused=bool(b.obs.spec.paused), cancel=True)
    if b.acked(RunnerState.CANCELLED) or b.acked(RunnerState.PAUSED):
        b.suspend()
        _record_stop_point(b)
        b.finish(Phase.CANCELLED, Reason.CANCELLED_BY_USER,
                 "cancelled at a safe point; the runner saved its checkpoint")
        return
    waited = b.seconds_since("requestedAt")
    if waited >= timeouts.cancel_grace_seconds:
        b.suspend()
        b.finish(Phase.CANCELLED, Reason.FORCED_CANCEL,
                 f"the runner did not stop within {timeouts.cancel_grace_seconds:.0f}s: "
                 "its pod was terminated", warning=True)
        return
    b.requeue = timeouts.cancel_grace_seconds - waited


def _pause(b: _Builder, timeouts: Timeouts) -> None:
    job = b.obs.job
    if b.phase in (Phase.PENDING, Phase.QUEUED):
        b.go(Phase.PAUSED, Reason.HELD_WHILE_PAUSED, "paused before it started: held",
             audit="paused")
        b.status["pausedAt"] = b.now_str
        b.condition(ConditionType.PAUSED, True, Reason.HELD_WHILE_PAUSED,
                    "held in the queue while paused")
        b.condition(ConditionType.ADMITTED, False, Reason.HELD_WHILE_PAUSED, "paused")
        return
    if b.phase == Phase.PAUSED:
        b.suspend()
        return
    holds_pod = job is not None and not job.suspended and job.active > 0
    if b.phase == Phase.RUNNING:
        b.control(paused=True, cancel=False)
        if holds_pod:
            b.go(Phase.PAUSING, Reason.PAUSE_REQUESTED,
                 "pause requested: the runner stops at its next checkpoint",
                 audit="pause_requested")
            b.condition(ConditionType.PAUSED, False, Reason.PAUSE_REQUESTED,
                        "waiting for the runner to reach a checkpoint")
            b.requeue = timeouts.pause_grace_seconds
            return
        _paused(b, Reason.PAUSED_AT_CHECKPOINT, "paused; no pod was running")
        return
    # PAUSING
    b.control(paused=True, cancel=False)
    if b.acked(RunnerState.PAUSED):
        _paused(b, Reason.PAUSED_AT_CHECKPOINT,
                "paused at a checkpoint; the pod was released")
        return
    if not holds_pod:
        _paused(b, Reason.PAUSED_AT_CHECKPOINT, "paused; the pod had already stopped")
        return
    waited = b.seconds_since("requestedAt")
    if waited >= timeouts.pause_grace_seconds:
        _paused(b, Reason.INTERRUPTED,
                f"the runner did not reach a checkpoint within "
                f"{timeouts.pause_grace_seconds:.0f}s: its pod was terminated (SIGTERM)",
                warning=True)
        return
    b.requeue = timeouts.pause_grace_seconds - waited


def _paused(b: _Builder, reason: str, message: str, *, warning: bool = False) -> None:
    b.suspend()
    _record_stop_point(b)
    b.status["pausedAt"] = b.now_str
    b.go(Phase.PAUSED, reason, message, warning=warning)
    b.condition(ConditionType.PAUSED, True, reason, message)
    b.condition(ConditionType.RUNNING, False, reason, "paused")
    b.condition(ConditionType.ADMITTED, False, reason, "paused: capacity released")


def _run(b: _Builder) -> None:
    obs, job = b.obs, b.obs.job
    if b.status.get("control"):
        # Re-assert "run" in Redis on every pass: a resume whose publish was lost (Redis
        # down, or a crash after the status write) must not leave a pause flag behind.
        b.control(paused=False, cancel=False)
    if b.phase == Phase.PAUSED:
        b.control(paused=False, cancel=False)
        b.go(Phase.QUEUED, Reason.RESUMED, "resumed: waiting in the queue for capacity",
             audit="resumed")
        b.condition(ConditionType.PAUSED, False, Reason.RESUMED, "resumed")
    elif b.phase == Phase.PAUSING:
        b.control(paused=False, cancel=False)
        b.go(Phase.RUNNING, Reason.RESUMED, "resumed before the pause took effect",
             audit="resumed")
        b.condition(ConditionType.PAUSED, False, Reason.RESUMED, "resumed")
        return
    elif b.phase == Phase.PENDING:
        # Audited, but no Event: phase and the Admitted condition say it, and a job with
        # room goes on to Running in this same decision (its Event is "Admitted").
        b.go(Phase.QUEUED, Reason.QUEUED, "waiting in the queue", audit="queued", event=False)

    if b.phase == Phase.QUEUED and job is not None and not job.suspended and job.active > 0:
        # The Job was created but the status write was lost (a crash in between): it
        # runs, so it holds capacity; say so rather than wait for a grant.
        b.status.setdefault("startedAt", b.now_str)
        b.status.setdefault("runStartedAt", b.now_str)
        b.go(Phase.RUNNING, Reason.ADMITTED, "its Job is already running", audit="started")
        b.condition(ConditionType.ADMITTED, True, Reason.ADMITTED, "the Job already runs")
        b.condition(ConditionType.RUNNING, True, Reason.STARTED, "the runner pod runs")
        return
    if b.phase == Phase.QUEUED:
        if not obs.granted:
            # Written once: where it stands in line is computed on read (kubectl sync),
            # since rewriting every waiting job at each admission does not scale.
            b.condition(ConditionType.ADMITTED, False, Reason.QUEUED, "waiting for capacity")
            return
        b.actions.append(CreateJob(b.remaining_seconds()))
        b.status.setdefault("startedAt", b.now_str)
        b.status["runStartedAt"] = b.now_str
        # Said now, in the same write as the transition, rather than by a second write
        # when the Job and the first heartbeat show up: the Job's name is derived, this
        # is its first attempt (or the next), and the heartbeat is watched from here on.
        if obs.job_name is not None:
            b.status["jobRef"] = obs.job_name
        b.status["attempts"] = max(int(b.status.get("attempts") or 0),
                                   (job.failed if job is not None else 0) + 1)
        b.go(Phase.RUNNING, Reason.ADMITTED, "admitted: the Job is running", audit="started")
        b.condition(ConditionType.ADMITTED, True, Reason.ADMITTED, "capacity granted")
        b.condition(ConditionType.RUNNING, True, Reason.STARTED, "the runner pod is starting")
        b.condition(ConditionType.PROGRESSING, True, Reason.STARTED,
                    "the runner is starting; its heartbeat is watched")
        return

    # RUNNING: keep the Job present and running. status.progress is the progress
    # relay's while the job runs (one writer per field); transitions write it here.
    if job is None or job.suspended:
        b.actions.append(CreateJob(b.remaining_seconds()))
        b.status.setdefault("runStartedAt", b.now_str)
    if obs.runner is not None and obs.runner.state in (RunnerState.RUNNING,
                                                       RunnerState.STARTING) \
            and of_current_run(obs.runner, b.status):
        _check_heartbeat(b, obs.runner.heartbeat_at)  # not a pod stopped earlier's report
    elif obs.runner_reachable and (obs.runner is None
                                   or not of_current_run(obs.runner, b.status)):
        # No report from this run's pod yet: a runner that never starts (a bad image, a
        # pod that cannot be placed) goes stale from the moment the run began.
        started = parse_time(b.status.get("runStartedAt"))
        if started is not None:
            _check_heartbeat(b, started.timestamp(), silent_since_start=True)
    b.requeue = b.timeouts.heartbeat_stale_seconds  # look again even if nothing happens


def of_current_run(runner: RunnerStatus, status: Status) -> bool:
    """Whether a runner report comes from the pod of the current run (status.runStartedAt),
    not from one stopped earlier (a pause, a retry)."""
    run_started = parse_time(status.get("runStartedAt"))
    return runner.started_at is not None and (
        run_started is None or runner.started_at >= run_started.timestamp() - 1)


def _check_heartbeat(b: _Builder, beat_at: float, *, silent_since_start: bool = False
                     ) -> None:
    """Progressing=False (with one Warning) once the heartbeat is stale; True again when
    it returns. A fresh heartbeat under Progressing=True writes nothing: the condition
    was set when the run started, and rewriting it per heartbeat is a write per job."""
    age = b.obs.now.timestamp() - beat_at
    limit = b.timeouts.heartbeat_stale_seconds
    previous = next((c for c in b.status.get("conditions") or []
                     if c.get("type") == ConditionType.PROGRESSING), None)
    if age > limit:
        message = (f"no heartbeat from the runner in the {age:.0f}s since the run started"
                   if silent_since_start else
                   f"no heartbeat from the runner for {age:.0f}s") + f" (limit {limit:.0f}s)"
        if previous is None or previous.get("status") != "False":
            b.notes.append(Note(Reason.HEARTBEAT_STALE, message, warning=True))
            b.condition(ConditionType.PROGRESSING, False, Reason.HEARTBEAT_STALE, message)
    elif not silent_since_start and (previous is None or previous.get("status") != "True"):
        b.condition(ConditionType.PROGRESSING, True, Reason.PROGRESS_REPORTED,
                    "the runner reports progress")


def progress_status(runner: RunnerStatus, previous: dict[str, Any] | None) -> dict[str, Any]:
    """status.progress from the runner's report (percent, done/total, unit, message)."""
    p = runner.progress
    # Every string is clipped to the schema: a status write the API server refuses
    # for a runner's long unit or message would stall the job.
    out: dict[str, Any] = {"done": max(0, p.done), "unit": clip(p.unit, PROGRESS_UNIT_MAX),
                           "message": clip(p.message, PROGRESS_MESSAGE_MAX),
                           "updatedAt": format_time(datetime.fromtimestamp(p.updated_at, UTC))}
    if p.total is not None:
        out["total"] = max(0, p.total)
    if p.percent is not None:
        out["percent"] = min(100, max(0, p.percent))
    if previous and "etaSeconds" in previous and previous.get("done") == p.done:
        out["etaSeconds"] = previous["etaSeconds"]
    return out


def _record_stop_point(b: _Builder) -> None:
    """On pause or cancel: the exact progress the runner stopped at, and its checkpoint."""
    if b.obs.runner is not None:
        progress = progress_status(b.obs.runner, None)
        b.status["progress"] = progress
    checkpoint = b.obs.checkpoint
    if checkpoint is not None:
        b.status["checkpoint"] = {
            "savedAt": format_time(datetime.fromtimestamp(checkpoint.saved_at, UTC)),
            "done": checkpoint.progress.done}


def _final_progress(b: _Builder) -> None:
    runner = b.obs.runner
    if runner is not None:
        progress = progress_status(runner, b.status.get("progress"))
        progress.pop("etaSeconds", None)
        if runner.state == RunnerState.SUCCEEDED and progress.get("total") is not None:
            progress["percent"] = 100
        b.status["progress"] = progress
        if runner.warnings > 0:
            b.status["warnings"] = runner.warnings
        if runner.summary:
            b.status["result"] = bounded_result(runner.summary)


def _success_message(obs: Observation) -> str:
    runner = obs.runner
    if runner is not None and runner.warnings:
        return f"completed with {runner.warnings} warning(s)"
    return "completed"


def _failure(obs: Observation) -> tuple[str, str]:
    job = obs.job
    assert job is not None
    runner_error = obs.runner.error if obs.runner is not None else None
    if job.failed_reason == "DeadlineExceeded":
        minutes = obs.spec.timeout_minutes
        return Reason.DEADLINE_EXCEEDED, f"ran longer than timeoutMinutes={minutes}"
    if job.failed_reason == "PodFailurePolicy":
        summary = obs.runner.summary if obs.runner is not None else {}
        # A task's own reason, if it is one a condition can carry (else CamelCased).
        reason = condition_reason(summary.get("reason") or Reason.FATAL_ERROR,
                                  fallback=Reason.FATAL_ERROR)
        return reason, runner_error or job.failed_message or "the runner failed fatally"
    if job.failed_reason == "BackoffLimitExceeded":
        tail = f": {runner_error}" if runner_error else ""
        return Reason.BACKOFF_LIMIT_EXCEEDED, \
            f"failed after {job.failed} attempt(s){tail}"
    return Reason.JOB_FAILED, runner_error or job.failed_message or "the Job failed"
