"""Kubernetes Events: what a person reads in `kubectl describe syncjob`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
