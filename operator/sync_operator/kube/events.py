"""Kubernetes Events: what a person reads in `kubectl sync describe` and the console's job
view (written by the operator, read back with the reader's own rights)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.resources import EVENTS
from sync_operator.kube.timestamps import format_micro_time, format_time

log = logging.getLogger(__name__)
COMPONENT = "sync-operator"
REASON_MAX = 128  # the API server refuses a longer reason or action
NAME_ROOM = 253 - 13  # the name's own part, before ".<12 hex>"


class EventRecorder:
    def __init__(self, *, client: KubeClient, instance: str) -> None:
        self.client = client
        self.instance = instance

    async def record(self, body: Mapping[str, Any], reason: str, message: str, *,
                     warning: bool = False) -> None:
        """Post one core/v1 Event about `body`; failures are logged, never raised."""
        meta = body["metadata"]
        moment = datetime.now(UTC)
        now, whole = format_micro_time(moment), format_time(moment)
        event = {
            "apiVersion": "v1", "kind": "Event",
            # An Event's name is a DNS subdomain (<= 253): a long object name is cut so
            # the suffix still fits, and the cut ends on a letter or digit.
            "metadata": {"name": f"{meta['name'][:NAME_ROOM].rstrip('-.')}."
                                 f"{uuid.uuid4().hex[:12]}",
                         "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                               "name": meta["name"], "namespace": meta["namespace"],
                               "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason[:REASON_MAX], "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": whole, "lastTimestamp": whole,
            "eventTime": now, "count": 1, "action": reason[:REASON_MAX],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT, "reportingInstance": self.instance,
        }
        try:
            await self.client.create(EVENTS, event, meta["namespace"])
        except ApiError as err:
            log.warning("event %s for %s/%s not recorded: %s", reason, meta["namespace"],
                        meta["name"], err)


class EventView(BaseModel):
    """One Event as `describe` and the console's job view show it."""

    type: str
    reason: str
    message: str
    count: int
    last_seen: datetime | None
    source: str
    object: str  # kind/name of what it is about


def _seen(event: Mapping[str, Any]) -> datetime | None:
    # eventTime has microseconds; lastTimestamp only seconds (older writers set only it).
    text = (event.get("eventTime") or event.get("lastTimestamp")
            or event.get("metadata", {}).get("creationTimestamp"))
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _view(event: Mapping[str, Any]) -> EventView:
    about = event.get("involvedObject") or {}
    source = event.get("reportingComponent") or (event.get("source") or {}).get("component")
    return EventView(type=event.get("type") or "Normal", reason=event.get("reason") or "",
                     message=event.get("message") or "", count=int(event.get("count") or 1),
                     last_seen=_seen(event), source=source or "",
                     object=f"{about.get('kind', '')}/{about.get('name', '')}")


async def events_about(client: KubeClient, namespace: str, uids: Iterable[str], *,
                       limit: int = 20) -> list[EventView]:
    """The newest Events about these objects (one field-selected LIST per object: field
    selectors cannot OR), newest first, read with the caller's own rights."""
    listed = await asyncio.gather(*(
        client.list(EVENTS, namespace, field_selector=f"involvedObject.uid={uid}")
        for uid in dict.fromkeys(uids) if uid))
    views = [_view(e) for page in listed for e in page.get("items") or ()]
    oldest = datetime.min.replace(tzinfo=UTC)
    views.sort(key=lambda v: v.last_seen or oldest, reverse=True)
    return views[:limit]
