"""kopf handlers: the thin layer. They translate watch events into Runtime calls.

They are event handlers only (no change handlers, daemons, timers or indexes), so kopf
keeps nothing between an object's events that they need, and two of its per-object
costs are cut (benchmarks/memory_per_syncjob.py, Succeeded SyncJobs): kopf's worker
per object holds that object's last event, whole (32 KB with the worker), until
`settings.queueing.idle_timeout` passes without another; at kopf's 5 s, new objects
at 250/s kept 1,100-1,250 workers alive, at `WORKER_IDLE_SECONDS` 130-180. And kopf's
record of each object (0.95 KB, kept until the object is deleted, so for every
finished job) is not kept (`EventOnlyMemories`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kopf._cogs.structs.bodies import RawBody
from kopf._cogs.structs.ephemera import AnyMemo
from kopf._core.reactor.inventory import ResourceMemories, ResourceMemory
from sqlalchemy.exc import SQLAlchemyError

from sync_operator.api.common import SYNCJOB, SYNCSCHEDULE
from sync_operator.app.runtime import Runtime
from sync_operator.app.settings import OperatorSettings
from sync_operator.app.webhook_server import ServiceWebhookServer
from sync_operator.mirror import SchemaNotMigrated, ensure_schema

log = logging.getLogger(__name__)
# A worker started again costs ~0.15 ms of CPU for that event (measured); an idle one
# holds its object's last event, whole.
WORKER_IDLE_SECONDS = 0.5


class EventOnlyMemories(ResourceMemories):
    """kopf's per-object memories, made afresh for every event and never kept. They
    hold state for handler kinds we do not use (daemons, timers, indexes, resuming), a
    copy of the memo (the handlers read only the runtime from it) and the backoff of
    kopf's own errors on the object, which now starts from its first delay each event."""

    async def recall(self, raw_body: RawBody, *, memobase: AnyMemo | None = None,
                     noticed_by_listing: bool = False, ephemeral: bool = False
                     ) -> ResourceMemory:
        return await super().recall(raw_body, memobase=memobase,
                                    noticed_by_listing=noticed_by_listing, ephemeral=True)


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings, before any watch starts."""
    # Our own Lease-based election decides who acts; kopf's peering stays off.
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    # kopf logs every handled event at INFO: a formatted line per event is a fifth of the
    # operator's CPU at 5,000 jobs (profiled); successes need no line.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    settings.persistence.finalizer = "sync.jobcontrol.io/kopf"


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    try:
        config = OperatorSettings()
    except ValueError as err:  # bad settings do not get better by retrying
        raise kopf.PermanentError(f"invalid operator settings: {err}") from err
    if config.database_url:
        # Refuse to start against an unmigrated database (or migrate, when told to);
        # an unreachable one is checked again when it returns (the mirror waits).
        try:
            revision = await asyncio.to_thread(ensure_schema, config.database_url,
                                               migrate=config.migrate)
            log.info("database schema at %s", revision)
        except SchemaNotMigrated as err:
            raise kopf.PermanentError(str(err)) from err
        except SQLAlchemyError as err:
            log.warning("PostgreSQL unreachable at start-up; the mirror catches up "
                        "when it returns: %s", err)
    if config.webhook_enabled:
        settings.admission.server = ServiceWebhookServer(
            addr=config.webhook_addr, port=config.webhook_port, host=config.webhook_host,
            certfile=config.webhook_cert_file, pkeyfile=config.webhook_key_file,
            cafile=config.webhook_ca_file, service_name=config.webhook_service_name,
            service_namespace=config.webhook_service_namespace,
            service_port=config.webhook_service_port)
        settings.admission.managed = config.webhook_configuration_name
    runtime = Runtime(config)
    memo["runtime"] = runtime
    await runtime.start()


@kopf.on.probe(id="leading")
def leading(memo: kopf.Memo, **_: Any) -> bool:
    """Shown in /healthz: whether this replica leads (a standby is healthy too)."""
    runtime: Runtime | None = memo.get("runtime")
    return bool(runtime and runtime.leading)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.stop()


@kopf.on.event(*SYNCJOB.kopf)
async def syncjob_event(body: kopf.Body, memo: kopf.Memo, type: str | None,
                        **_: Any) -> None:
    memo["runtime"].on_syncjob(dict(body), event=type)


@kopf.on.event(*SYNCSCHEDULE.kopf)
async def schedule_event(body: kopf.Body, memo: kopf.Memo, type: str | None,
                         **_: Any) -> None:
    memo["runtime"].on_schedule(dict(body), deleted=type == "DELETED")
