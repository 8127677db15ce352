"""Fault drills: production's accidents, each done to the real stack mid-run, each ending
with the same invariants (testkit.drills): every job in the phase it should be, nothing
stuck, and the audit and control rows exactly those of the same work run without the
fault, in the same test.

The jobs run the real runner as local processes (a process per pod), report through
real Redis and are mirrored into real PostgreSQL; users act through their own
credentials and the API server's stamp policy names them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import PODS
from sync_operator.mirror import upgrade
from sync_runner import contract
from testkit.cluster import LocalCluster
from testkit.drills import (
    JOB_UID_LABEL,
    Trace,
    assert_same_as_uninterrupted,
    duplicate_audit_rows,
    rows,
    settled,
)
from testkit.kubelet import container_pids
from testkit.operator import OperatorProcess
from testkit.servers import PostgresServer, RedisServer
from testkit.syncjobs import grant_users, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
OPERATOR_IDENTITY = "system:serviceaccount:sync-system:sync-operator"


def demo(items: int, unit_seconds: float, **extra: Any) -> dict[str, Any]:
    return {"task": "demo", "items": items, "unitSeconds": unit_seconds, **extra}


@dataclass
class Drill:
    """One drill's stack: the operator (mirroring into a fresh database, two slots in all,
    two for prayer, one for hadith), and the users' own clients."""

    kube: KubeClient
    namespace: str
    url: str
    operator: OperatorProcess
    users: dict[str, KubeClient] = field(default_factory=dict)

    @property
    def alice(self) -> KubeClient:
        return self.users["alice"]

    async def create(self, name: str, job_type: str = "prayer", *,
                     by: str = "alice", **spec: Any) -> str:
        body = await self.users[by].create(SYNCJOBS, syncjob(name, job_type, **spec),
                                           self.namespace)
        return str(body["metadata"]["uid"])

    async def patch(self, name: str, by: str = "alice", **spec: Any) -> None:
        await self.users[by].patch(SYNCJOBS, name, {"spec": spec}, self.namespace)

    async def phase(self, name: str, *phases: str, timeout: float = 60) -> None:
        await wait_phase(self.kube, self.namespace, name, *phases, timeout=timeout)

    async def settle(self, *names: str, timeout: float = 120) -> dict[str, Trace]:
        traces = await settled(self.kube, self.url, self.namespace, names, timeout=timeout)
        assert duplicate_audit_rows(self.url) == []
        return traces

    def operator_log_is_clean(self) -> None:
        """No crash and no loop left its mark: a drill may kill, but not break."""
        text = self.operator.log_path.read_text(errors="replace")
        for sign in ("Traceback", "StatusRejected", "status write refused"):
            assert sign not in text, f"{sign!r} in the operator log:\n{self.operator.log()}"


@pytest.fixture
async def drill(cluster: LocalCluster, kube: KubeClient, namespace: str, database_url: str,
                start_operator: Callable[..., OperatorProcess]) -> AsyncIterator[Drill]:
    upgrade(database_url)
    await grant_users(kube, namespace)
    operator = start_operator(database_url=database_url, identity=OPERATOR_IDENTITY,
                              global_limit="2")
    users = {u: KubeClient(load_connection(cluster.user_kubeconfig(u, namespace)))
             for u in ("alice", "bob")}
    try:
        yield Drill(kube, namespace, database_url, operator, users)
    finally:
        for client in users.values():
            await client.close()


# == the operator killed in each phase of a job ============================================


@dataclass(frozen=True)
class PhaseCase:
    """Drive a job to `phase`, kill the operator there, make the `while_down` edits
    with no operator running, start it again; the job must end in `final`."""

    phase: str
    params: dict[str, Any]
    reach: tuple[dict[str, Any], ...] = ()  # edits that bring the job to `phase`
    while_down: tuple[dict[str, Any], ...] = ()
    final: str = "Succeeded"
    behind_a_blocker: bool = False  # Queued: a running job fills the global limit


