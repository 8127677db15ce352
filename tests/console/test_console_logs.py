"""The console's runner logs, read with the user's own token: alice (who may read pods/log
here) sees the runner's output, tailed or followed to its end; carol (SyncJobs only) is
refused by the API server, and the console, with no rights over pods, passes that on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from console_helpers import ConsoleUnderTest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import PODS
from sync_operator.syncjob.job_builder import LABEL_JOB_UID
from testkit.syncjobs import grant_pod_logs, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster


def events(text: str) -> list[str]:
    return [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]


async def get_logs(console: ConsoleUnderTest, user: str, name: str, **params: str
                   ) -> tuple[int, str, str]:
    """Status, content type and body of the logs route."""
    url = f"{console.url}/api/v1/namespaces/{console.namespace}/syncjobs/{name}/logs"
    async with aiohttp.ClientSession() as http, http.get(
            url, params=params, headers=console.headers(user)) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def demo(kube: KubeClient, namespace: str, name: str, items: int, unit: float,
               **spec: Any) -> None:
    await kube.create(SYNCJOBS, syncjob(name, "quran", params={
        "task": "demo", "items": items, "unitSeconds": unit}, **spec), namespace)


async def test_logs_as_alice_show_the_runners_output_and_tail(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any,
        database_url: str) -> None:
    ns = console.namespace
    await grant_pod_logs(kube, ns, ["alice"])
    start_operator(database_url=database_url)
    await demo(kube, ns, "done", 3, 0.05)
    await wait_phase(kube, ns, "done", "Succeeded", timeout=90)

    status, kind, text = await get_logs(console, "alice", "done")
    assert (status, kind) == (200, "text/plain; charset=utf-8")
    assert "runner.started" in events(text)
    assert events(text)[-1] == "runner.exit"
    status, _, last = await get_logs(console, "alice", "done", tailLines="1")
    assert status == 200
    assert last == text.splitlines(keepends=True)[-1]

    await demo(kube, ns, "held", 3, 0.05, paused=True)
    phase = (await wait_phase(kube, ns, "held", "Paused", "Queued"))["status"]["phase"]
    status, _, body = await get_logs(console, "alice", "held")
    assert status == 404
    assert json.loads(body)["detail"] == \
        f"SyncJob held has no runner pod yet (phase {phase})"
    status, _, body = await get_logs(console, "alice", "ghost")
    assert status == 404
    assert json.loads(body)["detail"] == 'syncjobs.sync.jobcontrol.io "ghost" not found'


async def test_follow_streams_the_output_as_it_is_printed_until_the_runner_exits(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any,
        database_url: str) -> None:
    ns = console.namespace
    await grant_pod_logs(kube, ns, ["alice"])
    start_operator(database_url=database_url)
    await demo(kube, ns, "slow", 16, 0.25)  # about 4 s of work
    job = await wait_phase(kube, ns, "slow", "Running", timeout=60)

    async def pod_running() -> bool:
        pods = (await kube.list(PODS, ns, label_selector=f"{LABEL_JOB_UID}="
                                f"{job['metadata']['uid']}"))["items"]
        return any((p.get("status") or {}).get("phase") == "Running" for p in pods)

    await eventually(pod_running, timeout=30, what="the runner pod running")
    url = f"{console.url}/api/v1/namespaces/{ns}/syncjobs/slow/logs"
    arrivals: list[tuple[float, bytes]] = []
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http, http.get(
            url, params={"follow": "true"}, headers=console.headers("alice")) as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_any():
            arrivals.append((loop.time(), chunk))
    text = b"".join(c for _, c in arrivals).decode()
    assert events(text)[-1] == "runner.exit"
    # Pieces came over seconds as the runner printed them, not all at once at its end.
    assert arrivals[-1][0] - arrivals[0][0] > 1.0


async def test_carol_without_pods_log_is_refused_by_the_api_server(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any,
        database_url: str) -> None:
    ns = console.namespace
    start_operator(database_url=database_url)
    await demo(kube, ns, "done", 3, 0.05)
    await wait_phase(kube, ns, "done", "Succeeded", timeout=90)
    status, _, body = await get_logs(console, "carol", "done")
    assert status == 403
    assert 'User "carol" cannot' in json.loads(body)["detail"]
