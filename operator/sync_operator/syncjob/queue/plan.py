"""The admission queue: which waiting SyncJobs may start now, as pure logic.

Order is (priority, creation time, uid): 1 before 10, older before newer, uid to break
ties so every replica computes the same answer. Admission is work-conserving per type:
a job held back only by its own type's limit takes nothing and blocks nobody, so a long
quran sync never keeps a prayer sync waiting. The global limit caps the sum.

This is the rule written plainly, over whole lists. The admitter applies it
incrementally over the watch-fed cache (admitter.py, cache.py) and is tested to admit
exactly what `plan_admission` does; `kubectl sync` orders its queue with `sort_key`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sync_operator.api.common import JobType, Phase
from sync_operator.kube.timestamps import as_utc, parse_time

# Per-type concurrency of the original system (DESIGN.md); a type not listed gets 1.
DEFAULT_TYPE_LIMITS: Mapping[str, int] = {
    JobType.QURAN: 1,
    JobType.PRAYER: 2,
    JobType.HADITH: 1,
    JobType.AUDIO: 1,
    JobType.FINANCE: 1,
}
DEFAULT_GLOBAL_LIMIT = 4
_FALLBACK_TYPE_LIMIT = 1


class BlockedBy(StrEnum):
    """Why a candidate is not admitted now."""

    PAUSED = "Paused"
    TYPE_LIMIT = "TypeLimit"
    GLOBAL_LIMIT = "GlobalLimit"


@dataclass(frozen=True)
class Candidate:
    """A SyncJob waiting to start."""

    uid: str
    namespace: str
    name: str
    job_type: str
    priority: int
    created: datetime
    paused: bool = False

    @property
    def sort_key(self) -> tuple[int, datetime, str]:
        return (self.priority, as_utc(self.created), self.uid)


@dataclass(frozen=True)
class ActiveJob:
    """A SyncJob holding capacity (a pod may exist for it)."""

    uid: str
    job_type: str


@dataclass(frozen=True)
class Waiting:
    """A candidate left in the queue, with why and where it stands."""

    uid: str
    blocked_by: BlockedBy
    reason: str
    position: int | None  # 1-based among queued (non-paused) candidates; None when paused
    position_in_type: int | None  # 1-based among queued candidates of its type


@dataclass(frozen=True)
class Limits:
    """Concurrency limits: per job type, and for all types together."""

    per_type: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TYPE_LIMITS))
    global_limit: int = DEFAULT_GLOBAL_LIMIT

    def for_type(self, job_type: str) -> int:
        if job_type in self.per_type:
            return self.per_type[job_type]
        return DEFAULT_TYPE_LIMITS.get(job_type, _FALLBACK_TYPE_LIMIT)


@dataclass(frozen=True)
class Plan:
    """The outcome of one admission round."""

    admit: tuple[str, ...]  # uids to start now, most urgent first
    waiting: tuple[Waiting, ...]  # everything else, in queue order

    def waiting_for(self, uid: str) -> Waiting | None:
        return next((w for w in self.waiting if w.uid == uid), None)


def plan_admission(candidates: Iterable[Candidate], active: Iterable[ActiveJob],
                   limits: Limits | None = None) -> Plan:
    """Admit candidates in queue order while their type and the global limit have room."""
    limits = limits or Limits()
    active = list(active)
    holding = {job.uid for job in active}
    used = Counter(job.job_type for job in active)
    used_total = len(active)
    admit: list[str] = []
    waiting: list[Waiting] = []
    queued = 0
    queued_by_type: Counter[str] = Counter()
    for cand in sorted(candidates, key=lambda c: c.sort_key):
        if cand.uid in holding:
            continue  # already running: it is not waiting for anything
        if cand.paused:
            waiting.append(Waiting(cand.uid, BlockedBy.PAUSED, "paused", None, None))
            continue
        type_limit = limits.for_type(cand.job_type)
        if used[cand.job_type] >= type_limit:
            blocked_by = BlockedBy.TYPE_LIMIT
            reason = (f"type {cand.job_type} at its limit "
                      f"{used[cand.job_type]}/{type_limit}")
        elif used_total >= limits.global_limit:
            blocked_by = BlockedBy.GLOBAL_LIMIT
            reason = f"global limit {used_total}/{limits.global_limit} reached"
        else:
            admit.append(cand.uid)
            used[cand.job_type] += 1
            used_total += 1
            continue
        queued += 1
        queued_by_type[cand.job_type] += 1
        waiting.append(Waiting(cand.uid, blocked_by, reason, queued,
                               queued_by_type[cand.job_type]))
    return Plan(tuple(admit), tuple(waiting))


def waits_for_admission(phase: Phase, *, paused: bool, cancel: bool, deleting: bool,
                        dedup_key: bool) -> bool:
    """Whether a SyncJob is in line for a slot now: the one definition the admitter's
    cache and `kubectl sync` share, so a position shown is the admitter's. A Pending job
    with a dedupKey is first checked for duplicates (it may end Cancelled without
    running); a paused, cancelled or deleted one waits for nothing."""
    if not phase.is_waiting or paused or cancel or deleting:
        return False
    return not (phase == Phase.PENDING and dedup_key)


def candidate_from_body(body: Mapping[str, Any]) -> Candidate:
    """A Candidate from a SyncJob object as the API server returns it."""
    meta, spec = body.get("metadata", {}), body.get("spec", {})
    return Candidate(
        uid=str(meta["uid"]),
        namespace=str(meta.get("namespace", "")),
        name=str(meta["name"]),
        job_type=str(spec["jobType"]),
        priority=int(spec.get("priority", 5)),
        created=parse_time(meta.get("creationTimestamp")) or datetime.now(UTC),
        paused=bool(spec.get("paused", False)),
    )


def holds_capacity(body: Mapping[str, Any]) -> bool:
    """Whether a SyncJob object counts against the limits (its phase may own a pod)."""
    return Phase.of(body).holds_pod


def active_from_body(body: Mapping[str, Any]) -> ActiveJob:
    """An ActiveJob from a SyncJob object as the API server returns it."""
    return ActiveJob(uid=str(body["metadata"]["uid"]), job_type=str(body["spec"]["jobType"]))
