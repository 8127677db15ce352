"""What each table row, detail line and watch line says: pure functions of an object, `now`
and, for a waiting job, its queue spot (computed on read by queueview.py).

Everything a user reads about a SyncJob or SyncSchedule is decided here, so it is
unit-tested without a cluster; tables.py only lays these strings out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync_operator.api import Condition, ConditionType, Phase, SyncJob, SyncSchedule
from sync_operator.cli.humanize import NONE, age, eta_text, relative, timestamp
from sync_operator.cli.progressbar import counts, eta_left, percent_of, progress_cell
from sync_operator.cli.queueview import QueueSpot
from sync_operator.kube.events import EventView

JOB_HEADERS = ("NAME", "TYPE", "PHASE", "PROGRESS", "PRIORITY", "AGE")
JOB_WIDE_HEADERS = ("ETA", "ATTEMPTS", "JOB", "MESSAGE")
SCHEDULE_HEADERS = ("NAME", "TYPE", "SCHEDULE", "TZ", "SUSPEND", "NEXT", "LAST", "ACTIVE")
SCHEDULE_WIDE_HEADERS = ("PRIORITY", "POLICY", "MAX", "LAST SUCCESS", "AGE")
CONDITION_HEADERS = ("TYPE", "STATUS", "REASON", "MESSAGE", "AGE")
LIVE_HEADERS = ("NAME", "TYPE", "PHASE", "PROGRESS", "ETA", "PRIORITY", "AGE", "MESSAGE")


def phase_of(job: SyncJob) -> Phase:
    """A job the operator has not seen yet has no phase: it is Pending."""
    return job.status.phase or Phase.PENDING


def condition(conditions: Iterable[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or () if c.type == type_), None)


def deleting(job: SyncJob) -> bool:
    return bool(job.metadata.get("deletionTimestamp"))


def phase_text(job: SyncJob, spot: QueueSpot | None = None) -> str:
    """``Queued #2`` for a waiting job (its `spot`, computed on read by queueview),
    ``Running (deleting)`` while a delete is pending."""
    text = str(phase_of(job))
    if spot is not None:
        text += f" #{spot.position}"
    if deleting(job):
        text += " (deleting)"
    return text


def eta_cell(job: SyncJob, now: datetime) -> str:
    """The ETA only means something while the runner is working."""
    if phase_of(job) != Phase.RUNNING:
        return ""
    left = eta_left(job.status.progress, now)
    return "" if left is None else eta_text(left)


def job_message(job: SyncJob, spot: QueueSpot | None = None) -> str:
    """The one line that best says what is going on: error, queue spot, pause, progress."""
    status = job.status
    if status.error:
        return status.error.splitlines()[0]
    if status.duplicate_of:
        return f"duplicate of {status.duplicate_of}"
    if spot is not None:
        return spot.why
    phase = phase_of(job)
    if phase in (Phase.PAUSED, Phase.PAUSING):
        paused = condition(status.conditions, ConditionType.PAUSED)
        if paused is not None and paused.message:
            return paused.message
    if status.progress is not None and status.progress.message:
        return status.progress.message
    return ""


@dataclass(frozen=True)
class JobRow:
    """One SyncJob as a table row; every cell already a string."""

    namespace: str
    name: str
    job_type: str
    phase: Phase
    phase_text: str
    progress: str
    priority: str
    age: str
    eta: str
    attempts: str
    job_ref: str
    message: str

    def cells(self, *, wide: bool = False, namespace: bool = False) -> list[str]:
        out = [self.name, self.job_type, self.phase_text, self.progress, self.priority,
               self.age]
        if wide:
            out += [self.eta, self.attempts, self.job_ref, self.message]
        return [self.namespace, *out] if namespace else out

    def live_cells(self, *, namespace: bool = False) -> list[str]:
        """The live watch table: the ETA next to the bar, and what is going on."""
        out = [self.name, self.job_type, self.phase_text, self.progress, self.eta,
               self.priority, self.age, self.message]
        return [self.namespace, *out] if namespace else out


def live_headers(*, namespace: bool = False) -> list[str]:
    return ["NAMESPACE", *LIVE_HEADERS] if namespace else list(LIVE_HEADERS)


def job_headers(*, wide: bool = False, namespace: bool = False) -> list[str]:
    out = list(JOB_HEADERS) + (list(JOB_WIDE_HEADERS) if wide else [])
    return ["NAMESPACE", *out] if namespace else out


def job_row(job: SyncJob, now: datetime, *, bar_width: int = 10,
            spot: QueueSpot | None = None) -> JobRow:
    meta, status = job.metadata, job.status
    return JobRow(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        job_type=str(job.spec.job_type),
        phase=phase_of(job),
        phase_text=phase_text(job, spot),
        progress=progress_cell(status.progress, bar_width),
        priority=str(job.spec.priority),
        age=age(meta.get("creationTimestamp"), now),
        eta=eta_cell(job, now),
        attempts=str(status.attempts or 0),
        job_ref=status.job_ref or NONE,
        message=job_message(job, spot),
    )


def sort_key(job: SyncJob) -> tuple[str, str]:
    """kubectl's order: namespace, then name."""
    return (str(job.metadata.get("namespace", "")), str(job.metadata.get("name", "")))


