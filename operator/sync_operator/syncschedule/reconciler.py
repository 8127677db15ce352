"""Reconciles one SyncSchedule: creates its SyncJobs on time, prunes their history,
and reports the last and next runs.

The tick decision itself is pure (scheduling/decision.py). What makes it safe
is the deterministic job name of a tick: creating it twice answers 409, which
means "already done", so a restart, a retried reconcile or a second replica can
never start a tick twice. lastScheduleTime is written after the create, and a
missed write is repaired on the next pass because the job already exists.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pydantic import ValidationError

from sync_operator.api.common import (
    API_VERSION,
    FINALIZER,
    SYNCJOBS,
    SYNCSCHEDULES,
    ConditionType,
    Phase,
    Reason,
)
from sync_operator.api.syncschedule import SyncScheduleSpec
from sync_operator.audit.recording import move_actions
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.bodies import Document, RawBody
from sync_operator.kube.conditions import set_condition
from sync_operator.kube.events import EventRecorder
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.metrics import OperatorMetrics
from sync_operator.kube.patches import merge_patch
from sync_operator.kube.timestamps import format_time, parse_time
from sync_operator.mirror.link import Mirror
from sync_operator.syncjob.job_builder import label_value
from sync_operator.syncschedule import (
    HistoryEntry,
    ScheduleTiming,
    TickAction,
    TickReason,
    decide_tick,
    prune_history,
    validate,
)

log = logging.getLogger(__name__)
SCHEDULE_LABEL = "sync.jobcontrol.io/schedule"
SCHEDULED_TIME_ANNOTATION = "sync.jobcontrol.io/scheduled-time"
# Re-check a schedule at least this often even when its next tick is far away.
MAX_SLEEP_SECONDS = 300.0


def schedule_label(name: str) -> str:
    """The SCHEDULE_LABEL value of a schedule's jobs: its name, or for a name that is no
    valid label value (over 63 characters) a cut of it with a hash of the whole."""
    return label_value(name)


def schedule_selector(name: str) -> str:
    """The label selector of a schedule's jobs."""
    return f"{SCHEDULE_LABEL}={schedule_label(name)}"


