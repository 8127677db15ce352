"""Connects the reconcilers to the PostgreSQL mirror, and drains the status outbox
once the mirror has stored its entries.

The outbox lives in each object's status.mirror.pending; the writer reports the
highest seq it stored, and `drain` removes those entries with a resourceVersion
precondition, so an entry appended meanwhile is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.audit.outbox import drained
from sync_operator.kube import ApiError, KubeClient, Resource
from sync_operator.kube.bodies import RawBody
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.mirror.store import MirrorStore
from sync_operator.mirror.writer import MirrorKey, MirrorWriter

log = logging.getLogger(__name__)


class Mirror(Protocol):
    """What the reconciler needs of the PostgreSQL mirror."""

    def notify(self, body: Mapping[str, Any]) -> None: ...

    async def record_deletion(self, body: RawBody, performed_by: str) -> None: ...


class MirrorLink:
    """The reconcilers' `Mirror`: forwards bodies to the writer, drains applied entries."""

    def __init__(self, *, client: KubeClient, store: MirrorStore,
                 own_writes: OwnWrites) -> None:
        self.client = client
        self.own_writes = own_writes
        self.writer = MirrorWriter(store=store, on_applied=self.drain)
        self._where: dict[str, tuple[Resource, str, str]] = {}

    def notify(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        resource = SYNCSCHEDULES if body.get("kind") == "SyncSchedule" else SYNCJOBS
        self._where[meta["uid"]] = (resource, meta["namespace"], meta["name"])
        self.writer.notify(body)

    async def record_deletion(self, body: RawBody, performed_by: str) -> None:
        await self.writer.record_deletion(body, performed_by)
        self._where.pop(body["metadata"]["uid"], None)

    async def drain(self, key: MirrorKey, seq: int) -> None:
        """Remove the stored entries (seq <= `seq`) from the object's outbox."""
        where = self._where.get(key.uid)
        if where is None:
            return
        resource, namespace, name = where
        for _ in range(5):
            body = await self.client.get_or_none(resource, name, namespace)
            if body is None or body["metadata"]["uid"] != key.uid:
                return
            mirror = (body.get("status") or {}).get("mirror") or {}
            if not any(int(e.get("seq", 0)) <= seq for e in mirror.get("pending") or []):
                return
            try:
                written = await self.client.patch(
                    resource, name,
                    {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                     "status": {"mirror": drained(mirror, seq)}},
                    namespace, subresource="status")
                self.own_writes.record(written)
                return
            except ApiError as err:
                if not err.conflict:
                    raise
        log.warning("outbox of %s/%s not drained after conflicts; will retry", namespace, name)
