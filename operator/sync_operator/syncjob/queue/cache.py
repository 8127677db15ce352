"""What admission knows of every SyncJob, kept from the watch (Kueue's cache).

Every watch event goes through `observe`, so an admission pass reads memory: who
holds capacity (per type and in all) and, per type, who waits in queue order. A job
holds capacity while its phase may own a pod, and also while its batch Job still
has pods running or terminating (`observe_pods`): a slot is free only once the pods
are gone, so a type's limit is never exceeded while a pod shuts down. A pass
then costs work in proportion to what it admits, not to the number of SyncJobs, and a
finished job costs nothing: it keeps only its phase, for the jobs-by-phase gauge.

Events can arrive out of order with a LIST taken at a new leader's start, so each
object's resourceVersion is kept and an older view of it is ignored; a deleted
object's last version stays as a tombstone for the same reason.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sync_operator.api.common import Phase
from sync_operator.kube.keys import ObjectKey
from sync_operator.syncjob.queue.plan import candidate_from_body, waits_for_admission

SortKey = tuple[int, datetime, str]


@dataclass(frozen=True)
class WaitingJob:
    """A Pending or Queued SyncJob that may be admitted (not paused, cancelled or
    deleting). A Pending one granted at once goes straight to Running in its first
    reconcile: one status write instead of two when there is room."""

    uid: str
    key: ObjectKey
    job_type: str
    sort_key: SortKey


@dataclass(frozen=True)
class _Seen:
    phase: Phase
    job_type: str
    holds: bool
    waiting: WaitingJob | None


class JobCache:
    def __init__(self) -> None:
        self._version: dict[str, int] = {}
        self._seen: dict[str, _Seen] = {}
        self._phases: Counter[Phase] = Counter()
        self._holding: Counter[str] = Counter()
        self._waiting: dict[str, WaitingJob] = {}
        self._waiting_by_type: Counter[str] = Counter()
        # Per type, a heap of (sort key, uid); entries whose job moved on are stale and
        # dropped when they reach the top.
        self._heaps: dict[str, list[tuple[SortKey, str]]] = {}
        self._pods: dict[str, int] = {}  # SyncJob uid -> its Job's active + terminating
        # Deleted SyncJobs whose pods still shut down: they hold their slot till gone.
        self._orphans: dict[str, str] = {}

    # -- feeding ------------------------------------------------------------------------

    def observe(self, body: Mapping[str, Any]) -> bool:
        """Take in an object as a watch event or a LIST shows it; True when what admission
        counts (capacity held, or the waiting set and its order) changed."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid or self._stale(uid, meta.get("resourceVersion")):
            return False
        phase = Phase.of(body)
        spec = body.get("spec") or {}
        job_type = str(spec.get("jobType", ""))
        waiting = None
        if waits_for_admission(phase, paused=bool(spec.get("paused")),
                               cancel=bool(spec.get("cancel")),
                               deleting=bool(meta.get("deletionTimestamp")),
                               dedup_key=bool(spec.get("dedupKey"))):
            candidate = candidate_from_body(body)
            waiting = WaitingJob(uid, ObjectKey.of(body), job_type, candidate.sort_key)
        holds = phase.holds_pod or self._pods.get(uid, 0) > 0
        return self._replace(uid, _Seen(phase, job_type, holds, waiting))

    def observe_pods(self, owner_uid: str, pods: int) -> bool:
        """The batch Job of SyncJob `owner_uid` has `pods` running or terminating (0 when
        the Job is gone); True when that changed what the job holds."""
        had = self._pods.get(owner_uid, 0) > 0
        if pods > 0:
            self._pods[owner_uid] = pods
        else:
            self._pods.pop(owner_uid, None)
        if pods == 0 and owner_uid in self._orphans:
            self._holding[self._orphans.pop(owner_uid)] -= 1
            return True
        seen = self._seen.get(owner_uid)
        if seen is None or had == (pods > 0):
            return False
        return self._replace(owner_uid, replace(seen, holds=seen.phase.holds_pod or pods > 0))

    def forget(self, body: Mapping[str, Any]) -> bool:
        """The object was deleted: it holds and waits for nothing any more."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid or self._stale(uid, meta.get("resourceVersion")):
            return False
        seen = self._seen.get(uid)
        changed = self._replace(uid, None)
        if seen is not None and self._pods.get(uid, 0) > 0:
            self._orphans[uid] = seen.job_type
            self._holding[seen.job_type] += 1
            return seen.holds is False
        return changed

    def replace(self, items: Iterable[Mapping[str, Any]], version: str | None = None) -> bool:
        """Take in a full LIST taken at resourceVersion `version`: observe each item, and
        forget what it no longer holds (a deletion the watch missed), but only objects
        the cache last saw at or before that version (one created while the LIST was
        on its way is news, not a deletion). True when what admission counts changed.
        The items are read once, one at a time (they may be made as they are read)."""
        try:
            as_of = int(str(version))
        except ValueError:
            as_of = None
        changed = False
        listed: set[str] = set()
        for item in items:
            listed.add(str((item.get("metadata") or {}).get("uid") or ""))
            changed |= self.observe(item)
        for uid in [u for u in self._seen if u not in listed]:
            if as_of is None or self._version.get(uid, -1) <= as_of:
                changed |= self._replace(uid, None)
        if as_of is not None:  # tombstones older than the LIST have done their work
            for uid in [u for u, v in self._version.items()
                        if u not in self._seen and v <= as_of]:
                del self._version[uid]
        return changed

    def replace_pods(self, counts: Mapping[str, int]) -> bool:
        """Take in a full LIST of our batch Jobs (owner uid -> pods): a Job missing from it
        has no pods any more."""
        changed = False
        for uid in [u for u in self._pods if u not in counts]:
            changed |= self.observe_pods(uid, 0)
        for uid, pods in counts.items():
            changed |= self.observe_pods(uid, pods)
        return changed

    def _stale(self, uid: str, version: object) -> bool:
        try:
            number = int(str(version))
        except ValueError:
            return False  # no usable version: take it as news
        if number < self._version.get(uid, -1):
            return True
        self._version[uid] = number
        return False

    def _replace(self, uid: str, new: _Seen | None) -> bool:
        old = self._seen.pop(uid, None)
        if old is not None:
            self._phases[old.phase] -= 1
            if old.holds:
                self._holding[old.job_type] -= 1
            if old.waiting is not None:
                del self._waiting[uid]
                self._waiting_by_type[old.job_type] -= 1
        if new is not None:
            self._seen[uid] = new
            self._phases[new.phase] += 1
            if new.holds:
                self._holding[new.job_type] += 1
            if new.waiting is not None:
                self._waiting[uid] = new.waiting
                self._waiting_by_type[new.job_type] += 1
                if old is None or old.waiting != new.waiting:
                    self._push(new.waiting)
        # Leaving Pending/Queued counts too: it releases the job's grant, if it had one.
        before = (old.holds, old.waiting, old.phase.is_waiting) if old else (False, None, False)
        after = (new.holds, new.waiting, new.phase.is_waiting) if new else (False, None, False)
        return before != after

    def _push(self, job: WaitingJob) -> None:
        heap = self._heaps.setdefault(job.job_type, [])
        heapq.heappush(heap, (job.sort_key, job.uid))
        if len(heap) > 64 and len(heap) > 2 * self.waiting_of_type(job.job_type):
            # Mostly stale entries: rebuild from the live ones.
            live = [(w.sort_key, w.uid) for w in self._waiting.values()
                    if w.job_type == job.job_type]
            heapq.heapify(live)
            self._heaps[job.job_type] = live

    # -- reading ------------------------------------------------------------------------

    def phase(self, uid: str) -> Phase | None:
        seen = self._seen.get(uid)
        return seen.phase if seen else None

    def job_type(self, uid: str) -> str | None:
        seen = self._seen.get(uid)
        return seen.job_type if seen else None

    def is_waiting(self, uid: str) -> bool:
        """Whether the job may be admitted now (waiting, not held by pause or dedup)."""
        return uid in self._waiting

    def holding(self, job_type: str) -> int:
        return self._holding[job_type]

    @property
    def holding_total(self) -> int:
        return sum(self._holding.values())

    def waiting_of_type(self, job_type: str) -> int:
        return self._waiting_by_type[job_type]

    @property
    def waiting_total(self) -> int:
        return len(self._waiting)

    def waiting_types(self) -> list[str]:
        return [t for t, count in self._waiting_by_type.items() if count > 0]

    def phase_counts(self) -> dict[str, int]:
        return {phase.value: self._phases[phase] for phase in Phase}

    def first_waiting(self, job_type: str, skip: Container[str]) -> WaitingJob | None:
        """The most urgent waiting job of a type, passing over the uids in `skip` (jobs
        already granted that the watch still shows Queued)."""
        heap = self._heaps.get(job_type)
        if not heap:
            return None
        passed: list[tuple[SortKey, str]] = []
        found = None
        while heap:
            key, uid = heap[0]
            live = self._waiting.get(uid)
            if live is None or live.sort_key != key:
                heapq.heappop(heap)  # stale: the job moved on or changed priority
                continue
            if uid in skip:
                passed.append(heapq.heappop(heap))
                continue
            found = live
            break
        for entry in passed:
            heapq.heappush(heap, entry)
        return found