def syncjob_for_tick(schedule: RawBody, spec: SyncScheduleSpec, name: str,
                     scheduled: datetime) -> RawBody:
    """The SyncJob a schedule creates for one tick (owned by the schedule)."""
    meta = schedule["metadata"]
    job_spec: Document = {
        "jobType": spec.job_type.value, "priority": spec.priority,
        "retryAttempts": spec.retry_attempts, "scheduleRef": meta["name"],
        "params": dict(spec.job_template.params),
    }
    if spec.timeout_minutes is not None:
        job_spec["timeoutMinutes"] = spec.timeout_minutes
    if spec.job_template.dedup_key:
        job_spec["dedupKey"] = spec.job_template.dedup_key
    return {
        "apiVersion": API_VERSION, "kind": "SyncJob",
        "metadata": {
            "name": name, "namespace": meta["namespace"],
            "labels": {SCHEDULE_LABEL: schedule_label(meta["name"])},
            "annotations": {SCHEDULED_TIME_ANNOTATION: format_time(scheduled)},
            "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "SyncSchedule", "name": meta["name"],
                "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": job_spec,
    }


class ScheduleReconciler:
    def __init__(self, *, client: KubeClient, recorder: EventRecorder,
                 clock: Callable[[], datetime], mirror: Mirror | None = None,
                 deleter: Callable[[str], Awaitable[str | None]] | None = None,
                 metrics: OperatorMetrics | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self.clock = clock
        # With a mirror, deletion must be recorded before the object goes: a finalizer,
        # and `deleter` tells who asked for it.
        self.mirror = mirror
        self.deleter = deleter
        self.metrics = metrics
        self.created = 0
        self.reconciles = 0

    def _mirrored(self, schedule: RawBody) -> None:
        if self.mirror is not None:
            self.mirror.notify(schedule)

    async def reconcile(self, key: ObjectKey) -> float | None:
        """One look at a schedule; returns when to look again."""
        self.reconciles += 1
        try:
            return await self._reconcile(key)
        except ApiError as err:
            if err.conflict:
                return 0.0  # our read was stale (a drain, an edit): read again
            raise

    async def _reconcile(self, key: ObjectKey) -> float | None:
        namespace, name = key
        schedule = await self.client.get_or_none(SYNCSCHEDULES, name, namespace)
        if schedule is None:
            return None
        if schedule["metadata"].get("deletionTimestamp"):
            await self._finalize(schedule)
            return None
        if self.mirror is not None and FINALIZER not in (
                schedule["metadata"].get("finalizers") or []):
            schedule = await self.client.patch(SYNCSCHEDULES, name, {"metadata": {
                "finalizers": [*(schedule["metadata"].get("finalizers") or []), FINALIZER],
                "resourceVersion": schedule["metadata"]["resourceVersion"]}}, namespace)
        now = self.clock()
        status: Document = dict(schedule.get("status") or {})
        generation = int(schedule["metadata"].get("generation", 1))
        try:
            spec = SyncScheduleSpec.model_validate(schedule.get("spec") or {})
            validate(spec.schedule, spec.time_zone)
        except (ValidationError, ValueError) as err:
            reason = Reason.INVALID_TIME_ZONE if "zone" in str(err).lower() \
                else Reason.INVALID_SCHEDULE
            status["conditions"] = set_condition(
                status.get("conditions"), ConditionType.READY, False, reason, str(err)[:1024],
                generation, now)
            status["observedGeneration"] = generation
            await self._write_status(schedule, status)
            return None

        jobs = (await self.client.list(SYNCJOBS, namespace,
                                       label_selector=schedule_selector(name)))["items"]
        # A shortened label is shared only by a hash collision: scheduleRef says whose.
        jobs = [j for j in jobs if (j.get("spec") or {}).get("scheduleRef") in (None, name)]
        active = [j for j in jobs if not Phase.of(j).is_terminal
                  and not j["metadata"].get("deletionTimestamp")]
        decision = decide_tick(
            name, ScheduleTiming.from_spec(spec),
            created_at=parse_time(schedule["metadata"]["creationTimestamp"]) or now,
            last_schedule_time=parse_time(status.get("lastScheduleTime")), now=now,
            active_jobs=[j["metadata"]["name"] for j in active])

        if decision.action == TickAction.CREATE and decision.job_name \
                and decision.scheduled_time:
            for victim in decision.cancel:
                await self.client.patch(SYNCJOBS, victim, {"spec": {"cancel": True}}, namespace)
                await self.recorder.record(schedule, "Replaced",
                                           f"cancelled {victim} to start the next run")
            created = await self._create(schedule, spec, decision.job_name,
                                         decision.scheduled_time)
            status["lastScheduleTime"] = format_time(decision.scheduled_time)
            if created is not None:
                active = [j for j in active if j["metadata"]["name"] not in decision.cancel]
                active.append(created)
        elif decision.action == TickAction.SKIP and decision.scheduled_time:
            status["lastScheduleTime"] = format_time(decision.scheduled_time)
            missed = decision.reason == TickReason.MISSED_DEADLINE
            await self.recorder.record(
                schedule, Reason.MISSED_SCHEDULE if missed else Reason.CONCURRENCY_FORBIDDEN,
                f"skipped the run of {format_time(decision.scheduled_time)}: "
                + ("past startingDeadlineSeconds" if missed
                   else "concurrencyPolicy Forbid and a job is still active"),
                warning=True)
        elif decision.reason == TickReason.ALREADY_STARTED and decision.scheduled_time:
            status["lastScheduleTime"] = format_time(decision.scheduled_time)
        if decision.too_many_missed:
            await self.recorder.record(
                schedule, "TooManyMissedTimes",
                "too many missed start times: set or decrease startingDeadlineSeconds or "
                "check clock skew", warning=True)

        await self._prune(namespace, jobs, spec)
        succeeded = [parse_time(j.get("status", {}).get("completedAt")) for j in jobs
                     if Phase.of(j) == Phase.SUCCEEDED]
        last_success = max((t for t in succeeded if t), default=None)
        if last_success is not None:
            previous = parse_time(status.get("lastSuccessfulTime"))
            if previous is None or last_success > previous:
                status["lastSuccessfulTime"] = format_time(last_success)
        status["active"] = [{"name": j["metadata"]["name"], "uid": j["metadata"].get("uid")}
                            for j in active]
        status["activeCount"] = len(active)
        if decision.next_schedule_time and not spec.suspend:
            status["nextScheduleTime"] = format_time(decision.next_schedule_time)
        else:
            status.pop("nextScheduleTime", None)
        ready_reason = Reason.SUSPENDED if spec.suspend else Reason.SCHEDULED
        ready_message = "suspended: no new jobs are created" if spec.suspend else (
            f"next run at {status.get('nextScheduleTime')}")
        status["conditions"] = set_condition(
            status.get("conditions"), ConditionType.READY, not spec.suspend, ready_reason,
            ready_message, generation, now)
        status["observedGeneration"] = generation
        status = move_actions(schedule, status, None, now)
        await self._write_status(schedule, status)
        if spec.suspend or decision.next_schedule_time is None:
            return MAX_SLEEP_SECONDS
        wait = (decision.next_schedule_time - now) / timedelta(seconds=1)
        return max(0.05, min(wait, MAX_SLEEP_SECONDS))

    async def _finalize(self, schedule: RawBody) -> None:
        """Record the deletion (and any audit entries still waiting) in PostgreSQL,
        then let the schedule go. Its SyncJobs go with it (ownerReferences)."""
        meta = schedule["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        if self.mirror is not None:
            who = (await self.deleter(meta["uid"]) if self.deleter else None) or "unknown"
            await self.mirror.record_deletion(schedule, who)
        try:
            await self.client.patch(SYNCSCHEDULES, meta["name"], {"metadata": {
                "finalizers": [f for f in meta["finalizers"] if f != FINALIZER],
                "resourceVersion": meta["resourceVersion"]}}, meta["namespace"])
        except ApiError as err:
            if not err.not_found:
                raise

    async def _create(self, schedule: RawBody, spec: SyncScheduleSpec, name: str,
                      scheduled: datetime) -> RawBody | None:
        body = syncjob_for_tick(schedule, spec, name, scheduled)
        try:
            created: RawBody = await self.client.create(SYNCJOBS, body,
                                                      schedule["metadata"]["namespace"])
        except ApiError as err:
            if err.conflict:  # this tick's job exists: the tick was already acted on
                return None
            raise
        self.created += 1
        if self.metrics is not None:
            self.metrics.schedule_jobs.inc()
        await self.recorder.record(schedule, "SuccessfulCreate",
                                   f"created SyncJob {name} for {format_time(scheduled)}")
        return created

    async def _prune(self, namespace: str, jobs: list[RawBody], spec: SyncScheduleSpec) -> None:
        history = [HistoryEntry(j["metadata"]["name"], Phase.of(j).value,
                                parse_time(j.get("status", {}).get("completedAt")))
                   for j in jobs if Phase.of(j).is_terminal]
        for name in prune_history(history, spec.successful_jobs_history_limit,
                                  spec.failed_jobs_history_limit):
            await self.client.delete(SYNCJOBS, name, namespace)

    async def _write_status(self, schedule: RawBody, status: Document) -> None:
        old = schedule.get("status") or {}
        if status == old:
            self._mirrored(schedule)  # the mirror keeps every look, not only changes
            return
        patch = merge_patch(old, status)
        meta = schedule["metadata"]
        # With a resourceVersion precondition: status.mirror may have been drained since
        # the read, and a blind write would bring the drained entries back.
        updated: RawBody = await self.client.patch(
            SYNCSCHEDULES, meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": patch},
            meta["namespace"], subresource="status")
        self._mirrored(updated)