def phase_summary(jobs: Iterable[SyncJob]) -> str:
    """``2 Running · 1 Queued · 3 Succeeded`` in life-cycle order, for a live view's caption."""
    seen = Counter(phase_of(job) for job in jobs)
    return " · ".join(f"{seen[phase]} {phase}" for phase in Phase if seen[phase])


# -- watch lines ------------------------------------------------------------------------


def watch_signature(job: SyncJob, spot: QueueSpot | None = None) -> tuple[Any, ...]:
    """What must change for a plain watch to print a new line (not ages or ETAs alone)."""
    progress = job.status.progress
    return (phase_text(job, spot), percent_of(progress), progress and progress.done,
            progress and progress.total, job_message(job, spot), job.spec.priority)


def watch_line(job: SyncJob, now: datetime, *, namespace: bool = False,
               spot: QueueSpot | None = None) -> str:
    """``q1  Running  40%  4/10 items  ETA 6s  syncing surah 4``: one change, one line."""
    name = str(job.metadata.get("name", ""))
    if namespace:
        name = f"{job.metadata.get('namespace', '')}/{name}"
    percent = percent_of(job.status.progress)
    eta = eta_cell(job, now)
    parts = [name, phase_text(job, spot), "-" if percent is None else f"{percent}%",
             counts(job.status.progress), f"ETA {eta}" if eta else "", job_message(job, spot)]
    return "  ".join(part for part in parts if part)


