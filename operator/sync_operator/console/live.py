"""One watch of SyncJobs for the whole console, fanned out to every browser.

A watch per browser would cost the API server a connection and a full LIST each; the
console holds one (list-then-watch, `kube.stream.follow`), keeps the latest version of
each job, and hands each subscriber the changes in its namespace. Subscribers catch up
by resourceVersion (the SSE id a reconnecting EventSource sends as Last-Event-ID): the
jobs changed since, and the names deleted since, or the whole namespace again when
that version is older than what the console remembers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.bodies import RawBody
from sync_operator.kube.stream import RESET, follow

log = logging.getLogger(__name__)
TOMBSTONES = 10_000  # deletions remembered for catching up
QUEUE_SIZE = 10_000  # changes a slow subscriber may lag behind before it is reset


def version_of(body: RawBody | dict[str, Any]) -> int:
    try:
        return int(str((body.get("metadata") or {}).get("resourceVersion") or 0))
    except ValueError:
        return 0


def shown(body: RawBody) -> dict[str, Any]:
    """What a browser needs of a SyncJob (managedFields and stamps left out)."""
    meta = body.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in (
                "name", "namespace", "uid", "resourceVersion", "creationTimestamp",
                "labels", "deletionTimestamp", "generation") if k in meta},
            "spec": body.get("spec") or {}, "status": body.get("status") or {}}


@dataclass
class Change:
    type: str  # ADDED, MODIFIED, DELETED
    job: dict[str, Any]


@dataclass(eq=False)  # kept in a set, by identity
class Subscription:
    namespace: str
    queue: asyncio.Queue[Change | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagged: bool = False  # it fell behind: it must start from a snapshot again


class LiveJobs:
    """The latest SyncJobs, by namespace, from one watch; subscribers get changes."""

    def __init__(self, client: KubeClient, namespace: str | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self._jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self._deleted: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._forgotten_below = 0  # deletions older than this are not remembered
        self._subscribers: set[Subscription] = set()
        self.ready = asyncio.Event()
        self.version = 0

    async def run(self) -> None:
        """Follow the watch until cancelled."""
        async for event in follow(self.client, SYNCJOBS, self.namespace):
            if event.type == RESET:
                self._reset([shown(o) for o in event.objects])
                self.ready.set()
                continue
            for obj in event.objects:
                self._apply(event.type, shown(obj))

    def _reset(self, jobs: list[dict[str, Any]]) -> None:
        old = self._jobs
        self._jobs = {(j["metadata"]["namespace"], j["metadata"]["name"]): j for j in jobs}
        top = max([version_of(j) for j in jobs], default=self.version)
        self.version = max(self.version, top)
        # What vanished during a re-list is a deletion nobody saw: catching up from
        # before it needs a snapshot.
        if set(old) - set(self._jobs):
            self._forgotten_below = self.version
        for key, job in self._jobs.items():
            if old.get(key) != job:
                self._publish(Change("MODIFIED" if key in old else "ADDED", job))
        for key in set(old) - set(self._jobs):
            self._publish(Change("DELETED", old[key]))

    def _apply(self, kind: str, job: dict[str, Any]) -> None:
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        self.version = max(self.version, version_of(job))
        if kind == "DELETED":
            self._jobs.pop(key, None)
            self._deleted[key] = version_of(job)
            self._deleted.move_to_end(key)
            while len(self._deleted) > TOMBSTONES:
                _, forgotten = self._deleted.popitem(last=False)
                self._forgotten_below = max(self._forgotten_below, forgotten)
        else:
            self._jobs[key] = job
            self._deleted.pop(key, None)
        self._publish(Change(kind, job))

    def _publish(self, change: Change) -> None:
        namespace = change.job["metadata"]["namespace"]
        for sub in self._subscribers:
            if sub.namespace != namespace or sub.lagged:
                continue
            try:
                sub.queue.put_nowait(change)
            except asyncio.QueueFull:
                sub.lagged = True
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # wake it: it re-sends a snapshot

    def jobs(self, namespace: str) -> list[dict[str, Any]]:
        return sorted((j for (ns, _), j in self._jobs.items() if ns == namespace),
                      key=lambda j: j["metadata"]["name"])

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._jobs.get((namespace, name))

    def since(self, namespace: str, version: int) -> list[Change] | None:
        """What changed in `namespace` after `version`, or None if that is too old to
        tell (the caller sends a snapshot instead)."""
        if version < self._forgotten_below:
            return None
        changed = [Change("MODIFIED", j) for j in self.jobs(namespace) if version_of(j) > version]
        gone = [Change("DELETED", {"metadata": {"namespace": ns, "name": name,
                                                "resourceVersion": str(rv)}})
                for (ns, name), rv in self._deleted.items() if ns == namespace and rv > version]
        return changed + gone

    @contextlib.contextmanager
    def subscribe(self, namespace: str) -> Iterator[Subscription]:
        sub = Subscription(namespace)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
