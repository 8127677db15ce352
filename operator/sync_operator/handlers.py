"""kopf handlers: the thin layer. They translate watch events into Runtime calls."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from sync_operator.api.common import SYNCJOB, SYNCSCHEDULE
from sync_operator.runtime import Runtime
from sync_operator.settings import OperatorSettings

MANAGED_BY = {"app.kubernetes.io/managed-by": "sync-operator"}
log = logging.getLogger(__name__)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own Lease-based election decides who acts; kopf's peering stays off.
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.persistence.finalizer = "sync.jobcontrol.io/kopf"
    runtime = Runtime(OperatorSettings())
    memo["runtime"] = runtime
    await runtime.start()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.stop()


@kopf.on.event(*SYNCJOB.kopf)
async def syncjob_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo["runtime"].on_syncjob(dict(body))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_BY)
async def job_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo["runtime"].on_job(dict(body))


@kopf.on.event(*SYNCSCHEDULE.kopf)
async def schedule_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo["runtime"].on_schedule(dict(body))
