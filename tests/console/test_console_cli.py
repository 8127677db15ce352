"""`kubectl sync` parity with the console: history, audit and stats through the console's
API with the user's own credentials, the console handover, and schedule edits."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from console_helpers import ConsoleUnderTest

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.kube import KubeClient
from testkit.cluster import LocalCluster
from testkit.kubectl_sync import ksync, ok
from testkit.syncjobs import syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster


def _as(kubectl_env: dict[str, str], cluster: LocalCluster, user: str, namespace: str
        ) -> dict[str, str]:
    return {**kubectl_env, "KUBECONFIG": str(cluster.user_kubeconfig(user, namespace))}


async def test_history_and_audit_under_the_users_rights(
        console: ConsoleUnderTest, kube: KubeClient, cluster: LocalCluster,
        kubectl_env: dict[str, str], start_operator: Any, database_url: str) -> None:
    ns, other = console.namespace, console.other
    start_operator(database_url=database_url)
    alice = _as(kubectl_env, cluster, "alice", ns)
    await kube.create(SYNCJOBS, syncjob("logged", "prayer", params={
        "task": "demo", "items": 5, "unitSeconds": 0.05}), ns)
    await wait_phase(kube, ns, "logged", "Succeeded", timeout=90)

    async def audited() -> list[dict[str, Any]] | None:
        out = await ok(alice, "audit", "--console", console.url, "--search", "logged",
                       "-o", "json")
        rows: list[dict[str, Any]] = json.loads(out)
        return rows if any(r["action"] == "succeeded" for r in rows) else None

    rows = await eventually(audited, timeout=60, what="the job's audit rows")
    assert ("create", "admin") in {(r["action"], r["user"]) for r in rows}
    history = json.loads(await ok({**alice, "SYNC_CONSOLE_URL": console.url}, "history",
                                  "--phase", "Succeeded", "-o", "json"))
    assert [r["name"] for r in history] == ["logged"]
    table = await ok({**alice, "SYNC_CONSOLE_URL": console.url}, "history")
    assert "logged" in table
    assert "Succeeded" in table
    stats = json.loads(await ok(alice, "stats", "--console", console.url, "--bucket", "minute",
                                "-o", "json"))
    assert [(t["job_type"], t["finished"], t["success_rate"]) for t in stats["types"]] == [
        ("prayer", 1, 1.0)]
    assert [(p["job_type"], p["succeeded"]) for p in stats["throughput"]] == [("prayer", 1)]
    drawn = await ok(alice, "stats", "--console", console.url, "--bucket", "minute")
    assert "100%" in drawn
    assert "Throughput per minute" in drawn

    bob = _as(kubectl_env, cluster, "bob", other)
    refused = await ksync(bob, "history", "--console", console.url)
    assert refused.code == 1
    assert 'User "bob" cannot list syncjobs' in refused.err
    no_console = await ksync(alice, "audit")
    assert no_console.code == 2
    assert "SYNC_CONSOLE_URL" in no_console.err


async def test_schedules_set_changes_only_what_is_given(
        kube: KubeClient, namespace: str, kubectl_env: dict[str, str],
        crds: list[str]) -> None:
    await kube.create(SYNCSCHEDULES, {
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
        "metadata": {"name": "nightly"},
        "spec": {"jobType": "quran", "schedule": "0 3 * * *", "priority": 5}}, namespace)
    env, ns = kubectl_env, ["-n", namespace]
    out = await ok(env, "schedules", "set", "nightly", "--cron", "30 2 * * *",
                   "--time-zone", "Asia/Riyadh", "--max-concurrency", "2", *ns)
    assert out.startswith("syncschedule.sync.jobcontrol.io/nightly updated")
    spec = (await kube.get(SYNCSCHEDULES, "nightly", namespace))["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["maxConcurrency"], spec["priority"]) == (
        "30 2 * * *", "Asia/Riyadh", 2, 5)
    nothing = await ksync(env, "schedules", "set", "nightly", *ns)
    assert nothing.code == 2
    assert "--cron" in nothing.err
    assert "nightly" in await ok(env, "schedules", *ns)  # the list still lists


async def test_kubectl_sync_console_hands_a_session_over_without_the_token(
        console: ConsoleUnderTest, cluster: LocalCluster, kubectl_env: dict[str, str]
        ) -> None:
    alice = _as(kubectl_env, cluster, "alice", console.namespace)
    url = (await ok(alice, "console", "--console", console.url, "--no-browser")).strip()
    assert url.startswith(console.url + "/?")
    assert console.tokens["alice"] not in url
    code = parse_qs(urlsplit(url).query)["handover"][0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{console.url}/api/v1/session/handover",
                             json={"code": code + "x"}) as resp:
            assert resp.status == 401  # tampered
        async with http.post(f"{console.url}/api/v1/session/handover",
                             json={"code": code}) as resp:
            assert resp.status == 200
            assert (await resp.json())["user"] == "alice"
        async with http.get(f"{console.url}/api/v1/whoami") as resp:  # by the cookie
            assert (await resp.json())["user"] == "alice"
