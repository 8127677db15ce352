"""Exactly one operator replica leads through a real Lease, and a standby takes over in time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from sync_operator.app.leader import JITTER, LeaderElector
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import LEASES
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
LEASE_NAME = "sync-operator-leader"
# A standby polls every RETRY (plus jitter) and first sees a crashed leader's last renewal
# up to one poll late, so takeover comes within the lease duration plus two polls.
TAKEOVER_BOUND = LEASE + 2 * RETRY * (1 + JITTER) + 0.5


def candidate(kube: KubeClient, namespace: str, identity: str, **options: Any) -> LeaderElector:
    return LeaderElector(client=kube, namespace=namespace, name=LEASE_NAME, identity=identity,
                         lease_duration=LEASE,
                         renew_deadline=RENEW, retry_period=RETRY, **options)


async def lease_spec(kube: KubeClient, namespace: str) -> dict[str, Any]:
    lease = await kube.get(LEASES, LEASE_NAME, namespace)
    spec: dict[str, Any] = lease["spec"]
    return spec


async def leading(elector: LeaderElector, within: float = 10.0) -> float:
    """Wait until `elector` leads; return when (monotonic)."""
    await eventually(lambda: _true(elector.is_leader), timeout=within, interval=0.05,
                     what=f"{elector.identity} to lead")
    return time.monotonic()


async def _true(value: bool) -> bool:
    return value


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class UnreachableKube(KubeClient):
    """A client whose API calls start failing on demand, like a partitioned replica."""

    cut = False

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if self.cut:
            raise aiohttp.ClientConnectionError("network partition (test)")
        return await super().request(method, path, **kwargs)


@pytest.fixture
async def partitionable_kube(kube: KubeClient) -> AsyncIterator[UnreachableKube]:
    async with UnreachableKube(kube.connection) as client:
        yield client


async def test_only_one_of_two_candidates_leads(kube: KubeClient, namespace: str) -> None:
    first, second = candidate(kube, namespace, "first"), candidate(kube, namespace, "second")
    async with first.running(), second.running():
        await eventually(lambda: _true(first.is_leader or second.is_leader), timeout=10,
                         interval=0.05, what="a leader")
        renewed = (await lease_spec(kube, namespace))["renewTime"]
        for _ in range(int(2 * LEASE / RETRY)):  # well past a lease duration
            assert [first.is_leader, second.is_leader].count(True) == 1
            await asyncio.sleep(RETRY)
        leader = first if first.is_leader else second
        spec = await lease_spec(kube, namespace)
        assert spec["holderIdentity"] == leader.identity
        assert spec["leaseDurationSeconds"] == LEASE
        assert spec["leaseTransitions"] == 0
        assert spec["renewTime"] > renewed  # the leader keeps renewing
        assert first.leader == second.leader == leader.identity


async def test_a_released_lease_is_taken_over_at_once(kube: KubeClient, namespace: str) -> None:
    first, second = candidate(kube, namespace, "first"), candidate(kube, namespace, "second")
    first_task = asyncio.create_task(first.run())
    try:
        await leading(first)
        async with second.running():
            await asyncio.sleep(2 * RETRY)
            assert not second.is_leader
            released_at = time.monotonic()
            await stop(first_task)  # shutdown releases the lease
            assert (await lease_spec(kube, namespace))["holderIdentity"] == ""
            took_over_at = await leading(second, within=LEASE)
            assert took_over_at - released_at < LEASE
            spec = await lease_spec(kube, namespace)
            assert spec["holderIdentity"] == "second"
            assert spec["leaseTransitions"] == 1
    finally:
        await stop(first_task)


async def test_a_leader_that_stops_renewing_is_replaced_once_its_lease_expires(
        kube: KubeClient, namespace: str) -> None:
    crashing = candidate(kube, namespace, "crashing", release_on_cancel=False)
    standby = candidate(kube, namespace, "standby")
    crashing_task = asyncio.create_task(crashing.run())
    try:
        await leading(crashing)
        async with standby.running():
            await asyncio.sleep(2 * RETRY)
            await stop(crashing_task)  # gone without releasing, as after a SIGKILL
            crashed_at = time.monotonic()
            assert (await lease_spec(kube, namespace))["holderIdentity"] == "crashing"
            took_over_at = await leading(standby, within=2 * LEASE)
            assert LEASE - RETRY <= took_over_at - crashed_at <= TAKEOVER_BOUND
            spec = await lease_spec(kube, namespace)
            assert spec["holderIdentity"] == "standby"
            assert spec["leaseTransitions"] == 1
    finally:
        await stop(crashing_task)


async def test_a_leader_whose_lease_is_taken_steps_down_and_stops_its_work(
        kube: KubeClient, namespace: str) -> None:
    work_started, work_cancelled, stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def leader_work() -> None:
        work_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            work_cancelled.set()
            raise

    async def stopped_leading() -> None:
        stopped.set()

    elector = candidate(kube, namespace, "victim")
    async with elector.running(leader_work, stopped_leading):
        await leading(elector)
        await asyncio.wait_for(work_started.wait(), 5)
        lease = await kube.get(LEASES, LEASE_NAME, namespace)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"].update(holderIdentity="intruder", leaseDurationSeconds=60,
                             acquireTime=now, renewTime=now)
        await kube.replace(LEASES, LEASE_NAME, lease, namespace)
        await asyncio.wait_for(stopped.wait(), RETRY * 2 + 2)
        assert work_cancelled.is_set()
        assert not elector.is_leader
        await asyncio.sleep(LEASE)  # the intruder's lease is valid: no comeback
        assert not elector.is_leader
        assert (await lease_spec(kube, namespace))["holderIdentity"] == "intruder"


async def test_a_cut_off_leader_steps_down_before_the_standby_takes_over(
        kube: KubeClient, partitionable_kube: UnreachableKube, namespace: str) -> None:
    events: dict[str, float] = {}

    def recorder(name: str) -> Any:
        async def record() -> None:
            events[name] = time.monotonic()
        return record

    cut_off = candidate(partitionable_kube, namespace, "cut-off")
    standby = candidate(kube, namespace, "standby")
    async with cut_off.running(on_stopped_leading=recorder("cut_off_stopped")):
        await leading(cut_off)
        async with standby.running(on_started_leading=recorder("standby_started")):
            await asyncio.sleep(2 * RETRY)
            partitionable_kube.cut = True
            cut_at = time.monotonic()
            await leading(standby, within=2 * LEASE)
            assert "cut_off_stopped" in events
            # No moment with two leaders: the old one gave up first, within its deadline.
            assert events["cut_off_stopped"] < events["standby_started"]
            assert events["cut_off_stopped"] - cut_at <= RENEW + RETRY + 0.5
            assert events["standby_started"] - cut_at <= TAKEOVER_BOUND
            assert not cut_off.is_leader
            assert (await lease_spec(kube, namespace))["leaseTransitions"] == 1
