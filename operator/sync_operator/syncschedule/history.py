"""Which finished jobs of a schedule to delete, so history stays within its limits.

As CronJob's cleanupFinishedJobs: successful and failed jobs are counted separately
and the oldest beyond each limit go; jobs still active are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

SUCCEEDED_PHASES = frozenset({"Succeeded"})
# A cancelled job did not succeed; it shares the (usually short) failed history.
FAILED_PHASES = frozenset({"Failed", "Cancelled"})


class HistoryEntry(NamedTuple):
    """One job of a schedule; a plain (name, phase, completed_at) tuple works too."""

    name: str
    phase: str
    completed_at: datetime | None


def prune_history(jobs: Iterable[tuple[str, str, datetime | None]],
                  successful_limit: int | None, failed_limit: int | None) -> list[str]:
    """Names to delete, oldest first; a limit of None keeps that kind forever.

    Jobs are ordered by completion time, then name; a finished job without a
    completion time counts as newest (CronJob does the same with a missing startTime).
    """
    jobs = list(jobs)
    doomed: list[tuple[str, str, datetime | None]] = []
    for phases, limit in ((SUCCEEDED_PHASES, successful_limit), (FAILED_PHASES, failed_limit)):
        if limit is None:
            continue
        finished = sorted((job for job in jobs if job[1] in phases), key=_age_key)
        doomed.extend(finished[: max(len(finished) - max(limit, 0), 0)])
    return [name for name, _, _ in sorted(doomed, key=_age_key)]


def _age_key(job: tuple[str, str, datetime | None]) -> tuple[bool, float, str]:
    name, _, completed_at = job
    if completed_at is None:
        return (True, 0.0, name)  # after every job that has a time: newest
    return (False, completed_at.timestamp(), name)
