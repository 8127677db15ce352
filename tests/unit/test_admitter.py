"""Admission passes over the watch-fed JobCache: priority order within per-type and
global limits, grants held until the job is seen out of Queued, schedule limits, and
terms of leadership.

The cache is fed SyncJob bodies as the watch would deliver them (each change with a
newer resourceVersion); the cache and the grants are the real ones.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync_operator.api.common import API_VERSION, JobType, Phase
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.timestamps import format_time
from sync_operator.syncjob.queue.admitter import Admitter
from sync_operator.syncjob.queue.cache import JobCache
from testkit.waiting import eventually

Body = dict[str, Any]
NS = "team-a"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LIMITS = {JobType.QURAN: 1, JobType.PRAYER: 2, JobType.HADITH: 1, JobType.AUDIO: 1,
          JobType.FINANCE: 1}


@dataclass
class World:
    cache: JobCache
    admitter: Admitter
    enqueued: list[ObjectKey]
    bodies: dict[str, Body] = field(default_factory=dict)
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _minute: int = 0

    def add(self, name: str, job_type: str = "quran", *, priority: int = 5,
            phase: Phase = Phase.QUEUED, spec: Body | None = None,
            deleting: bool = False) -> None:
        """A SyncJob appears; each one is created a minute after the previous."""
        self._minute += 1
        meta: Body = {"name": name, "namespace": NS, "uid": str(uuid.uuid4()),
                      "creationTimestamp": format_time(T0 + timedelta(minutes=self._minute))}
        if deleting:
            meta["deletionTimestamp"] = format_time(T0)
        self.bodies[name] = {
            "apiVersion": API_VERSION, "kind": "SyncJob", "metadata": meta,
            "spec": {"jobType": job_type, "priority": priority, **(spec or {})},
            "status": {"phase": phase.value}}
        self._observe(name)

    def move(self, name: str, phase: Phase) -> None:
        """The reconciler moved the job on; the watch delivers it."""
        self.bodies[name]["status"]["phase"] = phase.value
        self._observe(name)

    def delete(self, name: str) -> None:
        body = self.bodies.pop(name)
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        self.cache.forget(body)

    def _observe(self, name: str) -> None:
        self.bodies[name]["metadata"]["resourceVersion"] = str(next(self._versions))
        self.cache.observe(self.bodies[name])

    def uid(self, name: str) -> str:
        return str(self.bodies[name]["metadata"]["uid"])

    def granted(self) -> set[str]:
        return {n for n in self.bodies if self.admitter.grants.granted(self.uid(n))}

    def pass_once(self) -> list[str]:
        """One pass; the names it enqueued, in order (checked against what it returned)."""
        before = len(self.enqueued)
        returned = [key.name for key in self.admitter.pass_once()]
        enqueued = [key.name for key in self.enqueued[before:]]
        assert enqueued == returned
        return enqueued


def make_world(global_limit: int = 4) -> World:
    cache = JobCache()
    enqueued: list[ObjectKey] = []
    admitter = Admitter(cache=cache, global_limit=global_limit, default_limits=dict(LIMITS),
                        interval=3600.0, enqueue=enqueued.append)
    return World(cache, admitter, enqueued)


@pytest.fixture
def world() -> World:
    return make_world()


def schedule(job_type: str, max_concurrency: int) -> Body:
    return {"apiVersion": API_VERSION, "kind": "SyncSchedule",
            "metadata": {"name": f"{job_type}-nightly", "namespace": NS,
                         "uid": str(uuid.uuid4())},
            "spec": {"jobType": job_type, "schedule": "@daily",
                     "maxConcurrency": max_concurrency}}


async def test_a_pass_admits_by_priority_within_type_and_global_limits() -> None:
    world = make_world(global_limit=3)
    world.add("quran-old", "quran", priority=5)
    world.add("quran-urgent", "quran", priority=1)
    world.add("prayer-a", "prayer", priority=5)
    world.add("prayer-b", "prayer", priority=5)
    world.add("hadith", "hadith", priority=9)

    # Most urgent first; quran-old is held back by its type only and blocks nobody;
    # hadith waits for the global limit.
    assert world.pass_once() == ["quran-urgent", "prayer-a", "prayer-b"]
    assert world.granted() == {"quran-urgent", "prayer-a", "prayer-b"}


async def test_jobs_whose_phase_may_hold_a_pod_count_against_the_limits(world: World) -> None:
    world.add("running", "quran", phase=Phase.RUNNING)
    world.add("pausing", "audio", phase=Phase.PAUSING)
    world.add("cancelling", "hadith", phase=Phase.CANCELLING)
    world.add("finished", "prayer", phase=Phase.SUCCEEDED)
    world.add("quran-next", "quran", priority=1)
    world.add("audio-next", "audio", priority=1)
    world.add("prayer-1", "prayer")
    world.add("prayer-2", "prayer")

    # 3 hold a pod; the global limit of 4 leaves one place; a finished prayer holds none.
    assert world.pass_once() == ["prayer-1"]


async def test_a_granted_job_still_queued_keeps_its_capacity_until_seen_running(
        world: World) -> None:
    world.add("first", "quran", priority=1)
    world.add("second", "quran", priority=2)
    assert world.pass_once() == ["first"]

    # The reconciler has not acted yet: the watch still shows it Queued.
    assert world.pass_once() == []  # not admitted twice, and nothing else takes its place
    assert world.granted() == {"first"}

    world.move("first", Phase.RUNNING)
    assert world.pass_once() == []  # its phase holds the capacity now ...
    assert world.granted() == set()  # ... so the grant is settled
    assert world.admitter.granted_count == 0

    world.move("first", Phase.SUCCEEDED)
    assert world.pass_once() == ["second"]


async def test_a_granted_job_still_queued_counts_against_the_global_limit() -> None:
    world = make_world(global_limit=1)
    world.add("quran", "quran", priority=1)
    assert world.pass_once() == ["quran"]

    world.add("prayer", "prayer", priority=1)  # its own type has room; the global not

    assert world.pass_once() == []
    world.move("quran", Phase.FAILED)
    assert world.pass_once() == ["prayer"]


async def test_a_schedule_max_concurrency_sets_the_limit_of_its_type(world: World) -> None:
    nightly = schedule("quran", 2)
    world.admitter.observe_schedule(nightly)
    for name in ("q1", "q2", "q3"):
        world.add(name, "quran")
    world.add("h1", "hadith")
    world.add("h2", "hadith")

    assert sorted(world.pass_once()) == ["h1", "q1", "q2"]  # hadith keeps its default 1

    world.move("q1", Phase.SUCCEEDED)
    world.admitter.observe_schedule(nightly, deleted=True)  # back to the default of 1
    assert world.pass_once() == []  # q2 still holds the one quran place
    world.admitter.replace_schedules([schedule("quran", 3)])
    assert world.pass_once() == ["q3"]


async def test_paused_cancelled_and_deleting_jobs_are_not_admitted(world: World) -> None:
    world.add("paused", "quran", priority=1, phase=Phase.PAUSED, spec={"paused": True})
    # Paused or cancelled by its user a moment ago: the reconciler has not moved it yet.
    world.add("pausing-queued", "quran", priority=1, spec={"paused": True})
    world.add("cancel-asked", "quran", priority=1, spec={"cancel": True})
    world.add("being-deleted", "quran", priority=1, deleting=True)
    world.add("runs", "quran", priority=5)

    assert world.pass_once() == ["runs"]  # none of the others held the one quran place


async def test_a_granted_job_deleted_before_it_started_gives_its_place_back(
        world: World) -> None:
    world.add("granted", "quran", priority=1)
    world.add("next", "quran", priority=2)
    assert world.pass_once() == ["granted"]

    world.delete("granted")

    assert world.pass_once() == ["next"]
    assert world.admitter.granted_count == 1


async def test_run_waits_for_the_first_list_and_starts_and_ends_each_term_with_no_grants(
        world: World) -> None:
    world.add("held", "quran", priority=1)
    assert world.pass_once() == ["held"]  # a grant of the previous term
    passes = world.admitter.passes

    term = asyncio.create_task(world.admitter.run())
    try:
        # One yield lets the new task run up to its first await (asyncio runs tasks in
        # order): the start of a term, waiting for the cache's first full LIST.
        await asyncio.sleep(0)
        assert world.admitter.granted_count == 0  # cleared at the start of the term
        assert world.admitter.passes == passes  # no pass before the cache is synced

        world.admitter.mark_synced()

        async def first_pass_done() -> bool:
            return world.admitter.passes > passes

        await eventually(first_pass_done, timeout=5, interval=0.01,
                         what="the term's first admission pass")
        assert world.granted() == {"held"}  # granted again, by this term itself
    finally:
        term.cancel()
        await asyncio.gather(term, return_exceptions=True)

    assert world.admitter.granted_count == 0  # cleared at the end of the term


async def test_a_new_job_is_reconciled_after_the_pass_that_decided_on_it() -> None:
    """A job handed over on arrival is enqueued by the next pass, granted or not, so its
    first reconcile already knows (one status write, Pending to Running, when there is
    room); the admitted come first, and each key once."""
    world = make_world(global_limit=1)
    world.add("first", "quran", phase=Phase.PENDING)
    world.add("second", "prayer", phase=Phase.PENDING)
    for name in ("first", "second"):
        world.admitter.arrive(ObjectKey(NS, name))
    assert world.enqueued == []  # not before admission decided
    assert [k.name for k in world.admitter.pass_once()] == ["first"]
    assert [k.name for k in world.enqueued] == ["first", "second"]
    assert world.granted() == {"first"}
    world.admitter.pass_once()  # arrivals are handed on once
    assert [k.name for k in world.enqueued] == ["first", "second"]
