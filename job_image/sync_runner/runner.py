"""One run of one SyncJob pod: start, run the task, report how it ended, pick the exit code.

The exit code is what Kubernetes acts on (podFailurePolicy); the published status
is what the operator relays. Both always agree on the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from typing import Any

import redis.asyncio as aioredis

from sync_runner.channel import (
    CheckpointUnreadableError,
    RedisChannel,
    RedisUnavailableError,
    connect,
)
from sync_runner.contract import (
    Checkpoint,
    Control,
    ExitCode,
    Keys,
    Progress,
    RunnerState,
    RunnerStatus,
)
from sync_runner.control import ControlWatcher, StopSignals
from sync_runner.logs import get_logger, log_event
from sync_runner.reporter import StatusReporter
from sync_runner.sdk import (
    CheckpointNotSavedError,
    FatalTaskError,
    JobIdentity,
    StopDecision,
    StopRequested,
    TaskContext,
)
from sync_runner.settings import RunnerSettings
from sync_runner.tasks import TaskFactory, resolve

log = get_logger("runner")

# Longer than a Redis socket timeout, so a loop in mid-call can finish it.
SHUTDOWN_SECONDS = 6.0
ACK_STATES = {"pause": RunnerState.PAUSED, "cancel": RunnerState.CANCELLED}


def ack_state(control: Control) -> RunnerState:
    return RunnerState.CANCELLED if control.cancel else RunnerState.PAUSED


class Runner:
    """Drives one task run against Redis; `run()` returns the process exit code."""

    def __init__(self, settings: RunnerSettings, client: aioredis.Redis,
                 task_factory: TaskFactory | None = None) -> None:
        self.settings = settings
        self.channel = RedisChannel(client, Keys(settings.job_uid),
                                    retry_seconds=settings.redis_retry_seconds)
        self.task_factory = task_factory
        self.job = JobIdentity.create(settings.job_uid, settings.job_name,
                                      settings.job_namespace, settings.job_type,
                                      settings.job_params)

    async def run(self) -> ExitCode:
        """Handle SIGTERM from the first moment (as PID 1, unhandled it would be ignored).

        The signal handlers are the process's own; `run_until` is the run without them.
        """
        terminated = asyncio.Event()

        def on_signal(signum: signal.Signals) -> None:
            if not terminated.is_set():
                log_event(log, "signal.received", signal=signum.name)
            terminated.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await self.run_until(terminated)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _read_start_state(self) -> tuple[Control, Checkpoint | None, list[str]]:
        """The operator's request and the previous pod's checkpoint (through outages)."""
        warnings: list[str] = []
        control = await self.channel.read_control_reliably() or Control()
        try:
            checkpoint = await self.channel.load_checkpoint()
        except CheckpointUnreadableError as exc:
            checkpoint = None
            warnings.append(f"stored checkpoint unreadable, starting over: {exc}")
        return control, checkpoint, warnings

    async def run_until(self, terminated: asyncio.Event) -> ExitCode:
        """Run the job; `terminated` set is SIGTERM. Touches no process state (signals,
        exit, the environment), so an embedder can run many jobs in one event loop."""
        startup = asyncio.create_task(self._read_start_state())
        sigterm = asyncio.create_task(terminated.wait())
        await asyncio.wait({startup, sigterm}, return_when=asyncio.FIRST_COMPLETED)
        sigterm.cancel()
        if not startup.done():
            startup.cancel()
            await asyncio.wait({startup}, timeout=1.0)
            log_event(log, "runner.stopped_during_startup")
            return ExitCode.STOPPED
        try:
            control, checkpoint, startup_warnings = startup.result()
        except RedisUnavailableError as exc:
            log_event(log, "runner.redis_unavailable", level=logging.ERROR, error=str(exc))
            return ExitCode.FAILED
        if checkpoint is not None:
            log_event(log, "checkpoint.loaded", done=checkpoint.progress.done,
                      saved_at=checkpoint.saved_at, pod=checkpoint.pod)

        reporter = StatusReporter(
            self.channel,
            RunnerStatus(
                state=RunnerState.STARTING,
                progress=checkpoint.progress if checkpoint else Progress(),
                pod=self.settings.pod_name,
                started_at=time.time(),
                checkpoint_at=checkpoint.saved_at if checkpoint else None,
            ),
            min_interval=self.settings.progress_min_interval_seconds,
            heartbeat_seconds=self.settings.heartbeat_seconds,
        )
        watcher = ControlWatcher(self.channel, initial=control,
                                 poll_seconds=self.settings.control_poll_seconds)
        stops = StopSignals(watcher, terminated)
        background = [asyncio.create_task(reporter.run(), name="status"),
                      asyncio.create_task(watcher.run(), name="control")]
        try:
            await reporter.publish_now()
            log_event(log, "runner.started", control_generation=control.generation,
                      resumed=checkpoint is not None)
            decision = stops.current()
            if decision is not None:
                log_event(log, "runner.stop_before_work", reason=decision.reason)
                return await self._stopped(decision, reporter, watcher, stops)
            return await self._run_task(checkpoint, reporter, watcher, stops,
                                        startup_warnings)
        finally:
            reporter.stop()
            watcher.stop()
            await self._shutdown(background)

    @staticmethod
    async def _shutdown(background: list[asyncio.Task[None]]) -> None:
        """Let the loops finish their current Redis call; cancel only what overstays."""
        _, pending = await asyncio.wait(background, timeout=SHUTDOWN_SECONDS)
        for job in pending:
            log_event(log, "runner.shutdown_overdue", level=logging.WARNING,
                      loop=job.get_name())
            job.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    async def _run_task(self, checkpoint: Checkpoint | None, reporter: StatusReporter,
                        watcher: ControlWatcher, stops: StopSignals,
                        startup_warnings: list[str]) -> ExitCode:
        ctx = TaskContext(self.job, checkpoint=checkpoint,
                          database_url=self.settings.database_url, pod=self.settings.pod_name,
                          status=reporter, checkpoints=self.channel, stops=stops)
        for warning in startup_warnings:
            ctx.warn(warning)
        try:
            if self.task_factory is not None:
                factory = self.task_factory
            else:
                factory, fallback = resolve(self.job.job_type)
                if fallback:
                    ctx.warn(f"no task for job type {self.job.job_type!r} yet; "
                             "ran the fallback demo task")
            task = factory()
        except LookupError as exc:
            return await self._failed(reporter, ctx, ExitCode.FATAL, f"UnknownJobType: {exc}")

        await reporter.publish_now(state=RunnerState.RUNNING)
        log_event(log, "task.started", task=type(task).__name__,
                  resumed=ctx.checkpoint is not None, done=ctx.current_progress.done)
        try:
            summary = await task.run(ctx)
        except StopRequested as stop:
            decision = StopDecision(stop.reason, stop.generation)
            if stop.reason != "sigterm":  # ack what the operator has now, if the task lied
                decision = stops.current() or decision
            return await self._stopped(decision, reporter, watcher, stops)
        except FatalTaskError as exc:
            return await self._failed(reporter, ctx, ExitCode.FATAL, str(exc),
                                      reason=exc.reason)
        except CheckpointNotSavedError as exc:
            return await self._failed(reporter, ctx, ExitCode.FAILED,
                                      f"checkpoint not saved: {exc}")
        except Exception as exc:
            log_event(log, "task.crashed", level=logging.ERROR, exc_info=True)
            return await self._failed(reporter, ctx, ExitCode.FAILED,
                                      f"{type(exc).__name__}: {exc}")

        final = self._with_warnings(summary, ctx)
        await reporter.publish_now(state=RunnerState.SUCCEEDED, summary=final)
        log_event(log, "task.succeeded", summary=final)
        return ExitCode.SUCCEEDED

    @staticmethod
    def _with_warnings(summary: Any, ctx: TaskContext) -> dict[str, Any]:
        """The task's summary made JSON-safe, with the warnings added."""
        if not isinstance(summary, dict):
            summary = {"result": summary}
        final: dict[str, Any] = json.loads(json.dumps(summary, default=str))
        count, messages = ctx.warnings
        if count:
            final.setdefault("warnings", messages)
            final.setdefault("warningCount", count)
        return final

    async def _failed(self, reporter: StatusReporter, ctx: TaskContext, code: ExitCode,
                      error: str, *, reason: str | None = None) -> ExitCode:
        log_event(log, "task.failed", level=logging.ERROR, error=error,
                  retryable=code is ExitCode.FAILED, exit_code=int(code))
        # summary.reason: the operator's Failed condition reason (e.g. LockHeld).
        summary = {"reason": reason} if reason else {}
        await reporter.publish_now(state=RunnerState.FAILED, error=error,
                                   summary=self._with_warnings(summary, ctx))
        return code

    async def _stopped(self, decision: StopDecision, reporter: StatusReporter,
                       watcher: ControlWatcher, stops: StopSignals) -> ExitCode:
        """Acknowledge a stop; after a pause/cancel ack, wait for the pod to be released."""
        if decision.reason == "sigterm":
            await reporter.publish_now(state=RunnerState.INTERRUPTED)
            log_event(log, "task.interrupted", done=reporter.status.progress.done)
            return ExitCode.STOPPED
        acked = decision.generation
        await reporter.publish_now(state=ACK_STATES[decision.reason], acked_generation=acked)
        log_event(log, "stop.acknowledged", reason=decision.reason, generation=acked,
                  checkpoint_at=reporter.status.checkpoint_at)
        return await self._wait_for_release(acked, reporter, watcher, stops)

    async def _wait_for_release(self, acked: int, reporter: StatusReporter,
                                watcher: ControlWatcher, stops: StopSignals) -> ExitCode:
        """Heartbeat until SIGTERM (the Job is suspended) or the timeout; follow new controls.

        A newer stop request is acknowledged too; a resume (no stop requested any more)
        ends the wait, so the Job starts a fresh pod that continues from the checkpoint.
        """
        deadline = time.monotonic() + self.settings.wait_after_ack_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log_event(log, "stop.release_timeout",
                          seconds=self.settings.wait_after_ack_seconds)
                return ExitCode.STOPPED
            newer = asyncio.create_task(watcher.wait_newer(acked))
            term = asyncio.create_task(stops.terminated.wait())
            try:
                await asyncio.wait({newer, term}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (newer, term):
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
            if stops.terminated.is_set():
                log_event(log, "stop.released", by="sigterm")
                return ExitCode.STOPPED
            control = watcher.latest
            if control.generation <= acked:
                continue
            if not control.stop_requested:
                log_event(log, "stop.resumed_before_release", generation=control.generation)
                return ExitCode.STOPPED
            acked = control.generation
            await reporter.publish_now(state=ack_state(control), acked_generation=acked)
            log_event(log, "stop.acknowledged", reason="cancel" if control.cancel else "pause",
                      generation=acked)


async def run_job(settings: RunnerSettings, client: aioredis.Redis, terminated: asyncio.Event,
                  task_factory: TaskFactory | None = None) -> ExitCode:
    """Run one job in-process on the caller's Redis client, until it ends or `terminated`
    is set (the SIGTERM equivalent); the client stays open (it may be shared)."""
    return await Runner(settings, client, task_factory).run_until(terminated)


async def run(settings: RunnerSettings, task_factory: TaskFactory | None = None) -> ExitCode:
    """Connect to Redis, run the job, close the connection."""
    client = connect(settings.redis_url)
    try:
        return await Runner(settings, client, task_factory).run()
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
