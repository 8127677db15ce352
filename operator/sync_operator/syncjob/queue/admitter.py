"""Runs admission passes: lists SyncJobs, asks the pure plan (plan.py) who may start,
and records the grants it assumes (grants.py) for the reconciler to read.

One pass at a time, from a fresh LIST, so capacity is counted from what the API
server says now rather than from a cache that may lag. A grant is held in memory
until a LIST shows the job left Queued, so a job that was granted but not yet
started still counts against the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES, JobType, Phase
from sync_operator.kube import KubeClient
from sync_operator.kube.keys import ObjectKey
from sync_operator.syncjob.queue.grants import AdmissionView, Grants
from sync_operator.syncjob.queue.plan import (
    ActiveJob,
    Candidate,
    Limits,
    active_from_body,
    candidate_from_body,
    holds_capacity,
    plan_admission,
)

log = logging.getLogger(__name__)


def type_limits(schedules: Sequence[Mapping[str, Any]],
                defaults: dict[JobType, int]) -> dict[JobType, int]:
    """Per-type limits: a SyncSchedule's maxConcurrency sets its type's limit (the
    largest, if several schedules share a type); other types keep the defaults."""
    limits = dict(defaults)
    from_schedules: dict[JobType, int] = {}
    for s in schedules:
        spec = s.get("spec", {})
        try:
            job_type = JobType(spec.get("jobType"))
        except ValueError:
            continue
        value = int(spec.get("maxConcurrency", 1))
        from_schedules[job_type] = max(value, from_schedules.get(job_type, 0))
    limits.update(from_schedules)
    return limits


class Admitter:
    def __init__(self, *, client: KubeClient, namespace: str | None, global_limit: int,
                 default_limits: dict[JobType, int], interval: float,
                 enqueue: Callable[[ObjectKey], None]) -> None:
        self.client = client
        self._grants = Grants()
        self.namespace = namespace
        self.global_limit = global_limit
        self.default_limits = default_limits
        self.interval = interval
        self.enqueue = enqueue
        self.passes = 0
        self.phase_counts: dict[str, int] = {}
        self._wake = asyncio.Event()

    @property
    def grants(self) -> AdmissionView:
        """The read side, for the reconciler."""
        return self._grants

    @property
    def granted_count(self) -> int:
        return self._grants.granted_count

    @property
    def waiting_count(self) -> int:
        return self._grants.waiting_count

    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Passes while this replica leads; each term starts with no grants of its own."""
        self._grants.clear()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
                try:
                    await self.pass_once()
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    log.warning("admission pass failed: %s", err)
                    await asyncio.sleep(1.0)
        finally:
            self._grants.clear()

    async def pass_once(self) -> None:
        jobs = (await self.client.list(SYNCJOBS, self.namespace))["items"]
        schedules = (await self.client.list(SYNCSCHEDULES, self.namespace))["items"]
        self.passes += 1
        counts: dict[str, int] = {p.value: 0 for p in Phase}
        for job in jobs:
            counts[Phase.of(job).value] += 1
        self.phase_counts = counts
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        # A grant ends when the job is seen out of Queued (or gone).
        self._grants.settle(uid for uid, job in by_uid.items() if Phase.of(job) == Phase.QUEUED)

        active: list[ActiveJob] = []
        candidates: list[Candidate] = []
        for job in jobs:
            meta, spec = job["metadata"], job.get("spec", {})
            if holds_capacity(job) or self._grants.granted(meta["uid"]):
                active.append(active_from_body(job))
            elif Phase.of(job) == Phase.QUEUED and not meta.get("deletionTimestamp") \
                    and not spec.get("cancel"):
                candidates.append(candidate_from_body(job))

        per_type: dict[str, int] = {
            str(k): v for k, v in type_limits(schedules, self.default_limits).items()}
        result = plan_admission(candidates, active, Limits(per_type, self.global_limit))
        for uid in result.admit:
            key = ObjectKey.of(by_uid[uid])
            self._grants.assume(uid, key)
            self.enqueue(key)
        for waiting in result.waiting:
            if waiting.position is None:
                continue  # paused: the state machine holds it
            message = f"position {waiting.position} in the queue: {waiting.reason}"
            if self._grants.wait(waiting.uid, message):
                self.enqueue(ObjectKey.of(by_uid[waiting.uid]))
        self._grants.forget_missing(by_uid)

