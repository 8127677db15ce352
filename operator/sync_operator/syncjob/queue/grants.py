"""Admission grants, as Kueue assumes workloads: a job the admitter let start counts
against the limits until the watch shows it out of Queued, so capacity is never
double-counted while the reconciler catches up, during a watch lag, or after a restart.

The admitter is the only writer (`Grants`); the reconciler reads through
`AdmissionView`, so nothing else can grant or revoke a place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from sync_operator.kube.keys import ObjectKey


class AdmissionView(Protocol):
    """What the reconciler may ask of the queue."""

    def granted(self, uid: str) -> bool: ...


class Grants:
    """The grants this leader assumed, by uid, with each job's key and type."""

    def __init__(self) -> None:
        self._granted: dict[str, tuple[ObjectKey, str]] = {}
        self._by_type: Counter[str] = Counter()

    def granted(self, uid: str) -> bool:
        return uid in self._granted

    def __contains__(self, uid: object) -> bool:
        return uid in self._granted

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._granted))

    def __len__(self) -> int:
        return len(self._granted)

    def of_type(self, job_type: str) -> int:
        return self._by_type[job_type]

    def assume(self, uid: str, key: ObjectKey, job_type: str) -> None:
        """Admit `uid`: it holds capacity from now until `release`."""
        if uid not in self._granted:
            self._granted[uid] = (key, job_type)
            self._by_type[job_type] += 1

    def release(self, uid: str) -> None:
        """The job left Queued (its phase now holds the capacity) or is gone."""
        entry = self._granted.pop(uid, None)
        if entry is not None:
            self._by_type[entry[1]] -= 1

    def clear(self) -> None:
        """A new term of leadership: what an earlier leader granted is not ours to count."""
        self._granted.clear()
        self._by_type.clear()
