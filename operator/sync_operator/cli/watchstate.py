"""The state a watch keeps: which jobs it follows, what changed, and when it is over.

Pure (events in, changes out) so the end condition is tested without a cluster. The
``jobs`` mapping is replaced, never mutated, so a display thread may read it any time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync_operator.api import SyncJob
from sync_operator.cli.objects import UnreadableObjectError, parse_job
from sync_operator.cli.output import warn
from sync_operator.cli.rows import phase_of
from sync_operator.cli.stream import RESET, Event
from sync_operator.kube.keys import ObjectKey


def key_of(body: Mapping[str, Any]) -> ObjectKey:
    meta = body.get("metadata") or {}
    return ObjectKey(str(meta.get("namespace", "")), str(meta.get("name", "")))


@dataclass(frozen=True)
class Change:
    """One job changed (``job`` is None when it was deleted)."""

    key: ObjectKey
    job: SyncJob | None


@dataclass
class WatchState:
    """Jobs being watched: all in scope, or only `names` (then the watch ends with them)."""

    names: frozenset[str] = frozenset()
    follow: bool = False
    jobs: Mapping[ObjectKey, SyncJob] = field(default_factory=dict)
    deleted: frozenset[ObjectKey] = frozenset()
    synced: bool = False

    def wanted(self, key: ObjectKey) -> bool:
        return not self.names or key[1] in self.names

    def apply(self, event: Event) -> list[Change]:
        """Fold one stream event in; return what changed, in name order."""
        if event.type == RESET:
            fresh = {}
            for body in event.objects:
                if self.wanted(key_of(body)) and (job := _parse(body)) is not None:
                    fresh[key_of(body)] = job
            gone = [Change(key, None) for key in sorted(set(self.jobs) - set(fresh))]
            self.jobs, self.synced = fresh, True
            self.deleted |= {change.key for change in gone}
            return gone + [Change(key, fresh[key]) for key in sorted(fresh)]
        changes: list[Change] = []
        for body in event.objects:
            key = key_of(body)
            if not self.wanted(key):
                continue
            if event.type == "DELETED":
                self.jobs = {k: v for k, v in self.jobs.items() if k != key}
                self.deleted |= {key}
                changes.append(Change(key, None))
            elif (job := _parse(body)) is not None:
                self.jobs = {**self.jobs, key: job}
                changes.append(Change(key, job))
        return changes

    def missing(self) -> list[str]:
        """Named jobs that do not exist (checked right after the first list)."""
        present = {name for _, name in self.jobs} | {name for _, name in self.deleted}
        return sorted(self.names - present)

    def finished(self) -> bool:
        """Every watched job has reached a terminal phase (or was deleted)."""
        if not self.synced or self.follow:
            return False
        done = all(phase_of(job).is_terminal for job in self.jobs.values())
        if self.names:
            return done and not self.missing()
        return done and bool(self.jobs)


def _parse(body: Mapping[str, Any]) -> SyncJob | None:
    try:
        return parse_job(body)
    except UnreadableObjectError as err:
        warn(str(err))
        return None