PHASE_CASES = [
    PhaseCase("Queued", demo(15, 0.1), behind_a_blocker=True),
    PhaseCase("Running", demo(40, 0.1)),
    PhaseCase("Paused", demo(40, 0.1), reach=({"paused": True},),
              while_down=({"paused": False},)),
    PhaseCase("Cancelling", demo(400, 0.1, ignoreStop=True), reach=({"cancel": True},),
              final="Cancelled"),
]


async def _run_phase_case(d: Drill, case: PhaseCase, name: str,
                          fault: Callable[[], Awaitable[None]] | None) -> list[str]:
    names = [name]
    if case.behind_a_blocker:  # hadith runs one at a time
        await d.create(f"{name}-blocker", "hadith", params=demo(30, 0.1))
        await d.phase(f"{name}-blocker", "Running")
        names.append(f"{name}-blocker")
    await d.create(name, "hadith", params=case.params)
    if not case.reach:
        await d.phase(name, case.phase)
    for edit in case.reach:
        await d.phase(name, "Running")
        await d.patch(name, **edit)
    await d.phase(name, case.phase)
    if fault is not None:
        await fault()
    for edit in case.while_down:
        await d.patch(name, **edit)
    if fault is not None:
        d.operator.start()
    return names


@pytest.mark.parametrize("case", PHASE_CASES, ids=[c.phase for c in PHASE_CASES])
async def test_the_operator_killed_in_each_phase_loses_nothing(
        drill: Drill, case: PhaseCase) -> None:
    reference = await _run_phase_case(drill, case, "reference", fault=None)
    before = await drill.settle(*reference)

    async def kill() -> None:
        drill.operator.kill()

    drilled = await _run_phase_case(drill, case, "drilled", fault=kill)
    after = await drill.settle(*drilled)
    assert after["drilled"].phase == case.final
    assert_same_as_uninterrupted(before["reference"], after["drilled"])
    if case.behind_a_blocker:
        assert_same_as_uninterrupted(before["reference-blocker"], after["drilled-blocker"])


async def test_the_operator_killed_before_it_saw_a_new_job_loses_nothing(
        drill: Drill) -> None:
    await drill.create("reference", params=demo(10, 0.05))
    before = await drill.settle("reference")
    drill.operator.kill()
    await drill.create("drilled", params=demo(10, 0.05))
    await drill.patch("drilled", priority=3)  # stamped by the API server, no operator up
    await drill.create("drilled-same", params=demo(10, 0.05))
    drill.operator.start()
    after = await drill.settle("drilled", "drilled-same")
    assert_same_as_uninterrupted(before["reference"], after["drilled-same"])
    assert after["drilled"].user_story == [("create", "alice"), ("priority_change", "alice")]
    assert after["drilled"].system_story == before["reference"].system_story
    assert after["drilled"].control == [("Succeeded", 3)]


# == the control plane and the data stores restarted under running jobs ===================


async def _running(d: Drill, names: list[str], items: int = 60) -> None:
    for name in names:
        await d.create(name, params=demo(items, 0.1))
    for name in names:
        await d.phase(name, "Running")


async def test_the_api_server_restarted_mid_run_loses_nothing(
        cluster: LocalCluster, drill: Drill) -> None:
    await drill.create("reference", params=demo(10, 0.05))
    before = await drill.settle("reference")
    await _running(drill, ["drilled-1", "drilled-2"])
    await asyncio.to_thread(cluster.restart_apiserver, 3.0)
    after = await drill.settle("drilled-1", "drilled-2")
    for name in ("drilled-1", "drilled-2"):
        assert_same_as_uninterrupted(before["reference"], after[name])
    drill.operator_log_is_clean()


