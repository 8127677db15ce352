"""The SyncJob reconciler's orchestration around the pure state machine: what it reads,
what it writes, in which order, and what it does when a write conflicts.

The API server is the in-memory fake (fake_kube.py); Redis is the session's real
server, through the real RunnerLink; the PostgreSQL mirror is a recording fake.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from fake_kube import Call, FakeKube, RecordingMirror
from redis.asyncio.client import PubSub

from sync_operator.api.common import API_VERSION, FINALIZER, SYNCJOBS, Phase, Reason
from sync_operator.app.clock import ManualClock
from sync_operator.kube import ApiError, Resource
from sync_operator.kube.conditions import get_condition
from sync_operator.kube.events import EventRecorder
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.metrics import OperatorMetrics
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.kube.resources import JOBS
from sync_operator.kube.store import ObjectStore
from sync_operator.kube.timestamps import format_time
from sync_operator.syncjob.job_builder import JobSettings, build_job, job_name
from sync_operator.syncjob.progress_relay import ProgressRelay
from sync_operator.syncjob.reconciler import CONFLICT_RETRY_SECONDS, Reconciler
from sync_operator.syncjob.runner_link import RunnerLink
from sync_operator.syncjob.statemachine import JobObservation, Timeouts
from sync_operator.syncjob.stored import StoredSyncJob
from sync_runner.contract import (
    CONTROL_FIELD,
    STATE_FIELD,
    Control,
    Keys,
    Progress,
    RunnerState,
    RunnerStatus,
)
from testkit.servers import RedisServer

Body = dict[str, Any]
NS = "team-a"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
IDENTITY = "sync-operator-0"
TIMEOUTS = Timeouts(pause_grace_seconds=60, cancel_grace_seconds=30,
                    heartbeat_stale_seconds=60)


@dataclass
class Admission:
    """The queue's read side (AdmissionView): which uids the admitter has granted."""

    granted_uids: set[str] = field(default_factory=set)

    def granted(self, uid: str) -> bool:
        return uid in self.granted_uids

    def message(self, uid: str) -> str | None:  # older AdmissionView: no wait message
        return None


@dataclass
class World:
    kube: FakeKube
    clock: ManualClock
    link: RunnerLink
    redis: aioredis.Redis
    grants: Admission
    relay: ProgressRelay
    mirror: RecordingMirror
    metrics: OperatorMetrics
    settings: JobSettings
    reconciler: Reconciler
    capacity_changes: list[int]

    async def reconcile(self, name: str) -> float | None:
        return await self.reconciler.reconcile(ObjectKey(NS, name))

    def stored(self, name: str) -> Body | None:
        return self.kube.stored(SYNCJOBS, name, NS)

    def rv(self, name: str) -> str:
        body = self.stored(name)
        assert body is not None, f"SyncJob {name} is gone"
        return str(body["metadata"]["resourceVersion"])

    def status(self, name: str) -> Body:
        body = self.stored(name)
        assert body is not None, f"SyncJob {name} is gone"
        return dict(body.get("status") or {})

    def job_of(self, body: Body) -> Body | None:
        return self.kube.stored(JOBS, job_name(body["metadata"]["name"],
                                               body["metadata"]["uid"]), NS)

    async def runner_reports(self, uid: str, status: RunnerStatus) -> None:
        await self.redis.hset(Keys(uid).state, STATE_FIELD, status.model_dump_json())

    async def control_in_redis(self, uid: str) -> Control | None:
        raw = await self.redis.hget(Keys(uid).control, CONTROL_FIELD)
        return Control.model_validate_json(raw) if raw else None


