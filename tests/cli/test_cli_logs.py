"""`kubectl sync logs` as alice: the runner's output from its pod's log, read through the
API server with her own rights (a 403 passed on), following until the runner exits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import PODS
from sync_operator.syncjob.job_builder import LABEL_JOB_UID
from testkit.cluster import LocalCluster
from testkit.kubectl_sync import ksync, ok
from testkit.operator import OperatorProcess
from testkit.syncjobs import grant_pod_logs, grant_users, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster


def events(out: str) -> list[str]:
    """The runner's JSON log lines' events."""
    return [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
async def users(kube: KubeClient, cluster: LocalCluster, namespace: str,
                kubectl_env: dict[str, str]) -> dict[str, dict[str, str]]:
    """alice may read the runner pods' logs here; bob may list the pods, not their logs."""
    await grant_users(kube, namespace)
    await grant_pod_logs(kube, namespace, ["alice"])
    await grant_pod_logs(kube, namespace, ["bob"], logs=False)
    return {user: {**kubectl_env, "KUBECONFIG": str(cluster.user_kubeconfig(user, namespace))}
            for user in ("alice", "bob")}


async def demo(kube: KubeClient, namespace: str, name: str, items: int, unit: float,
               **spec: Any) -> None:
    await kube.create(SYNCJOBS, syncjob(name, "quran", params={
        "task": "demo", "items": items, "unitSeconds": unit}, **spec), namespace)


async def test_logs_shows_the_runners_output_and_tail_cuts_it(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        users: dict[str, dict[str, str]]) -> None:
    await demo(kube, namespace, "done", 3, 0.05)
    await wait_phase(kube, namespace, "done", "Succeeded", timeout=90)
    out = await ok(users["alice"], "logs", "done")
    seen = events(out)
    assert "runner.started" in seen
    assert seen[-1] == "runner.exit"
    last = await ok(users["alice"], "logs", "done", "--tail", "1")
    assert last == out.splitlines(keepends=True)[-1]


async def test_logs_follow_prints_until_the_runner_exits(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        users: dict[str, dict[str, str]]) -> None:
    await demo(kube, namespace, "slow", 16, 0.25)  # about 4 s of work
    job = await wait_phase(kube, namespace, "slow", "Running", timeout=60)

    async def pod_running() -> bool:
        pods = (await kube.list(PODS, namespace, label_selector=f"{LABEL_JOB_UID}="
                                f"{job['metadata']['uid']}"))["items"]
        return any((p.get("status") or {}).get("phase") == "Running" for p in pods)

    await eventually(pod_running, timeout=30, what="the runner pod running")
    out = await ok(users["alice"], "logs", "slow", "-f", timeout=90)
    # It returned by itself: the runner had exited, and said so last.
    assert events(out)[-1] == "runner.exit"
    assert (await kube.get(SYNCJOBS, "slow", namespace))["status"]["phase"] in (
        "Running", "Succeeded")  # the pod ends before the operator records it


async def test_logs_errors_are_clear(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        users: dict[str, dict[str, str]]) -> None:
    missing = await ksync(users["alice"], "logs", "ghost")
    assert missing.code == 1
    assert missing.err.strip() == \
        'Error from server (NotFound): syncjobs.sync.jobcontrol.io "ghost" not found'

    await demo(kube, namespace, "held", 3, 0.05, paused=True)
    phase = (await wait_phase(kube, namespace, "held", "Paused", "Queued"))["status"]["phase"]
    waiting = await ksync(users["alice"], "logs", "held")
    assert waiting.code == 1
    assert waiting.err.strip() == f"error: SyncJob held has no runner pod yet (phase {phase})"

    await demo(kube, namespace, "done", 3, 0.05)
    await wait_phase(kube, namespace, "done", "Succeeded", timeout=90)
    refused = await ksync(users["bob"], "logs", "done")
    assert refused.code == 1
    assert refused.err.startswith("Error from server (Forbidden): ")
    assert 'User "bob" cannot get resource "pods/log"' in refused.err

    usage = await ksync(users["alice"], "logs", "done", "--tail", "-2")
    assert usage.code == 2
