"""Wires the operator's parts together and runs them while this replica leads.

kopf watches SyncJobs and SyncSchedules and calls the thin handlers; they call
`Runtime.on_*`, which feed the object stores (what a reconcile reads) and the
admission cache, and enqueue keys (not the echoes of our own writes). Our batch Jobs
are watched here, by label selector. Workers
reconcile keys; the admitter, the progress relay and the Redis follower run beside
them. Nothing here decides anything: the decisions are in syncjob/statemachine.py
and syncjob/queue/.

Memory per SyncJob (issue 11; benchmarks/memory_per_syncjob.py, 5,000 Succeeded
SyncJobs and their Jobs): the SyncJob store keeps JSON bytes (syncjob/stored.py), and
the full LISTs (a new leader's, every relist) keep each page cut down as it arrives,
a SyncJob as stored and a Job as `job_essentials`: the LIST's peak went from 49 KB
to 8.5 KB per SyncJob, what stays from 14 KB to 3.3 KB, the process's RSS at its
peak from 69 KB to 14 KB. The RSS of a 5,000 drain (benchmarks/scale.py, default
settings) rose in steps at those LISTs; its peak went from 358 MiB to 176 MiB.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Mapping
from typing import Any, cast

import aiohttp
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.app.clock import Clock, SystemClock
from sync_operator.app.leader import LeaderElector
from sync_operator.app.settings import OperatorSettings
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.bodies import OwnerReference, RawBody
from sync_operator.kube.events import EventRecorder
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.metrics import OperatorMetrics, gauge
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.kube.resources import JOBS
from sync_operator.kube.store import ObjectStore
from sync_operator.kube.stream import RESET, follow
from sync_operator.kube.workqueue import WorkQueue
from sync_operator.mirror import MirrorStore, SchemaNotMigrated, ensure_schema
from sync_operator.mirror.link import MirrorLink
from sync_operator.syncjob.job_builder import LABEL_MANAGED_BY, MANAGED_BY, JobSettings
from sync_operator.syncjob.progress_relay import ProgressRelay
from sync_operator.syncjob.queue.admitter import Admitter
from sync_operator.syncjob.queue.cache import JobCache
from sync_operator.syncjob.reconciler import Reconciler
from sync_operator.syncjob.runner_link import RunnerLink
from sync_operator.syncjob.statemachine import JobObservation, Timeouts
from sync_operator.syncjob.stored import StoredSyncJob
from sync_operator.syncschedule.reconciler import ScheduleReconciler
from sync_runner.contract import RunnerStatus

log = logging.getLogger(__name__)
JOB_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY}"  # our batch Jobs, selected by the server


class Runtime:
    def __init__(self, settings: OperatorSettings, client: KubeClient | None = None,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.identity = (f"{settings.identity}@{settings.pod_name or socket.gethostname()}"
                         f"-{uuid.uuid4().hex[:6]}")
        self.client = client or KubeClient(load_connection(), qps=settings.api_qps,
                                           burst=settings.api_burst)
        # The Lease has a client of its own (as client-go's leader election does), so a
        # renewal never waits behind a burst of reconciles or progress writes.
        self._lease_client = KubeClient(load_connection(), qps=5, burst=10) \
            if client is None else None
        self.metrics = OperatorMetrics()
        self.metrics.watch(self._gauges)
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        self.schedule_queue: WorkQueue[ObjectKey] = WorkQueue()
        self.link = RunnerLink(settings.redis_url)
        self.recorder = EventRecorder(client=self.client, instance=self.identity)
        # The latest SyncJobs and Jobs, from the watches and our own writes' answers.
        self.syncjobs: ObjectStore[StoredSyncJob] = ObjectStore(
            kind="SyncJob", keep=StoredSyncJob.of)
        self.job_views: ObjectStore[JobObservation] = ObjectStore(
            kind="Job", keep=JobObservation.from_body)
        # What our own writes left, so their watch echoes start no reconcile.
        self.own_writes = OwnWrites(on_record=self.syncjobs.put)
        self.store = MirrorStore(settings.database_url) if settings.database_url else None
        self.mirror = MirrorLink(client=self.client, store=self.store,
                                 own_writes=self.own_writes) if self.store else None
        self.relay = ProgressRelay(client=self.client,
                                   interval=settings.progress_interval_seconds,
                                   on_state_change=self.queue.add,
                                   writes_per_second=settings.progress_writes_per_second,
                                   own_writes=self.own_writes)
        self.jobs = JobCache()
        self.admitter = Admitter(
            cache=self.jobs, global_limit=settings.global_limit,
            default_limits=dict(settings.type_limits),
            interval=settings.admission_interval_seconds, enqueue=self.queue.add)
        self.reconciler = Reconciler(
            client=self.client, syncjobs=self.syncjobs, jobs=self.job_views,
            link=self.link, recorder=self.recorder,
            admission=self.admitter.grants, relay=self.relay,
            job_settings=JobSettings(
                image=settings.runner_image, redis_url=settings.redis_url,
                database_url=settings.runner_database_url,
                termination_grace_seconds=settings.runner_grace_seconds,
                service_account_name=settings.runner_service_account,
                extra_env=settings.runner_env, env_from_secret=settings.runner_env_from_secret),
            timeouts=Timeouts(settings.pause_grace_seconds, settings.cancel_grace_seconds,
                              settings.heartbeat_stale_seconds),
            identity=settings.identity, mirror=self.mirror, metrics=self.metrics,
            own_writes=self.own_writes,
            on_capacity_change=self.admitter.kick,
            clock=lambda: self.clock.now().replace(microsecond=0))
        self.schedules = ScheduleReconciler(
            client=self.client, recorder=self.recorder, clock=self.clock.now,
            mirror=self.mirror, deleter=self.link.deleter if self.mirror else None,
            metrics=self.metrics)
        self.elector = LeaderElector(
            client=self._lease_client or self.client, namespace=settings.lease_namespace,
            name=settings.lease_name,
            identity=self.identity,
            lease_duration=settings.lease_duration_seconds,
            renew_deadline=settings.lease_renew_deadline_seconds,
            retry_period=settings.lease_retry_period_seconds)
        self._tasks: list[asyncio.Task[Any]] = []
        self._leading = False

    # -- events from kopf ---------------------------------------------------------------

    def on_syncjob(self, body: Mapping[str, Any], *, event: str | None = None) -> None:
        """A watch event (`event` is ADDED, MODIFIED, DELETED, or None for a listing)."""
        deleted = event == "DELETED"
        if deleted:
            self.syncjobs.delete(body)
        else:
            self.syncjobs.put(body)
        changed = self.jobs.forget(body) if deleted else self.jobs.observe(body)
        if changed:
            self.admitter.kick()
        uid = str(body["metadata"]["uid"])
        if deleted:
            self.own_writes.forget(uid)
        elif event == "ADDED" and not (body.get("status") or {}).get("phase") \
                and self.jobs.is_waiting(uid):
            self.admitter.arrive(ObjectKey.of(body))  # reconciled once admission decided
        elif event == "MODIFIED" and self.own_writes.is_echo(body):
            # Our own write coming back: nothing to decide. The SQL mirror still gets
            # the progress it carries. (A listing after a watch gap is always news: it
            # may fold someone else's change into the version we wrote last.)
            if self.mirror is not None:
                self.mirror.notify(body)
        else:
            self.queue.add(ObjectKey.of(body))

    def on_schedule(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        self.admitter.observe_schedule(body, deleted=deleted)
        if not deleted:
            self.schedule_queue.add(ObjectKey.of(body))

    def on_job(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        if deleted:
            self.job_views.delete(body)
        else:
            self.job_views.put(body)
        owner = _owning_syncjob(body)
        if owner is None:
            return
        if self.jobs.observe_pods(owner["uid"], 0 if deleted else _pods_of(body)):
            self.admitter.kick()
        self.queue.add(ObjectKey(body["metadata"]["namespace"], owner["name"]))

    def on_jobs_listed(self, jobs: list[RawBody], *, enqueue: bool = True) -> None:
        """A full LIST of our batch Jobs (a watch start or a re-list after a gap)."""
        self.job_views.replace(list(jobs))
        counts = {owner["uid"]: _pods_of(job) for job in jobs
                  if (owner := _owning_syncjob(job)) is not None}
        if self.jobs.replace_pods(counts):
            self.admitter.kick()
        if enqueue:
            for job in jobs:
                if (owner := _owning_syncjob(job)) is not None:
                    self.queue.add(ObjectKey(job["metadata"]["namespace"], owner["name"]))

    async def record_deleter(self, uid: str, user: str) -> None:
        """Who asked to delete an object (from the admission webhook), for the finalizer."""
        await self.link.record_deleter(uid, user)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self._leading

    async def _start_mirror(self) -> None:
        """Start writing once the database answers with the right schema; until then
        the entries wait in the objects' status outboxes."""
        assert self.mirror is not None
        assert self.settings.database_url
        delay = 1.0
        while True:
            try:
                await asyncio.to_thread(ensure_schema, self.settings.database_url,
                                        migrate=self.settings.migrate)
                break
            except SchemaNotMigrated as err:
                log.error("%s", err)
                delay = 30.0
            except SQLAlchemyError as err:
                log.warning("PostgreSQL unreachable, mirror waits: %s", err)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        self.mirror.writer.start()

    def _gauges(self) -> list[GaugeMetricFamily]:
        out = [
            gauge("leader", "1 while this replica holds the Lease.", float(self._leading)),
            gauge("workqueue_depth", "SyncJobs waiting for a reconcile.", len(self.queue)),
            gauge("schedule_queue_depth", "SyncSchedules waiting for a reconcile.",
                  len(self.schedule_queue)),
            gauge("admission_grants", "Jobs admitted but not yet seen running.",
                  self.admitter.granted_count),
            gauge("queued_jobs", "Jobs waiting for capacity.", self.jobs.waiting_total),
            gauge("progress_relayed_jobs", "Jobs whose progress is relayed.",
                  len(self.relay.tracks)),
            gauge("progress_status_writes", "status.progress writes so far.",
                  self.relay.writes),
            gauge("admission_passes", "Admission passes so far.", self.admitter.passes),
            gauge("redis_available", "0 while Redis is unreachable.",
                  float(self.link.available)),
        ]
        jobs = GaugeMetricFamily("sync_operator_jobs", "SyncJobs by phase (last admission "
                                 "pass).", labels=["phase"])
        for phase, count in self.jobs.phase_counts().items():
            jobs.add_metric([phase], count)
        out.append(jobs)
        if self.mirror is not None:
            stats = self.mirror.writer.stats
            out += [
                gauge("mirror_pending", "Objects with entries not yet in PostgreSQL.",
                      stats.pending),
                gauge("mirror_failures", "Failed mirror writes so far.", stats.failures_total),
                gauge("mirror_connected", "0 while PostgreSQL is unreachable.",
                      float(stats.connected)),
            ]
        return out

    async def start(self) -> None:
        """Campaign for the Lease (or lead at once without election)."""
        self._leading = False
        if self.settings.metrics_port:
            self._metrics_server = self.metrics.serve(self.settings.metrics_port,
                                                      self.settings.listen_addr)
        if self.mirror is not None:
            self._spawn(self._start_mirror(), "mirror-start")
        if self.settings.leader_election:
            self._spawn(self.elector.run(self._lead), "leader-election")
        else:
            self._spawn(self._lead(), "lead")

    async def _lead(self) -> None:
        """Everything that acts; runs only while this replica holds the Lease."""
        log.info("%s is leading", self.identity)
        self._leading = True
        try:
            while True:
                try:
                    await self._work()
                except* Exception as errors:
                    log.error("leader work failed, restarting it: %r", errors.exceptions)
                    await asyncio.sleep(1.0)
        finally:
            self._leading = False
            log.info("%s stopped leading", self.identity)

    async def _work(self) -> None:
        """All loops in one TaskGroup: if one dies, all stop, so nothing keeps acting
        half-way; `_lead` starts them again from a fresh resync."""
        self.relay.clear()  # tracks of an earlier term may hold stale reports
        await self.resync()
        async with asyncio.TaskGroup() as group:
            if "syncjobs" in self.settings.controllers:
                for _ in range(self.settings.workers):
                    group.create_task(self.queue.run_worker(self.reconciler.reconcile,
                                                            self._on_error))
                group.create_task(self.admitter.run())
                group.create_task(self.relist())
                group.create_task(self.watch_jobs())
                group.create_task(self.relay.run())
                group.create_task(self.link.follow(self._on_runner_status))
                self.admitter.kick()
            if "schedules" in self.settings.controllers:
                group.create_task(self.schedule_queue.run_worker(self.schedules.reconcile,
                                                                 self._on_error))

    async def resync(self) -> None:
        """Enqueue every object: a new leader looks at everything once (retried until the
        API server answers, e.g. while a CRD's storage is still initialising)."""
        delay = 0.2
        while True:
            try:
                listed = await self._list_all()
                break
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as err:
                log.warning("resync failed, retrying in %.1fs: %s", delay, err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        jobs, schedules = listed
        for key in jobs:
            self.queue.add(key)
        for schedule in schedules:
            self.schedule_queue.add(ObjectKey.of(schedule))
        self.admitter.mark_synced()  # the cache holds a full LIST: admission may start

    async def _list_all(self) -> tuple[list[ObjectKey], list[RawBody]]:
        """LIST SyncJobs, SyncSchedules and our batch Jobs into the admission cache (the
        Jobs too: a slot is held while a Job's pods still run or terminate). Each page
        is cut down to what is kept as it arrives (a LIST of 5,000 SyncJobs and their
        Jobs was ~250 MB of parsed JSON at once); returns the SyncJobs' keys."""
        ns = self.settings.namespace
        jobs, version = await self.client.list_kept(SYNCJOBS, ns, StoredSyncJob.of)
        listed = await self.client.list(SYNCSCHEDULES, ns)
        schedules = listed["items"]
        batch, _ = await self.client.list_kept(JOBS, ns, job_essentials,
                                               label_selector=JOB_SELECTOR)
        keys = self.syncjobs.replace((job.body() for job in jobs), version)
        changed = self.jobs.replace((job.body() for job in jobs), version)
        self.admitter.replace_schedules(list(schedules),
                                        (listed.get("metadata") or {}).get("resourceVersion"))
        self.on_jobs_listed(batch, enqueue=False)
        if changed:
            self.admitter.kick()
        return keys, schedules

    async def watch_jobs(self) -> None:
        """Our batch Jobs' changes wake their SyncJobs. The label selector is on the watch
        itself (a kopf handler's label filter would still stream every Job in the
        cluster to us)."""
        while True:
            try:
                async for event in follow(self.client, JOBS, self.settings.namespace,
                                          label_selector=JOB_SELECTOR, keep=job_essentials):
                    if event.type == RESET:
                        self.on_jobs_listed(event.objects)
                        continue
                    for job in event.objects:
                        self.on_job(job, deleted=event.type == "DELETED")
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as err:
                log.warning("watch of Jobs ended, listing again: %s", err)
                await asyncio.sleep(1.0)

    async def relist(self) -> None:
        """Refresh the admission cache from a full LIST now and then: a watch can miss a
        deletion (a gap, a re-list), and a job the cache still counted would hold its
        slot for ever."""
        while True:
            await asyncio.sleep(self.settings.relist_seconds)
            try:
                await self._list_all()
            except (ApiError, aiohttp.ClientError, TimeoutError, OSError) as err:
                log.warning("relist failed, the next one follows: %s", err)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        server = getattr(self, "_metrics_server", None)
        if server is not None:
            server[0].shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.mirror is not None:
            await self.mirror.writer.stop()
        if self.store is not None:
            await self.store.close()
        await self.link.close()
        await self.client.close()
        if self._lease_client is not None:
            await self._lease_client.close()

    async def _on_runner_status(self, uid: str, status: RunnerStatus) -> None:
        await self.relay.on_status(uid, status)

    def _on_error(self, key: ObjectKey, err: BaseException) -> None:
        """Counted and logged; the work queue retries with the key's own backoff."""
        self.metrics.reconciles.labels("error").inc()
        log.warning("reconcile of %s failed, retrying: %s", key, err)


def job_essentials(job: RawBody) -> RawBody:
    """What is read of a batch Job here: its key and version (job_views), its owner
    (`_owning_syncjob`) and what JobObservation reads (spec.suspend, the status counts
    and conditions). The rest (the pod template, labels, managedFields, timestamps) was
    nine tenths of a listed Job's 41 KB of dicts."""
    meta: Mapping[str, Any] = job.get("metadata") or {}
    spec: Mapping[str, Any] = job.get("spec") or {}
    status: Mapping[str, Any] = job.get("status") or {}
    out: dict[str, Any] = {
        "metadata": {k: meta[k] for k in _JOB_METADATA if k in meta},
        "spec": {"suspend": spec["suspend"]} if "suspend" in spec else {},
        "status": {k: status[k] for k in _JOB_STATUS if k in status},
    }
    if "conditions" in status:
        out["status"]["conditions"] = [{k: c[k] for k in _JOB_CONDITION if k in c}
                                       for c in status["conditions"] or []]
    if "kind" in job:
        out["kind"] = job["kind"]
    return cast(RawBody, out)


_JOB_METADATA = ("name", "namespace", "uid", "resourceVersion", "ownerReferences")
_JOB_STATUS = ("active", "terminating", "failed", "succeeded")
_JOB_CONDITION = ("type", "status", "reason", "message")


def _owning_syncjob(job: Mapping[str, Any]) -> OwnerReference | None:
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "SyncJob" and ref.get("controller") and ref.get("uid"):
            return cast(OwnerReference, ref)
    return None


def _pods_of(job: Mapping[str, Any]) -> int:
    """A batch Job's pods that may still run, as the state machine counts them."""
    return JobObservation.from_body(job).active