@pytest.fixture
async def world(redis_server: RedisServer,
                redis_client: aioredis.Redis) -> AsyncIterator[World]:
    clock = ManualClock(NOW)
    kube = FakeKube(clock.now)
    link = RunnerLink(redis_server.url)
    grants = Admission()
    own_writes = OwnWrites()
    relay = ProgressRelay(client=kube.client, interval=1.0, on_state_change=lambda key: None,
                          own_writes=own_writes)
    mirror = RecordingMirror(kube, SYNCJOBS)
    metrics = OperatorMetrics()
    settings = JobSettings(image="registry.local/sync-runner:test", redis_url=redis_server.url)
    capacity_changes: list[int] = []
    syncjobs, jobs = watched_stores(kube)
    reconciler = Reconciler(
        client=kube.client, syncjobs=syncjobs, jobs=jobs, link=link,
        recorder=EventRecorder(client=kube.client, instance=IDENTITY),
        admission=grants, relay=relay, job_settings=settings, timeouts=TIMEOUTS,
        identity=IDENTITY, mirror=mirror, metrics=metrics, own_writes=own_writes,
        on_capacity_change=lambda: capacity_changes.append(1), clock=clock.now)
    yield World(kube, clock, link, redis_client, grants, relay, mirror, metrics, settings,
                reconciler, capacity_changes)
    await link.close()


def watched_stores(kube: FakeKube
                   ) -> tuple[ObjectStore[StoredSyncJob], ObjectStore[JobObservation]]:
    """The reconciler's stores, fed by the fake's lag-free watch as the Runtime feeds the
    real ones (kinds are filled in: the fake keeps objects as they were sent)."""
    syncjobs: ObjectStore[StoredSyncJob] = ObjectStore(kind="SyncJob", keep=StoredSyncJob.of)
    jobs: ObjectStore[JobObservation] = ObjectStore(kind="Job", keep=JobObservation.from_body)

    def feed(event: str, res: Resource, obj: Body) -> None:
        store: ObjectStore[Any] | None = {SYNCJOBS: syncjobs, JOBS: jobs}.get(res)
        if store is None:
            return
        obj = {**obj, "kind": store.kind}
        if event == "DELETED":
            store.delete(obj)
        else:
            store.put(obj)

    kube.watchers.append(feed)
    return syncjobs, jobs