# -- get (details) ------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def job_details(job: SyncJob, now: datetime, *, wide: bool = False,
                spot: QueueSpot | None = None) -> list[tuple[str, str]]:
    """``kubectl sync get NAME``: label/value lines, in the order one reads a job's story
    (`spot`: where it waits, computed on read from its namespace)."""
    meta, spec, status = job.metadata, job.spec, job.status
    rows: list[tuple[str, str]] = [
        ("Name", str(meta.get("name", ""))),
        ("Namespace", str(meta.get("namespace", ""))),
        ("Type", str(spec.job_type)),
        ("Priority", str(spec.priority)),
        ("Paused", "yes" if spec.paused else "no"),
        ("Cancel", "requested" if spec.cancel else "no"),
        ("Params", _compact(spec.params)),
    ]
    if spec.dedup_key:
        rows.append(("Dedup key", spec.dedup_key))
    rows.append(("Timeout", f"{spec.timeout_minutes}m" if spec.timeout_minutes else NONE))
    rows.append(("Retry attempts", str(spec.retry_attempts)))
    if spec.schedule_ref:
        rows.append(("Schedule", spec.schedule_ref))

    rows.append(("Phase", phase_text(job, spot)))
    if spot is not None:
        rows.append(("Waiting", spot.why))
    progress = status.progress
    percent = percent_of(progress)
    if percent is not None or (progress is not None and progress.done is not None):
        text = progress_cell(progress, 20)
        if counts(progress):
            text += f"  ({counts(progress)})"
        rows.append(("Progress", text))
        eta = eta_cell(job, now)
        if eta:
            rows.append(("ETA", eta))
        if progress is not None and progress.message:
            rows.append(("Progress message", progress.message))
        if progress is not None and progress.updated_at is not None:
            rows.append(("Progress updated", timestamp(progress.updated_at, now)))
    else:
        rows.append(("Progress", NONE))

    rows.append(("Created", timestamp(meta.get("creationTimestamp"), now)))
    for label, value in (("Started", status.started_at), ("Paused at", status.paused_at),
                         ("Cancelled at", status.cancelled_at),
                         ("Completed", status.completed_at)):
        if value is not None:
            rows.append((label, timestamp(value, now)))
    if deleting(job):
        rows.append(("Deleting since", timestamp(meta.get("deletionTimestamp"), now)))
    rows.append(("Attempts", str(status.attempts or 0)))
    rows.append(("Job", status.job_ref or NONE))
    if status.checkpoint is not None and (status.checkpoint.done is not None
                                          or status.checkpoint.saved_at is not None):
        done = "?" if status.checkpoint.done is None else str(status.checkpoint.done)
        saved = relative(status.checkpoint.saved_at, now)
        rows.append(("Checkpoint", f"{done} done, saved {saved}"))
    else:
        rows.append(("Checkpoint", NONE))
    if status.duplicate_of:
        rows.append(("Duplicate of", status.duplicate_of))
    rows.append(("Error", status.error or NONE))
    if wide:
        if status.run_seconds is not None:
            rows.append(("Run time", eta_text(status.run_seconds)))
        if status.warnings:
            rows.append(("Warnings", str(status.warnings)))
        if status.result is not None:
            rows.append(("Result", _compact(status.result)))
        if status.mirror is not None:
            rows.append(("Audit outbox", f"{len(status.mirror.pending)} pending"))
        rows.append(("Generation", f"{meta.get('generation', '?')} "
                                   f"(observed {status.observed_generation or '-'})"))
        rows.append(("UID", str(meta.get("uid", ""))))
    return rows


def condition_rows(conditions: Iterable[Condition] | None, now: datetime) -> list[list[str]]:
    """The conditions table of ``get``: type, status, reason, message, age of the transition."""
    return [[c.type, str(c.status), c.reason, c.message, age(c.last_transition_time, now)]
            for c in conditions or ()]


EVENT_HEADERS = ["TYPE", "REASON", "AGE", "FROM", "OBJECT", "MESSAGE"]


def event_rows(events: Iterable[EventView], now: datetime) -> list[list[str]]:
    """The Events table of ``describe``, newest first (a repeated Event shows its count)."""
    return [[e.type, e.reason, age(e.last_seen, now) + (f" (x{e.count})" if e.count > 1 else ""),
             e.source, e.object, e.message] for e in events]


# -- schedules ----------------------------------------------------------------------------


def schedule_row(schedule: SyncSchedule, now: datetime, *, wide: bool = False,
                 namespace: bool = False) -> list[str]:
    """NAME TYPE SCHEDULE TZ SUSPEND NEXT LAST ACTIVE (+ wide columns)."""
    meta, spec, status = schedule.metadata, schedule.spec, schedule.status
    active = status.active_count if status.active_count is not None else len(status.active or [])
    out = [str(meta.get("name", "")), str(spec.job_type), spec.schedule, spec.time_zone,
           "True" if spec.suspend else "False",
           NONE if spec.suspend else relative(status.next_schedule_time, now),
           relative(status.last_schedule_time, now), str(active)]
    if wide:
        out += [str(spec.priority), str(spec.concurrency_policy), str(spec.max_concurrency),
                relative(status.last_successful_time, now),
                age(meta.get("creationTimestamp"), now)]
    return [str(meta.get("namespace", "")), *out] if namespace else out


def schedule_headers(*, wide: bool = False, namespace: bool = False) -> list[str]:
    out = list(SCHEDULE_HEADERS) + (list(SCHEDULE_WIDE_HEADERS) if wide else [])
    return ["NAMESPACE", *out] if namespace else out
