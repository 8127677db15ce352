"""kopf handlers: the thin layer. They translate watch events into Runtime calls."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from sqlalchemy.exc import SQLAlchemyError

from sync_operator.api.common import SYNCJOB, SYNCSCHEDULE
from sync_operator.app.runtime import Runtime
from sync_operator.app.settings import OperatorSettings
from sync_operator.app.webhook_server import ServiceWebhookServer
from sync_operator.mirror import SchemaNotMigrated, ensure_schema

log = logging.getLogger(__name__)


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own Lease-based election decides who acts; kopf's peering stays off.
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    # kopf logs every handled event at INFO: a formatted line per event is a fifth of the
    # operator's CPU at 5,000 jobs (profiled); successes need no line.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.persistence.finalizer = "sync.jobcontrol.io/kopf"
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