def seed_syncjob(world: World, name: str, *, phase: Phase | None = None,
                 spec: Body | None = None, status: Body | None = None,
                 finalizer: bool = True, created: datetime = NOW - timedelta(minutes=5),
                 deleting: bool = False) -> Body:
    """A SyncJob as the API server would hold it (a fresh uid, so fresh Redis keys)."""
    meta: Body = {"name": name, "namespace": NS, "uid": str(uuid.uuid4()),
                  "creationTimestamp": format_time(created)}
    if finalizer:
        meta["finalizers"] = [FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    full_status = dict(status or {})
    if phase is not None:
        full_status["phase"] = phase.value
    body: Body = {"apiVersion": API_VERSION, "kind": "SyncJob", "metadata": meta,
                  "spec": {"jobType": "quran", "priority": 5, **(spec or {})}}
    if full_status:
        body["status"] = full_status
    return world.kube.seed(SYNCJOBS, body)


def seed_job(world: World, syncjob: Body, *, suspended: bool = False, active: int = 1) -> Body:
    """The SyncJob's batch Job, as the Job controller would report it."""
    manifest = build_job(syncjob, world.settings)
    manifest["spec"]["suspend"] = suspended
    manifest["status"] = {"active": active}
    return world.kube.seed(JOBS, manifest)


def running_report(*, state: RunnerState = RunnerState.RUNNING,
                   acked: int = 0, done: int = 10) -> RunnerStatus:
    moment = NOW.timestamp()
    return RunnerStatus(state=state, progress=Progress(done=done, total=100, updated_at=moment),
                        heartbeat_at=moment, started_at=moment - 30, acked_generation=acked)


def index_of(world: World, predicate: Callable[[Call], bool]) -> int:
    """Where the one call matching `predicate` is in the order of calls."""
    matches = [i for i, call in enumerate(world.kube.calls) if predicate(call)]
    assert len(matches) == 1, f"expected one such call, got {len(matches)}"
    return matches[0]


# -- admission and the Job ----------------------------------------------------------


async def test_a_granted_queued_job_writes_running_first_then_creates_its_job(
        world: World) -> None:
    body = seed_syncjob(world, "full", phase=Phase.QUEUED)
    uid, read_rv = body["metadata"]["uid"], body["metadata"]["resourceVersion"]
    world.grants.granted_uids.add(uid)
    tracked_at_job_create: list[bool] = []
    create = world.kube.create

    async def watched_create(res: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if res == JOBS:  # the runner may report as soon as the Job exists
            tracked_at_job_create.append(uid in world.relay.tracks)
        return await create(res, obj, *args, **kwargs)

    world.kube.create = watched_create  # type: ignore[method-assign]

    await world.reconcile("full")

    assert tracked_at_job_create == [True]
    status = world.status("full")
    assert status["phase"] == "Running"
    admitted = get_condition(status["conditions"], "Admitted")
    assert admitted is not None
    assert admitted["status"] == "True"
    job = world.job_of(body)
    assert job is not None
    assert job["metadata"]["ownerReferences"][0]["uid"] == uid
    assert job["spec"]["suspend"] is False
    # The decision is written first, against the version that was read; then acted on;
    # then told as an Event.
    status_write = index_of(world, lambda c: c.verb == "patch" and c.resource == SYNCJOBS
                            and c.subresource == "status")
    job_create = index_of(world, lambda c: c.verb == "create" and c.resource == JOBS)
    assert world.kube.calls[status_write].body["metadata"]["resourceVersion"] == read_rv
    assert status_write < job_create
    assert world.kube.writes()[-1].resource.plural == "events"
    assert world.kube.event_reasons(NS, "full") == ["Admitted"]
    # The audit entry of the start travels in the same status write.
    pending = status["mirror"]["pending"]
    assert [(e["action"], e["performedBy"]) for e in pending] == [("started", IDENTITY)]
    # The mirror sees the body as written, the relay follows the pod, capacity moved.
    assert world.mirror.notified[-1]["metadata"]["resourceVersion"] == world.rv("full")
    assert world.relay.tracks[uid].phase == "Running"
    assert world.capacity_changes == [1]
    assert world.metrics.registry.get_sample_value(
        "sync_operator_phase_transitions_total", {"to": "Running"}) == 1.0
    assert world.metrics.registry.get_sample_value(
        "sync_operator_reconciles_total", {"outcome": "ok"}) == 1.0


async def test_a_status_write_conflict_comes_back_soon_and_acts_on_nothing(world: World) -> None:
    body = seed_syncjob(world, "raced", phase=Phase.QUEUED)
    uid = body["metadata"]["uid"]
    world.grants.granted_uids.add(uid)
    # Another writer (a drain of the outbox, say) changes the object between our read
    # and our status write.
    world.kube.before("patch", SYNCJOBS, lambda: world.kube.touch(SYNCJOBS, "raced", NS),
                      subresource="status")

    assert await world.reconcile("raced") == CONFLICT_RETRY_SECONDS

    assert world.kube.calls_of("patch", SYNCJOBS, subresource="status")  # it was tried
    assert world.kube.calls_of("create", JOBS) == []
    assert world.job_of(body) is None
    assert world.status("raced")["phase"] == "Queued"
    assert world.kube.event_reasons(NS) == []
    assert uid not in world.relay.tracks
    assert world.mirror.notified == []
    assert world.capacity_changes == []


async def test_a_job_create_answering_409_reads_the_existing_job_and_unsuspends_it(
        world: World) -> None:
    body = seed_syncjob(world, "resumed", phase=Phase.QUEUED, spec={"timeoutMinutes": 10},
                        status={"runSeconds": 120.0})
    world.grants.granted_uids.add(body["metadata"]["uid"])
    # The Job appears between the reconciler's GET and its create: a previous leader
    # created it suspended, with the whole budget as its deadline, and died.
    def previous_leader_creates_it() -> None:
        job = build_job(body, world.settings)
        job["spec"].update(suspend=True, activeDeadlineSeconds=600)
        world.kube.seed(JOBS, job)

    world.kube.before("create", JOBS, previous_leader_creates_it)

    await world.reconcile("resumed")

    assert len(world.kube.calls_of("create", JOBS)) == 1
    create = index_of(world, lambda c: c.verb == "create" and c.resource == JOBS)
    reread = [i for i, c in enumerate(world.kube.calls) if c.verb == "get"
              and c.resource == JOBS and i > create]
    assert reread, "the existing Job was not read after the 409"
    job = world.job_of(body)
    assert job is not None
    assert job["spec"]["suspend"] is False
    # Only what is left of timeoutMinutes: 10 min minus the 120 s already run.
    assert job["spec"]["activeDeadlineSeconds"] == 480
    assert world.kube.names(JOBS, NS) == [job["metadata"]["name"]]
    assert world.status("resumed")["phase"] == "Running"


async def test_the_finalizer_is_added_with_a_precondition_before_the_status_is_written(
        world: World) -> None:
    body = seed_syncjob(world, "new", finalizer=False)

    await world.reconcile("new")

    stored = world.stored("new")
    assert stored is not None
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    add = index_of(world, lambda c: c.verb == "patch" and c.subresource is None)
    write = index_of(world, lambda c: c.verb == "patch" and c.subresource == "status")
    assert world.kube.calls[add].body["metadata"]["resourceVersion"] == \
        body["metadata"]["resourceVersion"]
    assert add < write
    assert world.status("new")["phase"] == "Queued"  # not granted: it waits


async def test_a_finalizer_write_conflict_comes_back_soon_and_writes_nothing_else(
        world: World) -> None:
    body = seed_syncjob(world, "racing", finalizer=False)
    # Another writer changes the object between our read and the finalizer patch.
    world.kube.before("patch", SYNCJOBS, lambda: world.kube.touch(SYNCJOBS, "racing", NS))

    assert await world.reconcile("racing") == CONFLICT_RETRY_SECONDS

    [add] = world.kube.calls_of("patch", SYNCJOBS)  # it was tried, with the precondition
    assert add.body["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]
    assert world.kube.writes() == [add]  # no status write, no Job, no Event
    stored = world.stored("racing")
    assert stored is not None
    assert not stored["metadata"].get("finalizers")
    assert "phase" not in world.status("racing")
    assert world.mirror.notified == []
    assert world.capacity_changes == []
    assert world.metrics.registry.get_sample_value(
        "sync_operator_reconciles_total", {"outcome": "ok"}) is None

    # The next pass reads the new version and goes on.
    await world.reconcile("racing")
    stored = world.stored("racing")
    assert stored is not None
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    assert world.status("racing")["phase"] == "Queued"


async def test_a_queued_job_without_a_grant_stays_queued_and_starts_nothing(
        world: World) -> None:
    body = seed_syncjob(world, "waits", phase=Phase.QUEUED)

    await world.reconcile("waits")

    status = world.status("waits")
    admitted = get_condition(status["conditions"], "Admitted")
    assert admitted is not None
    assert (status["phase"], admitted["status"]) == ("Queued", "False")
    assert world.kube.calls_of("create", JOBS) == []
    assert body["metadata"]["uid"] not in world.relay.tracks


async def test_a_succeeded_job_keeps_no_stale_eta_on_the_server(world: World) -> None:
    body = seed_syncjob(world, "done", phase=Phase.RUNNING, status={
        "runStartedAt": format_time(NOW - timedelta(seconds=30)),
        "progress": {"done": 50, "total": 100, "percent": 50, "unit": "items", "message": "",
                     "updatedAt": format_time(NOW), "etaSeconds": 30}})  # the relay's write
    job = build_job(body, world.settings)
    job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    world.kube.seed(JOBS, job)
    await world.runner_reports(body["metadata"]["uid"],
                               running_report(state=RunnerState.SUCCEEDED, done=100))

    await world.reconcile("done")

    progress = world.status("done")["progress"]
    assert (world.status("done")["phase"], progress["percent"]) == ("Succeeded", 100)
    assert "etaSeconds" not in progress  # the state machine dropped it (_final_progress)


# -- no-op reconciles --------------------------------------------------------------------


async def test_a_second_reconcile_of_an_unchanged_world_writes_nothing(world: World) -> None:
    seed_syncjob(world, "steady", finalizer=False)
    await world.reconcile("steady")
    assert world.status("steady")["phase"] == "Queued"
    written = len(world.kube.writes())
    rv = world.rv("steady")
    notified = len(world.mirror.notified)

    world.clock.advance(timedelta(seconds=30))
    await world.reconcile("steady")

    assert world.kube.writes()[written:] == []
    assert world.rv("steady") == rv
    # The mirror still gets every look (it keeps the control row fresh).
    assert len(world.mirror.notified) == notified + 1


# -- dedup ---------------------------------------------------------------------------


async def test_dedup_cancels_a_pending_job_as_duplicate_of_the_oldest_active_one(
        world: World) -> None:
    key = {"dedupKey": "quran-nightly"}
    t0 = NOW - timedelta(hours=1)
    seed_syncjob(world, "finished-long-ago", phase=Phase.SUCCEEDED, spec=key, created=t0)
    seed_syncjob(world, "other-key", phase=Phase.RUNNING, spec={"dedupKey": "x"},
                 created=t0 + timedelta(minutes=1))
    seed_syncjob(world, "older-pending", spec=key, created=t0 + timedelta(minutes=2))
    seed_syncjob(world, "queued", phase=Phase.QUEUED, spec=key,
                 created=t0 + timedelta(minutes=3))
    seed_syncjob(world, "running", phase=Phase.RUNNING, spec=key,
                 created=t0 + timedelta(minutes=4))
    mine = seed_syncjob(world, "mine", spec=key, created=t0 + timedelta(minutes=10))

    await world.reconcile("mine")

    status = world.status("mine")
    assert status["phase"] == "Cancelled"
    # Terminal and other-key jobs are older but do not count.
    assert status["duplicateOf"] == "older-pending"
    cancelled = get_condition(status["conditions"], "Cancelled")
    assert cancelled is not None
    assert cancelled["reason"] == Reason.DUPLICATE
    assert world.job_of(mine) is None
    assert world.kube.event_reasons(NS, "mine") == [Reason.DUPLICATE]


async def test_dedup_lets_the_older_of_two_pending_jobs_go_first(world: World) -> None:
    key = {"dedupKey": "quran-nightly"}
    seed_syncjob(world, "younger", spec=key, created=NOW - timedelta(minutes=1))
    seed_syncjob(world, "elder", spec=key, created=NOW - timedelta(minutes=2))

    await world.reconcile("elder")
    await world.reconcile("younger")

    assert world.status("elder")["phase"] == "Queued"
    assert "duplicateOf" not in world.status("elder")
    assert world.status("younger")["duplicateOf"] == "elder"


# -- control through Redis, and the relay ----------------------------------------------


async def test_cancel_of_a_running_job_goes_through_redis_and_follows_the_relay(
        world: World) -> None:
    body = seed_syncjob(world, "busy", phase=Phase.RUNNING,
                        status={"startedAt": format_time(NOW - timedelta(seconds=30)),
                                "runStartedAt": format_time(NOW - timedelta(seconds=30))})
    uid = body["metadata"]["uid"]
    seed_job(world, body, active=1)
    await world.runner_reports(uid, running_report())

    await world.reconcile("busy")
    assert world.relay.tracks[uid].phase == "Running"
    # status.progress is the relay's while the job runs: it is seeded with what Redis holds.
    assert "progress" not in world.status("busy")
    latest = world.relay.tracks[uid].latest
    assert latest is not None
    assert latest.progress.done == 10

    await world.kube.patch(SYNCJOBS, "busy", {"spec": {"cancel": True}}, NS)
    requeue = await world.reconcile("busy")

    assert world.status("busy")["phase"] == "Cancelling"
    assert world.status("busy")["control"]["generation"] == 1
    assert await world.control_in_redis(uid) == Control(cancel=True, generation=1)
    assert world.relay.tracks[uid].phase == "Cancelling"
    assert requeue == TIMEOUTS.cancel_grace_seconds
    job = world.job_of(body)
    assert job is not None
    assert job["spec"]["suspend"] is False  # cooperative first: the pod is not stopped yet

    await world.runner_reports(uid, running_report(state=RunnerState.CANCELLED, acked=1))
    changes = len(world.capacity_changes)
    await world.reconcile("busy")

    assert world.status("busy")["phase"] == "Cancelled"
    job = world.job_of(body)
    assert job is not None
    assert job["spec"]["suspend"] is True
    assert uid not in world.relay.tracks
    assert len(world.capacity_changes) == changes + 1


# -- deletion ----------------------------------------------------------------------------


async def _next_message(pubsub: PubSub, timeout: float = 5.0) -> str:
    """The next published payload on a subscribed channel (skipping the confirmations)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            if message is not None:
                return str(message["data"])


async def test_deletion_cancels_the_runner_deletes_the_job_records_who_and_lets_go(
        world: World) -> None:
    body = seed_syncjob(world, "doomed", phase=Phase.RUNNING, deleting=True,
                        status={"control": {"paused": False, "cancel": False,
                                            "generation": 2}})
    uid = body["metadata"]["uid"]
    seed_job(world, body, active=1)
    world.relay.register(uid, ObjectKey(NS, "doomed"), "Running")
    await world.runner_reports(uid, running_report())
    await world.link.record_deleter(uid, "alice")
    pubsub = world.redis.pubsub()
    await pubsub.subscribe(Keys(uid).control_channel)
    try:
        assert await world.reconcile("doomed") is None

        published = Control.model_validate_json(await _next_message(pubsub))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    # A newer generation than the last one asked for, so the runner acts on it.
    assert published == Control(cancel=True, generation=3)
    assert world.job_of(body) is None
    [delete] = world.kube.calls_of("delete", JOBS)
    assert delete.propagation == "Foreground"  # the Job (and its slot) last as long as its pods
    # Recorded with the deleter while the object still stood, then the finalizer went.
    assert world.mirror.deletions == [(uid, "alice")]
    assert world.mirror.present_at_deletion == [True]
    assert world.stored("doomed") is None
    assert uid not in world.relay.tracks
    assert await world.redis.exists(*Keys(uid).all()) == 0  # the runner's keys are forgotten
    assert await world.link.deleter(uid) is None
    assert world.kube.event_reasons(NS, "doomed") == ["Deleted"]
    assert world.capacity_changes == [1]


async def test_deletion_of_a_finished_job_sends_no_cancel_and_credits_unknown(
        world: World) -> None:
    body = seed_syncjob(world, "old", phase=Phase.SUCCEEDED, deleting=True)
    uid = body["metadata"]["uid"]
    channel = Keys(uid).control_channel
    pubsub = world.redis.pubsub()
    await pubsub.subscribe(channel)
    try:
        await world.reconcile("old")

        # Whatever was published during the reconcile arrives before this marker.
        await world.redis.publish(channel, "marker")
        assert await _next_message(pubsub) == "marker"
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert world.mirror.deletions == [(uid, "unknown")]
    assert world.stored("old") is None


# -- a status the API server refuses (422) --------------------------------------------


def refuse_status(field: str, detail: str) -> Callable[[], None]:
    """A hook making the next status write answer 422 Invalid, as the API server does."""
    def refuse() -> None:
        message = (f'SyncJob.sync.jobcontrol.io "x" is invalid: {field}: {detail}')
        raise ApiError(422, "Invalid", message, {
            "kind": "Status", "status": "Failure", "reason": "Invalid", "code": 422,
            "message": message,
            "details": {"causes": [{"reason": "FieldValueInvalid", "field": field,
                                    "message": detail}]}})
    return refuse


async def test_a_refused_status_write_fails_the_job_visibly_and_releases_its_slot(
        world: World) -> None:
    body = seed_syncjob(world, "refused", phase=Phase.RUNNING, status={
        "runStartedAt": format_time(NOW - timedelta(seconds=30)),
        "conditions": [{"type": "Running", "status": "True", "reason": "Started",
                        "message": "", "lastTransitionTime": format_time(NOW)}]})
    uid = body["metadata"]["uid"]
    seed_job(world, body)
    await world.runner_reports(uid, running_report())
    world.kube.before("patch", SYNCJOBS, refuse_status(
        "status.progress.unit", "Too long: may not be more than 64 bytes"),
        subresource="status")

    assert await world.reconcile("refused") is None  # not raised, not retried at once

    status = world.status("refused")
    assert status["phase"] == "Failed"
    failed = get_condition(status["conditions"], "Failed")
    assert failed is not None
    assert (failed["status"], failed["reason"]) == ("True", Reason.STATUS_REJECTED)
    assert "status.progress.unit" in failed["message"]
    assert len(failed["message"]) <= 4096
    running = get_condition(status["conditions"], "Running")
    assert running is not None
    assert running["status"] == "False"
    assert "status.progress.unit" in status["error"]
    assert status["completedAt"]
    # The refused decision (progress) was not written: the fallback is minimal.
    assert "progress" not in status
    [event] = [e for e in world.kube.events(NS, "refused")]
    assert (event["type"], event["reason"]) == ("Warning", "StatusRejected")
    assert "status.progress.unit" in event["message"]
    # Audited, the pod stopped, the slot released, the mirror told.
    assert [(e["action"], e["details"]["reason"]) for e in status["mirror"]["pending"]] == [
        ("failed", "StatusRejected")]
    job = world.job_of(body)
    assert job is not None
    assert job["spec"]["suspend"] is True
    assert uid not in world.relay.tracks
    assert world.capacity_changes == [1]
    assert world.mirror.notified[-1]["status"]["phase"] == "Failed"

    # No loop: the next pass sees a finished job (it may settle bookkeeping once, such
    # as observedSpec), and after that nothing is written at all.
    assert await world.reconcile("refused") is None
    assert world.status("refused")["phase"] == "Failed"
    writes = len(world.kube.writes())
    assert await world.reconcile("refused") is None
    assert len(world.kube.writes()) == writes
    assert world.kube.event_reasons(NS, "refused").count("StatusRejected") == 1


async def test_a_refused_write_of_a_finished_job_keeps_its_outcome_and_says_why(
        world: World) -> None:
    seed_syncjob(world, "finished", phase=Phase.SUCCEEDED)
    world.kube.before("patch", SYNCJOBS, refuse_status(
        "status.conditions[0].reason", "Invalid value: \"bad reason\""), subresource="status")

    assert await world.reconcile("finished") is None

    assert world.status("finished")["phase"] == "Succeeded"
    assert world.kube.event_reasons(NS, "finished") == ["StatusRejected"]


async def test_other_status_write_errors_still_go_up_to_the_queue(world: World) -> None:
    seed_syncjob(world, "unavailable", phase=Phase.QUEUED)

    def unavailable() -> None:
        raise ApiError(503, "ServiceUnavailable", "etcd is down")

    world.kube.before("patch", SYNCJOBS, unavailable, subresource="status")
    with pytest.raises(ApiError):
        await world.reconcile("unavailable")
    assert world.kube.event_reasons(NS, "unavailable") == []
