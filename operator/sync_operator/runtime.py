"""Wires the operator's parts together and runs them while this replica leads.

kopf watches and calls the thin handlers; they call `Runtime.on_*`, which only
enqueue keys. Workers reconcile keys; the admitter, the progress relay and the
Redis follower run beside them. Nothing here decides anything: the decisions
are in statemachine.py and admission.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from sync_runner.contract import RunnerStatus

from sync_operator.admitter import AdmissionGate, Admitter
from sync_operator.events import EventRecorder
from sync_operator.kube import KubeClient, load_connection
from sync_operator.manifests import JobSettings
from sync_operator.progress import ProgressRelay
from sync_operator.reconciler import Reconciler
from sync_operator.runner_link import RunnerLink
from sync_operator.settings import OperatorSettings
from sync_operator.statemachine import Timeouts
from sync_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
Key = tuple[str, str]


class Runtime:
    def __init__(self, settings: OperatorSettings, client: KubeClient | None = None) -> None:
        self.settings = settings
        self.identity = f"{settings.identity}@{socket.gethostname()}"
        self.client = client or KubeClient(load_connection())
        self.link = RunnerLink(settings.redis_url)
        self.queue: WorkQueue[Key] = WorkQueue()
        self.gate = AdmissionGate()
        self.recorder = EventRecorder(self.client, self.identity)
        self.relay = ProgressRelay(self.client, settings.progress_interval_seconds,
                                   self.queue.add)
        self.admitter = Admitter(
            self.client, self.gate, namespace=settings.namespace,
            global_limit=settings.global_limit, default_limits=dict(settings.type_limits),
            interval=settings.admission_interval_seconds, enqueue=self.queue.add)
        self.reconciler = Reconciler(
            self.client, self.link, self.recorder, self.gate, self.relay,
            JobSettings(image=settings.runner_image, redis_url=settings.redis_url,
                        database_url=settings.runner_database_url,
                        termination_grace_seconds=settings.runner_grace_seconds,
                        service_account_name=settings.runner_service_account),
            Timeouts(settings.pause_grace_seconds, settings.cancel_grace_seconds),
            settings.identity, on_capacity_change=self.admitter.kick)
        self._tasks: list[asyncio.Task[Any]] = []

    # -- events from kopf ---------------------------------------------------------------

    def on_syncjob(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        self.queue.add((meta["namespace"], meta["name"]))

    def on_job(self, body: dict[str, Any]) -> None:
        meta = body.get("metadata", {})
        for ref in meta.get("ownerReferences", []) or []:
            if ref.get("kind") == "SyncJob" and ref.get("controller"):
                self.queue.add((meta["namespace"], ref["name"]))

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        for n in range(self.settings.workers):
            self._spawn(self.queue.run_worker(self.reconciler.reconcile, self._on_error),
                        f"worker-{n}")
        self._spawn(self.admitter.run(), "admitter")
        self._spawn(self.relay.run(), "progress-relay")
        self._spawn(self.link.follow(self._on_runner_status), "redis-follower")
        self.admitter.kick()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.link.close()
        await self.client.close()

    async def _on_runner_status(self, uid: str, status: RunnerStatus) -> None:
        await self.relay.on_status(uid, status)

    def _on_error(self, key: Key, err: BaseException) -> float:
        log.warning("reconcile of %s/%s failed, retrying: %s", key[0], key[1], err)
        return 2.0