async def test_a_redis_restart_mid_run_loses_nothing(redis_server: RedisServer,
                                                     drill: Drill) -> None:
    await drill.create("reference", params=demo(10, 0.05))
    before = await drill.settle("reference")
    await _running(drill, ["drilled-1", "drilled-2"])
    redis_server.stop()
    try:
        await asyncio.sleep(3)  # the outage; what follows waits on outcomes
    finally:
        redis_server.start()  # same port, empty
    after = await drill.settle("drilled-1", "drilled-2")
    for name in ("drilled-1", "drilled-2"):
        assert_same_as_uninterrupted(before["reference"], after[name])
        body = await drill.kube.get(SYNCJOBS, name, drill.namespace)
        assert body["status"]["progress"]["done"] == 60
    drill.operator_log_is_clean()


POSTGRES_DOWN_SECONDS = 60.0


async def _quick_and_paused_by_alice_resumed_by_bob(d: Drill, prefix: str) -> None:
    """`prefix`: a short job; `prefix-paused`: paused by alice, resumed by bob."""
    await d.create(prefix, params=demo(5, 0.05))
    await d.create(f"{prefix}-paused", params=demo(40, 0.1))
    await d.phase(f"{prefix}-paused", "Running")
    await d.patch(f"{prefix}-paused", paused=True)
    await d.phase(f"{prefix}-paused", "Paused")
    await d.patch(f"{prefix}-paused", by="bob", paused=False)


async def test_postgres_stopped_for_a_minute_loses_and_doubles_nothing(
        postgres_server: PostgresServer, drill: Drill) -> None:
    await _quick_and_paused_by_alice_resumed_by_bob(drill, "reference")
    before = await drill.settle("reference", "reference-paused")

    loop = asyncio.get_running_loop()
    postgres_server.stop()
    stopped = loop.time()
    try:
        await _quick_and_paused_by_alice_resumed_by_bob(drill, "drilled")
        await drill.phase("drilled", "Succeeded")
        await drill.phase("drilled-paused", "Succeeded")
        body = await drill.kube.get(SYNCJOBS, "drilled-paused", drill.namespace)
        assert body["status"]["mirror"]["pending"], "entries wait in the status outbox"
        # Mid-outage the operator dies too: what waits is in etcd, not in its memory.
        drill.operator.kill()
        drill.operator.start()
        await asyncio.sleep(max(0.0, POSTGRES_DOWN_SECONDS - (loop.time() - stopped)))
    finally:
        postgres_server.start()
    after = await drill.settle("drilled", "drilled-paused")
    assert_same_as_uninterrupted(before["reference"], after["drilled"])
    assert_same_as_uninterrupted(before["reference-paused"], after["drilled-paused"])
    assert ("resume", "bob") in after["drilled-paused"].story


# == the node side: the kubelet and a runner process ====================================


def _runner_pids(uid: str) -> list[int]:
    """Local processes that run this SyncJob (its runner's container)."""
    return container_pids(contract.ENV_JOB_UID, uid)


