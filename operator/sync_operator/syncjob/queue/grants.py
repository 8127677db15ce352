"""Admission grants, as Kueue assumes workloads: a job the admitter let start counts
against the limits until the API server shows it out of Queued, so capacity is never
double-counted while the reconciler catches up or after a lag.

The admitter is the only writer (`Grants`); the reconciler reads through
`AdmissionView`, so nothing else can grant, revoke or reword a place in the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sync_operator.kube.keys import ObjectKey


class AdmissionView(Protocol):
    """What the reconciler may ask of the queue."""

    def granted(self, uid: str) -> bool: ...

    def message(self, uid: str) -> str | None: ...


class Grants:
    """The grants this leader assumed and the wait message of each queued job."""

    def __init__(self) -> None:
        self._granted: dict[str, ObjectKey] = {}
        self._waiting: dict[str, str] = {}

    def granted(self, uid: str) -> bool:
        return uid in self._granted

    def message(self, uid: str) -> str | None:
        return self._waiting.get(uid)

    @property
    def granted_count(self) -> int:
        return len(self._granted)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def assume(self, uid: str, key: ObjectKey) -> None:
        """Admit `uid`: it holds capacity from now until `settle`."""
        self._granted[uid] = key
        self._waiting.pop(uid, None)

    def settle(self, still_queued: Iterable[str]) -> None:
        """Keep only the grants whose job the API server still shows Queued: the others
        started (their phase now holds the capacity) or are gone."""
        keep = set(still_queued)
        for uid in [u for u in self._granted if u not in keep]:
            del self._granted[uid]

    def wait(self, uid: str, message: str) -> bool:
        """Record why `uid` waits; True when that changed (the job should show it)."""
        if self._waiting.get(uid) == message:
            return False
        self._waiting[uid] = message
        return True

    def forget_missing(self, present: Iterable[str]) -> None:
        """Drop wait messages of jobs that no longer exist."""
        keep = set(present)
        for uid in [u for u in self._waiting if u not in keep]:
            del self._waiting[uid]

    def clear(self) -> None:
        """A new term of leadership: what an earlier leader granted is not ours to count."""
        self._granted.clear()
        self._waiting.clear()
