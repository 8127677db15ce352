"""Reconciles one SyncJob: reads the world, asks the state machine, does what it says.

Reads: the SyncJob and its batch Job from the watch-fed stores (kube/store.py, the
SyncJob as JSON bytes: syncjob/stored.py; no GET), the runner's status in Redis, the
queue's grant. Writes: the Job (create, unsuspend, suspend, delete), control flags in
Redis, the status (with a resourceVersion precondition, so a decision made on a stale
read is retried rather than written), Events, and audit entries into the status
outbox that the PostgreSQL mirror drains.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from sync_operator.api.common import FINALIZER, SYNCJOBS, Phase, Reason
from sync_operator.api.syncjob import SyncJobSpec
from sync_operator.audit.outbox import append_entry
from sync_operator.audit.recording import audit_unattributed, move_actions
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.bodies import Document, RawBody
from sync_operator.kube.events import EventRecorder
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.metrics import OperatorMetrics
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.kube.patches import merge_patch
from sync_operator.kube.resources import JOBS
from sync_operator.kube.store import ObjectStore
from sync_operator.kube.timestamps import utc_now
from sync_operator.mirror.link import Mirror
from sync_operator.syncjob.job_builder import JobSettings, build_job, job_name
from sync_operator.syncjob.progress_relay import ProgressRelay
from sync_operator.syncjob.queue.grants import AdmissionView
from sync_operator.syncjob.rejection import is_invalid, rejected_status, rejection_message
from sync_operator.syncjob.runner_link import RunnerLink
from sync_operator.syncjob.statemachine import (
    CreateJob,
    Decision,
    JobObservation,
    Observation,
    SetControl,
    SuspendJob,
    Timeouts,
    decide,
    of_current_run,
)
from sync_operator.syncjob.stored import StoredSyncJob
from sync_runner.contract import Control

log = logging.getLogger(__name__)
# How soon a control flag that Redis did not take is published again.
CONTROL_RETRY_SECONDS = 2.0
# How soon a write refused as stale (409) is decided again. The newer version is on its
# way through the watch, whose event enqueues the key at once; this is the safety net.
CONFLICT_RETRY_SECONDS = 0.2


def _job_name(body: RawBody) -> str:
    return job_name(body["metadata"]["name"], body["metadata"]["uid"])


class Reconciler:
    def __init__(self, *, client: KubeClient, syncjobs: ObjectStore[StoredSyncJob],
                 jobs: ObjectStore[JobObservation], link: RunnerLink, recorder: EventRecorder,
                 admission: AdmissionView, relay: ProgressRelay, job_settings: JobSettings,
                 timeouts: Timeouts, identity: str, mirror: Mirror | None = None,
                 metrics: OperatorMetrics | None = None, own_writes: OwnWrites,
                 on_capacity_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.client = client
        self.syncjobs = syncjobs
        self.jobs = jobs
        self.link = link
        self.recorder = recorder
        self.admission = admission
        self.relay = relay
        self.job_settings = job_settings
        self.timeouts = timeouts
        self.identity = identity
        self.mirror = mirror
        self.metrics = metrics
        self.own_writes = own_writes
        self.on_capacity_change = on_capacity_change
        self.clock = clock
        self.reconciles = 0

    async def reconcile(self, key: ObjectKey) -> float | None:
        namespace, name = key
        self.reconciles += 1
        stored = self.syncjobs.get(key)
        if stored is None:
            return None  # deleted (or not seen yet: its event enqueues it again)
        body = stored.body()  # a private copy
        uid = body["metadata"]["uid"]
        if body["metadata"].get("deletionTimestamp"):
            await self.finalize(body)
            return None
        if FINALIZER not in (body["metadata"].get("finalizers") or []):
            try:
                body = await self._add_finalizer(body)
            except ApiError as err:
                if err.conflict:  # changed since the read: nothing was done, read again
                    return CONFLICT_RETRY_SECONDS
                raise

        try:
            spec = SyncJobSpec.model_validate(body.get("spec", {}))
        except ValidationError as err:  # the CRD schema should make this unreachable
            log.error("%s/%s has an invalid spec: %s", namespace, name, err)
            return None
        status: Document = dict(body.get("status") or {})
        phase = Phase.of(body)
        job = self.jobs.get(ObjectKey(namespace, _job_name(body)))
        live = not (phase.is_terminal and job is None)
        runner = await self.link.status(uid) if live else None
        checkpoint = await self.link.checkpoint(uid) if live and runner is not None else None
        duplicate_of = None
        if phase == Phase.PENDING and spec.dedup_key:
            duplicate_of = await self._duplicate_of(body, spec.dedup_key)

        decision = decide(Observation(
            generation=int(body["metadata"].get("generation", 1)), spec=spec, status=status,
            now=self.clock(), job=job, runner=runner, checkpoint=checkpoint,
            granted=self.admission.granted(uid), duplicate_of=duplicate_of,
            job_name=_job_name(body), runner_reachable=self.link.available,
        ), self.timeouts)

        # The decision is written first (with a resourceVersion precondition), then
        # acted on. A conflict means nothing was done; a crash after the write is
        # repaired by the next pass, because each phase re-asserts its actions
        # (Paused suspends, Running creates or unsuspends, control is re-published).
        # So a forced stop is never mistaken for a cooperative one on a retry.
        new_status = self._with_audit(body, decision)
        if new_status != status:
            try:
                body = await self._write_status(body, status, new_status)
            except ApiError as err:
                if err.conflict:
                    return CONFLICT_RETRY_SECONDS  # read again and decide again
                if not is_invalid(err):
                    raise
                return await self._status_rejected(key, body, status, job, err)
        # Tracked before the actions run: a Job created below may start a runner whose
        # first reports come before this reconcile ends, and none may be dropped.
        if decision.phase.holds_pod:
            current = runner if runner is not None and of_current_run(
                runner, decision.status) else None
            self.relay.register(uid, key, decision.phase.value, latest=current)
        else:
            self.relay.unregister(uid)
        unpublished = False  # a control flag Redis did not take (an outage)
        for action in decision.actions:
            unpublished |= not await self._execute(action, body, job)
        for note in decision.notes:
            if note.event:
                await self.recorder.record(body, note.reason, note.message,
                                           warning=note.warning)
        if self.metrics is not None:
            self.metrics.reconciles.labels("ok").inc()
            if decision.phase != phase:
                self.metrics.transitions.labels(decision.phase.value).inc()

        if decision.phase != phase or phase == Phase.PENDING:
            self.on_capacity_change()
        if self.mirror is not None:
            self.mirror.notify(body)
        if unpublished:
            # Our own status write's echo starts no reconcile, so come back soon and
            # publish again rather than wait for the grace period to force it.
            return min(decision.requeue_after or CONTROL_RETRY_SECONDS, CONTROL_RETRY_SECONDS)
        return decision.requeue_after

    # -- actions ----------------------------------------------------------------------

    async def _execute(self, action: CreateJob | SuspendJob | SetControl, body: RawBody,
                       job: JobObservation | None) -> bool:
        """Do one action; False only when a control flag could not reach Redis."""
        namespace, uid = body["metadata"]["namespace"], body["metadata"]["uid"]
        if isinstance(action, SetControl):
            published = await self.link.set_control(uid, action.control)
            return published or self.link.available  # refused as not newer: fine
        elif isinstance(action, SuspendJob):
            if job is not None:
                self.jobs.put(await self.client.patch(
                    JOBS, job.name, {"spec": {"suspend": True}}, namespace))
        elif isinstance(action, CreateJob):
            if job is None:
                manifest = build_job(body, self.job_settings)
                try:
                    self.jobs.put(await self.client.create(JOBS, manifest, namespace))
                except ApiError as err:
                    if not err.conflict:
                        raise
                    # It exists and the watch has not shown it yet: read it once.
                    existing = await self.client.get(JOBS, manifest["metadata"]["name"],
                                                     namespace)
                    self.jobs.put(existing)
                    job = JobObservation.from_body(existing)
            if job is not None and job.suspended:
                patch: Document = {"spec": {"suspend": False}}
                if action.remaining_seconds is not None:
                    patch["spec"]["activeDeadlineSeconds"] = action.remaining_seconds
                self.jobs.put(await self.client.patch(JOBS, job.name, patch, namespace))
        return True

    def _with_audit(self, body: RawBody, decision: Decision) -> Document:
        """The decided status plus its audit entries: first the users' actions (moved
        from the admission stamps), then the operator's own transitions."""
        status = dict(decision.status)
        status = audit_unattributed(body, status, decision.phase.value, self.clock())
        status = move_actions(body, status, decision.phase.value, self.clock())
        for note in decision.notes:
            if note.audit is None:
                continue
            status["mirror"] = append_entry(
                status.get("mirror"), note.audit, self.identity, decision.phase.value,
                {"reason": note.reason, "message": note.message}, self.clock())
        return status

    async def _write_status(self, body: RawBody, old: Document, new: Document) -> RawBody:
        patch = merge_patch(old, new)
        meta = body["metadata"]
        result: RawBody = await self.client.patch(
            SYNCJOBS, meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": patch},
            meta["namespace"], subresource="status")
        self.own_writes.record(result)
        return result

    async def _status_rejected(self, key: ObjectKey, body: RawBody, old: Document,
                               job: JobObservation | None, err: ApiError) -> float | None:
        """A 422 on the status is refused again on every retry: say why (Event), write
        the accepted status made Failed (reason StatusRejected), stop the pod, release
        the slot. If even that is refused, the error goes up to the queue's backoff.
        A job already finished keeps its outcome: it holds nothing, the Event says it."""
        message = rejection_message(err)
        log.error("%s/%s: %s", key.namespace, key.name, message)
        await self.recorder.record(body, Reason.STATUS_REJECTED, message, warning=True)
        if Phase.of({"status": old}).is_terminal:
            return None
        failed = rejected_status(old, message, now=self.clock(), identity=self.identity,
                                 generation=int(body["metadata"].get("generation", 1)))
        try:
            body = await self._write_status(body, old, failed)
        except ApiError as again:
            if again.conflict:
                return CONFLICT_RETRY_SECONDS  # changed meanwhile: decide again
            raise
        if job is not None:
            await self._execute(SuspendJob(), body, job)
        self.relay.unregister(body["metadata"]["uid"])
        self.on_capacity_change()
        if self.mirror is not None:
            self.mirror.notify(body)
        return None

    async def _add_finalizer(self, body: RawBody) -> RawBody:
        meta = body["metadata"]
        finalizers = [*(meta.get("finalizers") or []), FINALIZER]
        result: RawBody = await self.client.patch(
            SYNCJOBS, meta["name"],
            {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
            meta["namespace"])
        self.own_writes.record(result)
        return result

    async def _duplicate_of(self, body: RawBody, dedup_key: str) -> str | None:
        """The oldest other active SyncJob in the namespace with the same dedupKey.

        One already past Pending always wins (it was accepted first). Between two
        still Pending, the older wins, ties broken by name, so both sides agree."""
        meta = body["metadata"]
        mine = (meta["creationTimestamp"], meta["name"])
        others = [o.body() for o in self.syncjobs.in_namespace(meta["namespace"])
                  if o.dedup_key == dedup_key]
        active = [
            o for o in others
            if o["metadata"]["uid"] != meta["uid"]
            and o.get("spec", {}).get("dedupKey") == dedup_key
            and not Phase.of(o).is_terminal
            and (Phase.of(o) != Phase.PENDING
                 or (o["metadata"]["creationTimestamp"], o["metadata"]["name"]) < mine)
        ]
        if not active:
            return None
        oldest = min(active, key=lambda o: (o["metadata"]["creationTimestamp"],
                                            o["metadata"]["name"]))
        return str(oldest["metadata"]["name"])

    # -- deletion ---------------------------------------------------------------------

    async def finalize(self, body: RawBody) -> None:
        """Stop running work, record the deletion, then let the object go."""
        meta = body["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        uid, namespace = meta["uid"], meta["namespace"]
        self.relay.unregister(uid)
        if not Phase.of(body).is_terminal:
            generation = int((body.get("status", {}).get("control") or {}).get("generation", 0))
            await self.link.set_control(uid, Control(cancel=True, generation=generation + 1))
        # Foreground: the Job stays (and its pods count against the limits) until its
        # pods are gone, so a deleted job's slot is not handed on while a pod shuts down.
        await self.client.delete(JOBS, _job_name(body), namespace,
                                 propagation="Foreground")
        if self.mirror is not None:
            deleter = await self.link.deleter(uid) or "unknown"
            await self.mirror.record_deletion(body, deleter)
        await self.link.forget(uid)
        await self.recorder.record(body, "Deleted", "deleted: its Job and pods were removed")
        finalizers = [f for f in meta.get("finalizers", []) if f != FINALIZER]
        try:
            await self.client.patch(
                SYNCJOBS, meta["name"],
                {"metadata": {"finalizers": finalizers,
                              "resourceVersion": meta["resourceVersion"]}}, namespace)
        except ApiError as err:
            if not err.not_found:
                raise
        self.on_capacity_change()