async def test_the_kubelet_restarted_mid_run_adopts_its_runners_and_loses_nothing(
        cluster: LocalCluster, drill: Drill) -> None:
    """The kubelet dies under two running jobs; while none runs, alice pauses one: its
    runner acknowledges at a safe point and the Job's suspension deletes its pod, with
    no kubelet to send the SIGTERM that releases the runner. The next kubelet adopts the
    other runner (the same process, never a second one) and obeys the deletion; bob
    resumes, and both traces equal the uninterrupted ones, each on its first attempt."""
    await _quick_and_paused_by_alice_resumed_by_bob(drill, "reference")
    before = await drill.settle("reference", "reference-paused")

    # Long enough that the adopted runner is still at work after the restart.
    uids = {name: await drill.create(name, params=demo(items, 0.1))
            for name, items in (("drilled", 200), ("drilled-paused", 60))}
    for name in uids:
        await drill.phase(name, "Running")
    runners = {name: await eventually(lambda uid=uid: asyncio.to_thread(_runner_pids, uid),
                                      timeout=30, what=f"{name}'s runner process")
               for name, uid in uids.items()}

    async def pause_while_down() -> None:
        await drill.patch("drilled-paused", paused=True)

        async def pod_deleted() -> bool:
            pods = (await drill.kube.list(PODS, drill.namespace, label_selector=(
                f"{JOB_UID_LABEL}={uids['drilled-paused']}")))["items"]
            return bool(pods) and all(p["metadata"].get("deletionTimestamp") for p in pods)

        await eventually(pod_deleted, timeout=30, what="the paused job's pod deleted")
        assert await asyncio.to_thread(_runner_pids, uids["drilled-paused"]) == \
            runners["drilled-paused"], "its runner waits for the SIGTERM nobody sends"

    await cluster.restart_kubelet_async(pause_while_down)
    assert await asyncio.to_thread(_runner_pids, uids["drilled"]) == runners["drilled"]
    await drill.phase("drilled-paused", "Paused")
    await drill.patch("drilled-paused", by="bob", paused=False)
    after = await drill.settle("drilled", "drilled-paused")
    assert_same_as_uninterrupted(before["reference"], after["drilled"])
    assert_same_as_uninterrupted(before["reference-paused"], after["drilled-paused"])
    for name, items in (("drilled", 200), ("drilled-paused", 60)):
        body = await drill.kube.get(SYNCJOBS, name, drill.namespace)
        assert body["status"]["progress"]["done"] == items
    drill.operator_log_is_clean()


async def test_a_sigkilled_runner_is_retried_from_its_checkpoint(drill: Drill) -> None:
    await drill.create("reference", params=demo(10, 0.05), retryAttempts=1)
    before = await drill.settle("reference")
    uid = await drill.create("drilled", params=demo(60, 0.1), retryAttempts=1)
    await drill.phase("drilled", "Running")

    async def checkpointed() -> bool:
        body = await drill.kube.get(SYNCJOBS, "drilled", drill.namespace)
        return int(((body.get("status") or {}).get("progress") or {}).get("done") or 0) >= 5

    await eventually(checkpointed, timeout=30, what="progress before the kill")
    pids = await eventually(lambda: asyncio.to_thread(_runner_pids, uid), timeout=10,
                            what="the runner's process")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    after = await drill.settle("drilled")
    assert_same_as_uninterrupted(before["reference"], after["drilled"], attempts=2)
    body = await drill.kube.get(SYNCJOBS, "drilled", drill.namespace)
    assert body["status"]["progress"]["done"] == 60
    assert body["status"]["result"]["resumedFrom"] >= 5


# == many hands: conflicting editors and a burst of actions ===============================


