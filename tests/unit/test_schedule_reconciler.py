"""The SyncSchedule reconciler's I/O around the pure tick decision: one SyncJob per tick
(409 means already done), Forbid, history pruning, invalid specs, conflicts, deletion.

The API server is the in-memory fake (fake_kube.py); time is a ManualClock.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_kube import FakeKube, RecordingMirror

from sync_operator.api.common import API_VERSION, FINALIZER, SYNCJOBS, SYNCSCHEDULES, Phase
from sync_operator.app.clock import ManualClock
from sync_operator.kube.conditions import get_condition
from sync_operator.kube.events import EventRecorder
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.metrics import OperatorMetrics
from sync_operator.kube.timestamps import format_time
from sync_operator.syncschedule.reconciler import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    ScheduleReconciler,
    schedule_label,
)

Body = dict[str, Any]
NS = "team-a"
CREATED = datetime(2026, 3, 1, 9, 58, tzinfo=UTC)
TICK = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = TICK + timedelta(seconds=30)
# CronJob's naming: <schedule>-<minutes since the epoch of the scheduled time>.
TICK_JOB = f"nightly-{int(TICK.timestamp()) // 60}"


@dataclass
class World:
    kube: FakeKube
    clock: ManualClock
    metrics: OperatorMetrics

    def reconciler(self, *, mirror: RecordingMirror | None = None,
                   deleter: Callable[[str], Awaitable[str | None]] | None = None,
                   ) -> ScheduleReconciler:
        return ScheduleReconciler(
            client=self.kube.client,
            recorder=EventRecorder(client=self.kube.client, instance="test"),
            clock=self.clock.now, mirror=mirror, deleter=deleter, metrics=self.metrics)

    def status(self) -> Body:
        body = self.kube.stored(SYNCSCHEDULES, "nightly", NS)
        assert body is not None, "the schedule is gone"
        return dict(body.get("status") or {})

    def ready(self) -> Body:
        ready = get_condition(self.status().get("conditions"), "Ready")
        assert ready is not None, "no Ready condition"
        return ready

    def syncjob_creates(self) -> list[str]:
        return [str(c.name) for c in self.kube.calls_of("create", SYNCJOBS)]


@pytest.fixture
def world() -> World:
    clock = ManualClock(NOW)
    return World(FakeKube(clock.now), clock, OperatorMetrics())


KEY = ObjectKey(NS, "nightly")


def seed_schedule(world: World, *, spec: Body | None = None, status: Body | None = None,
                  finalizer: bool = False, deleting: bool = False) -> Body:
    meta: Body = {"name": "nightly", "namespace": NS, "uid": str(uuid.uuid4()),
                  "creationTimestamp": format_time(CREATED)}
    if finalizer:
        meta["finalizers"] = [FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    body: Body = {"apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": meta,
                  "spec": {"jobType": "quran", "schedule": "*/5 * * * *", "timeZone": "UTC",
                           **(spec or {})}}
    if status:
        body["status"] = status
    return world.kube.seed(SYNCSCHEDULES, body)


def seed_job(world: World, name: str, phase: Phase, *,
             completed: datetime | None = None) -> Body:
    """A SyncJob of the schedule (labelled as the reconciler labels them)."""
    status: Body = {"phase": phase.value}
    if completed is not None:
        status["completedAt"] = format_time(completed)
    return world.kube.seed(SYNCJOBS, {
        "apiVersion": API_VERSION, "kind": "SyncJob",
        "metadata": {"name": name, "namespace": NS, "labels": {SCHEDULE_LABEL: "nightly"}},
        "spec": {"jobType": "quran"}, "status": status})


# -- ticks -------------------------------------------------------------------------------


async def test_a_due_tick_creates_one_syncjob_named_for_the_tick_and_owned_by_the_schedule(
        world: World) -> None:
    schedule = seed_schedule(world, spec={"priority": 3, "timeoutMinutes": 30,
                                          "jobTemplate": {"params": {"sourceUrl": "u"}}})
    reconciler = world.reconciler()

    wait = await reconciler.reconcile(KEY)

    assert world.syncjob_creates() == [TICK_JOB]
    job = world.kube.stored(SYNCJOBS, TICK_JOB, NS)
    assert job is not None
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": API_VERSION, "kind": "SyncSchedule", "name": "nightly",
        "uid": schedule["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert job["metadata"]["labels"] == {SCHEDULE_LABEL: "nightly"}
    assert job["metadata"]["annotations"][SCHEDULED_TIME_ANNOTATION] == format_time(TICK)
    assert job["spec"] == {"jobType": "quran", "priority": 3, "retryAttempts": 3,
                           "scheduleRef": "nightly", "params": {"sourceUrl": "u"},
                           "timeoutMinutes": 30}
    status = world.status()
    assert status["lastScheduleTime"] == format_time(TICK)
    assert status["nextScheduleTime"] == format_time(TICK + timedelta(minutes=5))
    assert status["active"] == [{"name": TICK_JOB, "uid": job["metadata"]["uid"]}]
    assert world.ready()["status"] == "True"
    assert world.kube.event_reasons(NS, "nightly") == ["SuccessfulCreate"]
    assert reconciler.created == 1
    assert world.metrics.registry.get_sample_value(
        "sync_operator_scheduled_jobs_created_total") == 1.0
    assert wait == pytest.approx(270.0)  # until 10:05:00

    # Looking again within the same tick creates nothing more.
    await reconciler.reconcile(KEY)
    assert world.syncjob_creates() == [TICK_JOB]


async def test_a_create_answering_409_counts_as_done(world: World) -> None:
    seed_schedule(world)
    # The tick's job was created (and has finished) before lastScheduleTime was written.
    seed_job(world, TICK_JOB, Phase.SUCCEEDED, completed=NOW - timedelta(seconds=5))
    reconciler = world.reconciler()

    await reconciler.reconcile(KEY)

    assert world.syncjob_creates() == [TICK_JOB]  # tried, answered 409
    assert reconciler.created == 0
    assert world.metrics.registry.get_sample_value(
        "sync_operator_scheduled_jobs_created_total") == 0.0
    assert world.status()["lastScheduleTime"] == format_time(TICK)
    assert "SuccessfulCreate" not in world.kube.event_reasons(NS, "nightly")
    assert world.kube.names(SYNCJOBS, NS) == [TICK_JOB]


async def test_forbid_skips_the_tick_while_a_job_is_active_and_says_so(world: World) -> None:
    seed_schedule(world, spec={"concurrencyPolicy": "Forbid"})
    earlier = seed_job(world, "nightly-earlier", Phase.RUNNING)

    await world.reconciler().reconcile(KEY)

    assert world.syncjob_creates() == []
    [event] = world.kube.events(NS, "nightly")
    assert (event["reason"], event["type"]) == ("ConcurrencyForbidden", "Warning")
    assert format_time(TICK) in event["message"]
    assert world.status()["active"] == [
        {"name": "nightly-earlier", "uid": earlier["metadata"]["uid"]}]


async def test_history_pruning_deletes_the_oldest_finished_jobs_beyond_the_limits(
        world: World) -> None:
    seed_schedule(world, spec={"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1},
                  status={"lastScheduleTime": format_time(TICK)})  # nothing due now
    base = TICK - timedelta(hours=5)
    for i in range(4):  # s0 oldest ... s3 newest
        seed_job(world, f"s{i}", Phase.SUCCEEDED, completed=base + timedelta(minutes=i))
    seed_job(world, "f0", Phase.FAILED, completed=base + timedelta(minutes=10))
    seed_job(world, "c1", Phase.CANCELLED, completed=base + timedelta(minutes=11))
    seed_job(world, "f2", Phase.FAILED, completed=base + timedelta(minutes=12))
    seed_job(world, "running", Phase.RUNNING)

    await world.reconciler().reconcile(KEY)

    deleted = [c.name for c in world.kube.calls_of("delete", SYNCJOBS)]
    assert deleted == ["s0", "s1", "f0", "c1"]  # oldest first
    assert world.kube.names(SYNCJOBS, NS) == ["f2", "running", "s2", "s3"]
    assert world.syncjob_creates() == []


# -- invalid specs ---------------------------------------------------------------------


async def test_an_unknown_time_zone_makes_the_schedule_not_ready(world: World) -> None:
    seed_schedule(world, spec={"timeZone": "Mars/Olympus_Mons"})

    assert await world.reconciler().reconcile(KEY) is None

    ready = world.ready()
    assert (ready["status"], ready["reason"]) == ("False", "InvalidTimeZone")
    assert "Mars/Olympus_Mons" in ready["message"]
    assert world.status()["observedGeneration"] == 1
    assert world.kube.calls_of("list", SYNCJOBS) == []
    assert world.syncjob_creates() == []


async def test_an_invalid_cron_expression_is_reported_as_such(world: World) -> None:
    seed_schedule(world, spec={"schedule": "61 * * * *"})

    await world.reconciler().reconcile(KEY)

    ready = world.ready()
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSchedule")
    assert world.syncjob_creates() == []


# -- conflicts -------------------------------------------------------------------------


async def test_a_status_write_conflict_returns_zero_and_the_retry_creates_no_second_job(
        world: World) -> None:
    seed_schedule(world)
    world.kube.before("patch", SYNCSCHEDULES,
                      lambda: world.kube.touch(SYNCSCHEDULES, "nightly", NS),
                      subresource="status")
    reconciler = world.reconciler()

    assert await reconciler.reconcile(KEY) == 0.0

    assert "lastScheduleTime" not in world.status()  # the stale write did not land
    assert world.syncjob_creates() == [TICK_JOB]

    await reconciler.reconcile(KEY)  # read again: the tick's job is active

    assert world.syncjob_creates() == [TICK_JOB]
    assert world.status()["lastScheduleTime"] == format_time(TICK)
    assert reconciler.created == 1


# -- deletion and the mirror -----------------------------------------------------------


async def test_deletion_records_who_deleted_the_schedule_then_removes_the_finalizer(
        world: World) -> None:
    schedule = seed_schedule(world, finalizer=True, deleting=True)
    uid = schedule["metadata"]["uid"]
    mirror = RecordingMirror(world.kube, SYNCSCHEDULES)
    asked: list[str] = []

    async def deleter(of: str) -> str | None:
        asked.append(of)
        return "bob"

    assert await world.reconciler(mirror=mirror, deleter=deleter).reconcile(KEY) is None

    assert asked == [uid]
    assert mirror.deletions == [(uid, "bob")]
    assert mirror.present_at_deletion == [True]  # recorded before it was let go
    assert world.kube.stored(SYNCSCHEDULES, "nightly", NS) is None
    assert world.syncjob_creates() == []


async def test_with_a_mirror_a_live_schedule_gets_the_finalizer_and_is_mirrored(
        world: World) -> None:
    seed_schedule(world)
    mirror = RecordingMirror(world.kube, SYNCSCHEDULES)

    await world.reconciler(mirror=mirror).reconcile(KEY)

    stored = world.kube.stored(SYNCSCHEDULES, "nightly", NS)
    assert stored is not None
    assert stored["metadata"]["finalizers"] == [FINALIZER]
    # The mirror gets the body as written, not the one read.
    assert mirror.notified[-1]["metadata"]["resourceVersion"] == \
        stored["metadata"]["resourceVersion"]
    assert mirror.notified[-1]["status"]["lastScheduleTime"] == format_time(TICK)


async def test_a_long_schedule_name_gives_its_jobs_a_valid_label_that_still_selects_them(
        world: World) -> None:
    long_name = "quran-" + "x" * 200  # a valid object name (253), not a label value (63)
    world.kube.seed(SYNCSCHEDULES, {
        "apiVersion": API_VERSION, "kind": "SyncSchedule",
        "metadata": {"name": long_name, "namespace": NS, "uid": str(uuid.uuid4()),
                     "creationTimestamp": format_time(CREATED)},
        "spec": {"jobType": "quran", "schedule": "*/5 * * * *", "timeZone": "UTC",
                 "concurrencyPolicy": "Forbid"}})
    key = ObjectKey(NS, long_name)
    reconciler = world.reconciler()

    await reconciler.reconcile(key)

    [created] = world.syncjob_creates()
    job = world.kube.stored(SYNCJOBS, created, NS)
    assert job is not None
    label = job["metadata"]["labels"][SCHEDULE_LABEL]
    assert len(label) <= 63
    assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", label)
    assert label.startswith("quran-xxx")
    assert label == schedule_label(long_name)
    assert job["spec"]["scheduleRef"] == long_name
    [listed] = world.kube.calls_of("list", SYNCJOBS)
    assert listed.label_selector == f"{SCHEDULE_LABEL}={label}"

    # The selector finds the job: at the next tick it is active, so Forbid holds off.
    world.clock.advance(timedelta(minutes=5))
    await reconciler.reconcile(key)
    assert world.syncjob_creates() == [created]


def test_short_schedule_names_stay_their_own_label() -> None:
    assert schedule_label("nightly") == "nightly"
    assert schedule_label("quran-daily") == "quran-daily"
    assert schedule_label("a" * 63) == "a" * 63
    assert schedule_label("a" * 64) != schedule_label("a" * 65)
