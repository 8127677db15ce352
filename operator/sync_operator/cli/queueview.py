"""Where each waiting SyncJob stands in the queue, and why it waits, computed on read.

The operator writes a queued job's status once (Admitted=False, reason Queued, "waiting
for capacity") and never rewrites it as the queue moves, so admitting the head of a queue
of N costs O(1) writes, not O(N). ``kubectl sync`` works the positions out itself from the
jobs it lists or watches, in the operator's own order (``Candidate.sort_key``: priority,
creation time, uid), and counts what holds capacity (``Phase.holds_pod``) to say why.

Positions are among the jobs the CLI sees: one namespace, or every namespace with -A.
The operator admits per its own scope and limits, so "#1" means "first of these", not a
promise to start next. Pure functions of a set of jobs; no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync_operator.api import Phase, SyncJob
from sync_operator.kube.keys import ObjectKey
from sync_operator.syncjob.queue.plan import Candidate, candidate_from_body, waits_for_admission

# A separator that reads well in a table cell and a detail line alike.
SEP = " · "


def key_of(job: SyncJob) -> ObjectKey:
    return ObjectKey(str(job.metadata.get("namespace", "")), str(job.metadata.get("name", "")))


def _phase(job: SyncJob) -> Phase:
    return job.status.phase or Phase.PENDING


def is_waiting(job: SyncJob) -> bool:
    """In line for a slot, by the admitter's own definition (plan.waits_for_admission)."""
    return waits_for_admission(_phase(job), paused=job.spec.paused, cancel=job.spec.cancel,
                               deleting=bool(job.metadata.get("deletionTimestamp")),
                               dedup_key=bool(job.spec.dedup_key))


def holds_capacity(job: SyncJob) -> bool:
    """A pod may exist for it, so it counts against the limits (Running, Pausing, Cancelling)."""
    return _phase(job).holds_pod


def queue_fields(job: SyncJob | None) -> tuple[Any, ...] | None:
    """Everything about a job that can move a queue position or a count, None if it neither
    waits nor holds capacity: a watch recomputes the queue only when this changed, so
    progress reports (most events) cost nothing here."""
    if job is None:
        return None
    waiting, holding = is_waiting(job), holds_capacity(job)
    if not (waiting or holding):
        return None
    return (waiting, holding, str(job.spec.job_type), job.spec.priority,
            job.metadata.get("creationTimestamp"), job.metadata.get("uid"))


def candidate(job: SyncJob) -> Candidate:
    """The operator's view of a waiting job, so the order here is the admitter's order."""
    return candidate_from_body({
        # The API server always sets a uid; a body without one (a test) still sorts.
        "metadata": {"uid": "", **job.metadata},
        "spec": {"jobType": str(job.spec.job_type), "priority": job.spec.priority},
    })


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 111th."""
    teens = 11 <= n % 100 <= 13
    return f"{n}{'th' if teens else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@dataclass(frozen=True)
class QueueSpot:
    """A waiting job's place in line, and what holds capacity as the CLI sees it."""

    job_type: str
    position: int  # 1 = first in line among every waiting job seen
    position_in_type: int  # 1 = first in line among waiting jobs of its type
    holding_type: int  # jobs of its type holding capacity now
    holding_total: int  # jobs of any type holding capacity now

    @property
    def why(self) -> str:
        """``#3 in line (2nd of its type) · 1 quran running · 4 running in all``."""
        line = f"#{self.position} in line ({ordinal(self.position_in_type)} of its type)"
        if not self.holding_total:
            return f"{line}{SEP}nothing running"
        of_type = (f"{self.holding_type} {self.job_type} running" if self.holding_type
                   else f"no {self.job_type} running")
        return f"{line}{SEP}{of_type}{SEP}{self.holding_total} running in all"


@dataclass(frozen=True)
class QueueView:
    """Every waiting job's spot, by key; a job not waiting has none."""

    spots: Mapping[ObjectKey, QueueSpot]

    def of(self, job: SyncJob) -> QueueSpot | None:
        """The spot of this version of the job: none once it stopped waiting, even if the
        view was computed from an older version."""
        return self.spots.get(key_of(job)) if is_waiting(job) else None

    def get(self, key: ObjectKey) -> QueueSpot | None:
        return self.spots.get(key)

    def __len__(self) -> int:
        return len(self.spots)


EMPTY = QueueView({})


def queue_view(jobs: Iterable[SyncJob]) -> QueueView:
    """Positions of the waiting jobs among `jobs`, in the admitter's order."""
    waiting: list[tuple[Candidate, SyncJob]] = []
    holding: Counter[str] = Counter()
    for job in jobs:
        if is_waiting(job):
            waiting.append((candidate(job), job))
        elif holds_capacity(job):
            holding[str(job.spec.job_type)] += 1
    total = sum(holding.values())
    spots: dict[ObjectKey, QueueSpot] = {}
    in_type: Counter[str] = Counter()
    waiting.sort(key=lambda pair: pair[0].sort_key)
    for position, (cand, job) in enumerate(waiting, start=1):
        in_type[cand.job_type] += 1
        spots[key_of(job)] = QueueSpot(cand.job_type, position, in_type[cand.job_type],
                                       holding[cand.job_type], total)
    return QueueView(spots)


def with_job(jobs: Iterable[SyncJob], job: SyncJob) -> list[SyncJob]:
    """`jobs` with `job` in place of whatever version of it they hold (``get NAME`` reads the
    job and its namespace in two requests)."""
    key = key_of(job)
    return [*(other for other in jobs if key_of(other) != key), job]