async def test_five_clients_editing_the_same_jobs_each_edit_audited_once(
        cluster: LocalCluster, drill: Drill) -> None:
    """Read-modify-write with resourceVersion from five clients at once: most writes
    meet a 409 and are redone on a fresh read; each accepted change is audited exactly
    once, under the right name, and the operator's own status writes never conflict."""
    await drill.create("blocker", params=demo(600, 0.1), priority=1)
    await drill.create("blocker-2", params=demo(600, 0.1), priority=1)
    await drill.phase("blocker", "Running")
    await drill.phase("blocker-2", "Running")
    targets = ["storm-1", "storm-2", "storm-3"]
    for name in targets:
        await drill.create(name, params=demo(5, 0.05))
    for name in targets:
        await drill.phase(name, "Queued")
    editors = [("alice", 0), ("alice", 1), ("bob", 2), ("bob", 3), ("alice", 4)]
    clients = [KubeClient(load_connection(cluster.user_kubeconfig(u, drill.namespace)))
               for u, _ in editors]
    accepted: dict[tuple[str, str], int] = {}
    conflicts = 0

    async def edit(client: KubeClient, user: str, seed: int) -> None:
        nonlocal conflicts
        rng = random.Random(seed)
        for _ in range(12):
            name = rng.choice(targets)
            while True:
                body = await client.get(SYNCJOBS, name, drill.namespace)
                current = int(body["spec"].get("priority", 5))
                body["spec"]["priority"] = rng.choice([p for p in range(1, 10)
                                                       if p != current])
                try:
                    await client.replace(SYNCJOBS, name, body, drill.namespace)
                except ApiError as err:
                    if err.status != 409:
                        raise
                    conflicts += 1
                    continue
                accepted[(name, user)] = accepted.get((name, user), 0) + 1
                break

    try:
        await asyncio.gather(*(edit(c, u, s) for c, (u, s) in zip(clients, editors,
                                                                  strict=True)))
    finally:
        for client in clients:
            await client.close()
    assert conflicts > 0, "the storm made no conflict: it tested nothing"
    for name in [*targets, "blocker", "blocker-2"]:
        await drill.patch(name, cancel=True)
    traces = await drill.settle(*targets, "blocker", "blocker-2")
    for name in targets:
        changes = [by for action, by in traces[name].story if action == "priority_change"]
        for user in ("alice", "bob"):
            assert changes.count(user) == accepted.get((name, user), 0), (name, user)
        final = int((await drill.kube.get(SYNCJOBS, name, drill.namespace))["spec"]["priority"])
        assert traces[name].control == [("Cancelled", final)]
        _priority_chain_is_unbroken(drill.url, traces[name].uid, final)
    drill.operator_log_is_clean()


def _priority_chain_is_unbroken(url: str, uid: str, final: int) -> None:
    """Each recorded change starts where the previous one ended and the last ends at the
    stored value: no change was lost between two others, none recorded twice."""
    chain = [meta for (meta,) in rows(
        url, "select metadata from sync_job_audit_logs where job_uid = %s and action = "
             "'priority_change' order by split_part(idempotency_key, ':', 2)::bigint", uid)]
    value = 5
    for meta in chain:
        assert int(meta["from"]) == value, chain
        value = int(meta["to"])
    assert value == final, chain


BURST_JOBS = 50
ACTIONS_PER_JOB = 10  # 500 in all: pause, resume, priority changes, then cancel


async def test_a_burst_of_500_control_actions_is_audited_exactly(drill: Drill) -> None:
    await drill.create("blocker", params=demo(600, 0.1), priority=1)
    await drill.create("blocker-2", params=demo(600, 0.1), priority=1)
    names = [f"burst-{i:02d}" for i in range(BURST_JOBS)]
    for name in names:
        await drill.create(name, params=demo(5, 0.05))
    for name in names:
        await drill.phase(name, "Queued", timeout=90)

    async def act(name: str) -> None:
        for priority in (2, 7, 3, 8):
            await drill.patch(name, priority=priority)
        await drill.patch(name, paused=True)
        await drill.patch(name, paused=False)
        for priority in (4, 6, 9):
            await drill.patch(name, priority=priority)
        await drill.patch(name, cancel=True)

    await asyncio.gather(*(act(name) for name in names))
    for name in ("blocker", "blocker-2"):
        await drill.patch(name, cancel=True)
    traces = await drill.settle(*names, "blocker", "blocker-2", timeout=240)
    expected = [("create", "alice"), *[("priority_change", "alice")] * 4,
                ("pause", "alice"), ("resume", "alice"),
                *[("priority_change", "alice")] * 3, ("cancel", "alice")]
    assert len(expected) - 1 == ACTIONS_PER_JOB
    for name in names:
        assert traces[name].user_story == expected, name
        assert traces[name].phase == "Cancelled"
        assert traces[name].control == [("Cancelled", 9)]
        _priority_chain_is_unbroken(drill.url, traces[name].uid, 9)
    [(count,)] = rows(drill.url, "select count(*) from sync_job_audit_logs where "
                                 "performed_by = 'alice' and action <> 'create'")
    assert count == BURST_JOBS * ACTIONS_PER_JOB + 2  # and the blockers' cancels
    drill.operator_log_is_clean()
