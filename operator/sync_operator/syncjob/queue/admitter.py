"""Runs admission passes over the watch-fed cache (cache.py) and records the grants it
assumes (grants.py) for the reconciler to read.

A pass reads memory only: per type, the most urgent waiting job, while its type and
the global limit have room (the same order and work-conserving rule as plan.py). It
costs work in proportion to what it admits plus the grants still in flight, not to the
number of SyncJobs. A grant is held until the cache shows the job out of Pending and
Queued, so a job granted but not yet started counts against the limits; passes wait
for the first full LIST of a leadership term (`mark_synced`), so a half-filled cache
never over-admits.

A new job that may be admitted is handed to the next pass (`arrive`) instead of
straight to a reconcile, and the pass enqueues it granted or not: its first reconcile
then knows the answer, and a job with room goes from Pending to Running in one status
write instead of two (Queued, then Running).

Queue positions are not written into the waiting jobs' status (that rewrote every
waiting job at each admission); `kubectl sync` computes them on read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sync_operator.api.common import JobType
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.store import ObjectStore
from sync_operator.syncjob.queue.cache import JobCache, WaitingJob
from sync_operator.syncjob.queue.grants import AdmissionView, Grants
from sync_operator.syncjob.queue.plan import Limits

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
    def __init__(self, *, cache: JobCache, global_limit: int,
                 default_limits: dict[JobType, int], interval: float,
                 enqueue: Callable[[ObjectKey], None]) -> None:
        self.cache = cache
        self.global_limit = global_limit
        self.default_limits = default_limits
        self.interval = interval
        self.enqueue = enqueue
        self.passes = 0
        self.admitted = 0
        self._grants = Grants()
        # Each SyncSchedule's spec, newest version first wins (a LIST taken before an
        # event must not undo it).
        self._schedules: ObjectStore[Mapping[str, Any]] = ObjectStore(
            kind="SyncSchedule", keep=lambda body: {"spec": dict(body.get("spec") or {})})
        self._limits = Limits({str(k): v for k, v in default_limits.items()}, global_limit)
        self._arrivals: dict[ObjectKey, None] = {}  # new jobs whose first pass is due
        self._wake = asyncio.Event()
        self._synced = asyncio.Event()

    @property
    def grants(self) -> AdmissionView:
        """The read side, for the reconciler."""
        return self._grants

    @property
    def granted_count(self) -> int:
        return len(self._grants)

    # -- inputs -------------------------------------------------------------------------

    def kick(self) -> None:
        self._wake.set()

    def arrive(self, key: ObjectKey) -> None:
        """A new waiting job (already in the cache): reconcile it after the next pass, so
        its first reconcile knows whether it was admitted."""
        self._arrivals[key] = None
        self.kick()

    def mark_synced(self) -> None:
        """The cache holds a full LIST: passes may start."""
        self._synced.set()
        self.kick()

    def observe_schedule(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A SyncSchedule's maxConcurrency is its type's limit."""
        if deleted:
            self._schedules.delete(body)
        else:
            self._schedules.put(body)
        self._recompute_limits()

    def replace_schedules(self, schedules: list[Mapping[str, Any]],
                          version: str | None = None) -> None:
        """Take in a full LIST of SyncSchedules taken at `version` (dropping any whose
        deletion was missed, keeping any the watch showed after the LIST was taken)."""
        self._schedules.replace(schedules, version)
        self._recompute_limits()

    def _recompute_limits(self) -> None:
        per_type = type_limits(self._schedules.values(), self.default_limits)
        limits = Limits({str(k): v for k, v in per_type.items()}, self.global_limit)
        if limits != self._limits:
            self._limits = limits
            self.kick()

    # -- passes -------------------------------------------------------------------------

    async def run(self) -> None:
        """Passes while this replica leads; each term starts with no grants of its own."""
        self._grants.clear()
        try:
            await self._synced.wait()
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
                try:
                    self.pass_once()
                except Exception as err:
                    log.warning("admission pass failed: %s", err)
                    await asyncio.sleep(1.0)
        finally:
            self._grants.clear()
            self._synced.clear()

    def pass_once(self) -> list[ObjectKey]:
        """Admit what fits now; returns the keys admitted (most urgent first)."""
        self.passes += 1
        for uid in self._grants:
            phase = self.cache.phase(uid)
            if phase is None or not phase.is_waiting:
                self._grants.release(uid)  # started (its phase holds it now), or gone
        limits = self._limits
        total = self.cache.holding_total + len(self._grants)
        admitted: list[ObjectKey] = []
        while total < limits.global_limit:
            best: WaitingJob | None = None
            for job_type in self.cache.waiting_types():
                used = self.cache.holding(job_type) + self._grants.of_type(job_type)
                if used >= limits.for_type(job_type):
                    continue  # held back by its own type only: blocks nobody
                head = self.cache.first_waiting(job_type, self._grants)
                if head is not None and (best is None or head.sort_key < best.sort_key):
                    best = head
            if best is None:
                break
            self._grants.assume(best.uid, best.key, best.job_type)
            admitted.append(best.key)
            total += 1
        arrivals, self._arrivals = self._arrivals, {}
        for key in dict.fromkeys([*admitted, *arrivals]):  # admitted first, each once
            self.enqueue(key)
        self.admitted += len(admitted)
        return admitted
