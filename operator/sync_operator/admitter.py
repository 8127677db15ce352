"""Runs admission passes: lists SyncJobs, asks the pure queue (admission.py) who may
start, and hands grants to the reconciler through the AdmissionGate.

One pass at a time, from a fresh LIST, so capacity is counted from what the API
server says now rather than from a cache that may lag. A grant is held in memory
until a LIST shows the job left Queued, so a job that was granted but not yet
started still counts against the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync_operator.admission import (
    ActiveJob,
    Candidate,
    Limits,
    active_from_body,
    candidate_from_body,
    holds_capacity,
    plan_admission,
)
from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES, JobType, Phase
from sync_operator.kube import KubeClient

log = logging.getLogger(__name__)
Key = tuple[str, str]


@dataclass
class AdmissionGate:
    """What the admitter decided, for the reconciler to read."""

    grants: dict[str, Key] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def granted(self, uid: str) -> bool:
        return uid in self.grants

    def message(self, uid: str) -> str | None:
        return self.messages.get(uid)


def type_limits(schedules: list[dict[str, Any]],
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
    def __init__(self, client: KubeClient, gate: AdmissionGate, *, namespace: str | None,
                 global_limit: int, default_limits: dict[JobType, int], interval: float,
                 enqueue: Callable[[Key], None]) -> None:
        self.client = client
        self.gate = gate
        self.namespace = namespace
        self.global_limit = global_limit
        self.default_limits = default_limits
        self.interval = interval
        self.enqueue = enqueue
        self.passes = 0
        self.phase_counts: dict[str, int] = {}
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
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
        for uid in list(self.gate.grants):
            job = by_uid.get(uid)
            if job is None or Phase.of(job) != Phase.QUEUED:
                self.gate.grants.pop(uid, None)

        active: list[ActiveJob] = []
        candidates: list[Candidate] = []
        for job in jobs:
            meta, spec = job["metadata"], job.get("spec", {})
            if holds_capacity(job) or meta["uid"] in self.gate.grants:
                active.append(active_from_body(job))
            elif Phase.of(job) == Phase.QUEUED and not meta.get("deletionTimestamp") \
                    and not spec.get("cancel"):
                candidates.append(candidate_from_body(job))

        per_type: dict[str, int] = {
            str(k): v for k, v in type_limits(schedules, self.default_limits).items()}
        result = plan_admission(candidates, active, Limits(per_type, self.global_limit))
        for uid in result.admit:
            job = by_uid[uid]
            key = (job["metadata"]["namespace"], job["metadata"]["name"])
            self.gate.grants[uid] = key
            self.gate.messages.pop(uid, None)
            self.enqueue(key)
        for waiting in result.waiting:
            if waiting.position is None:
                continue  # paused: the state machine holds it
            message = f"position {waiting.position} in the queue: {waiting.reason}"
            if self.gate.messages.get(waiting.uid) != message:
                self.gate.messages[waiting.uid] = message
                job = by_uid[waiting.uid]
                self.enqueue((job["metadata"]["namespace"], job["metadata"]["name"]))
        for uid in list(self.gate.messages):
            if uid not in by_uid:
                self.gate.messages.pop(uid, None)

