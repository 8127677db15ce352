"""The state a watch keeps: which jobs it follows, what changed, and when it is over.

Pure (events in, changes out) so the end condition is tested without a cluster. The
``jobs`` mapping and the ``queue`` view are replaced, never mutated, so a display thread
may read them any time.

Queue positions are computed on read (queueview.py) among every job in the watched scope,
so a watch of a few names still follows the whole namespace (``scope``), and a job whose
place in line moved is reported as changed although its own object did not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync_operator.api import SyncJob
from sync_operator.cli import queueview
from sync_operator.cli.objects import UnreadableObjectError, parse_job
from sync_operator.cli.output import warn
from sync_operator.cli.rows import phase_of
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.stream import RESET, Event


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
    jobs: Mapping[ObjectKey, SyncJob] = field(default_factory=dict)  # the watched ones
    scope: Mapping[ObjectKey, SyncJob] = field(default_factory=dict)  # all, for the queue
    queue: queueview.QueueView = queueview.EMPTY
    deleted: frozenset[ObjectKey] = frozenset()
    synced: bool = False

    def wanted(self, key: ObjectKey) -> bool:
        return not self.names or key[1] in self.names

    def apply(self, event: Event) -> list[Change]:
        """Fold one stream event in; return what changed (a job itself, or its place in
        line), in name order."""
        if event.type == RESET:
            everything = {}
            for body in event.objects:
                key = key_of(body)
                if (job := _parse(body, quiet=not self.wanted(key))) is not None:
                    everything[key] = job
            fresh = {key: job for key, job in everything.items() if self.wanted(key)}
            gone = [Change(key, None) for key in sorted(set(self.jobs) - set(fresh))]
            self.scope = everything
            self._requeue()
            self.jobs, self.synced = fresh, True
            self.deleted |= {change.key for change in gone}
            return gone + [Change(key, fresh[key]) for key in sorted(fresh)]
        changes: list[Change] = []
        requeue = False
        for body in event.objects:
            key = key_of(body)
            before = self.scope.get(key)
            if event.type == "DELETED":
                after = None
                self.scope = {k: v for k, v in self.scope.items() if k != key}
            elif (after := _parse(body, quiet=not self.wanted(key))) is not None:
                self.scope = {**self.scope, key: after}
            else:
                continue
            requeue |= queueview.queue_fields(before) != queueview.queue_fields(after)
            if not self.wanted(key):
                continue
            if after is None:
                self.jobs = {k: v for k, v in self.jobs.items() if k != key}
                self.deleted |= {key}
            else:
                self.jobs = {**self.jobs, key: after}
            changes.append(Change(key, after))
        if requeue:
            reported = {change.key for change in changes}
            changes += [Change(key, self.jobs[key]) for key in self._requeue()
                        if key in self.jobs and key not in reported]
        return changes

    def _requeue(self) -> list[ObjectKey]:
        """Recompute every place in line; the keys whose spot moved, in name order."""
        old, new = self.queue, queueview.queue_view(self.scope.values())
        self.queue = new
        return sorted(key for key in set(old.spots) | set(new.spots)
                      if old.get(key) != new.get(key))

    def spot(self, job: SyncJob) -> queueview.QueueSpot | None:
        return self.queue.of(job)

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


def _parse(body: Mapping[str, Any], *, quiet: bool = False) -> SyncJob | None:
    """An unreadable job is skipped, with a warning if it is one the user watches."""
    try:
        return parse_job(body)
    except UnreadableObjectError as err:
        if not quiet:
            warn(str(err))
        return None
