"""The console's API under each user's own rights: what alice (edit in two namespaces),
bob (edit in one) and carol (view) may see and do, and that what they do is stamped
and audited in their own names."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from console_helpers import ConsoleUnderTest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import SERVICEACCOUNTS
from testkit.cluster import LocalCluster
from testkit.release import service_account_with
from testkit.syncjobs import syncjob
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
DEMO = {"task": "demo", "items": 200, "unitSeconds": 0.2}


async def _create(kube: KubeClient, namespace: str, name: str, **labels: str) -> None:
    body = syncjob(name, "quran", params=DEMO, paused=True)
    body["metadata"]["labels"] = labels
    await kube.create(SYNCJOBS, body, namespace)


async def _listed(console: ConsoleUnderTest, namespace: str, user: str) -> tuple[int, Any]:
    return await console.call("GET", f"/api/v1/namespaces/{namespace}/syncjobs", user)


async def test_each_user_reads_only_where_kubectl_would_let_them(
        console: ConsoleUnderTest, kube: KubeClient) -> None:
    ns, other = console.namespace, console.other
    await _create(kube, ns, "here")
    await _create(kube, other, "there")
    assert (await console.call("GET", "/api/v1/whoami", "alice"))[1]["user"] == "alice"
    assert (await console.call("GET", "/api/v1/whoami", None))[0] == 401
    assert (await console.call("GET", "/api/v1/whoami", None, token="forged"))[0] == 401

    async def names(namespace: str, user: str) -> set[str] | None:
        status, body = await _listed(console, namespace, user)
        return {j["metadata"]["name"] for j in body["items"]} if status == 200 else None

    assert await eventually(lambda: names(ns, "alice"), what="alice's list") == {"here"}
    assert await names(other, "alice") == {"there"}
    assert await names(ns, "bob") == {"here"}
    status, body = await _listed(console, other, "bob")
    assert status == 403
    assert 'User "bob" cannot list syncjobs' in body["detail"]
    assert await names(ns, "carol") == {"here"}
    assert (await console.call("GET", f"/api/v1/namespaces/{other}/syncjobs/there",
                               "bob"))[0] == 403
    assert (await console.call("GET", f"/api/v1/namespaces/{other}/history", "bob"))[0] == 403

    _, alice_can = await console.call("GET", f"/api/v1/namespaces/{ns}/access", "alice")
    _, carol_can = await console.call("GET", f"/api/v1/namespaces/{ns}/access", "carol")
    assert alice_can["pause"]
    assert alice_can["delete"]
    assert alice_can["create"]
    assert not any(carol_can.values()), carol_can


async def test_actions_go_as_the_user_and_are_stamped_and_audited_in_their_names(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any,
        database_url: str) -> None:
    ns = console.namespace
    start_operator(database_url=database_url)
    await _create(kube, ns, "steered")
    status, body = await console.call(
        "POST", f"/api/v1/namespaces/{ns}/syncjobs/steered/priority?priority=2", "alice")
    assert (status, body["ok"]) == (200, True)
    status, body = await console.call(
        "POST", f"/api/v1/namespaces/{ns}/syncjobs/steered/cancel", "carol")
    assert status == 403
    assert "carol" in body["detail"]
    stored = await kube.get(SYNCJOBS, "steered", ns)
    assert stored["spec"]["priority"] == 2
    assert not stored["spec"].get("cancel")
    assert (await console.call("POST", f"/api/v1/namespaces/{ns}/syncjobs/steered/cancel",
                               "bob"))[0] == 200

    async def audited() -> list[tuple[str, str]] | None:
        _, rows = await console.call(
            "GET", f"/api/v1/namespaces/{ns}/audit?search=steered&limit=50", "carol")
        people = sorted((r["action"], r["user"]) for r in rows
                        if r["action"] in {"create", "priority_change", "cancel"})
        return people if len(people) == 3 else None

    assert await eventually(audited, timeout=60, what="three audited actions") == [
        ("cancel", "bob"), ("create", "admin"), ("priority_change", "alice")]

    async def in_history() -> list[Any] | None:
        _, rows = await console.call(
            "GET", f"/api/v1/namespaces/{ns}/history?phase=Cancelled", "carol")
        return rows or None

    rows = await eventually(in_history, timeout=60, what="the cancelled job in history")
    assert [r["name"] for r in rows] == ["steered"]
    status, stats = await console.call("GET", f"/api/v1/namespaces/{ns}/analytics", "carol")
    assert status == 200
    assert [(s["job_type"], s["finished"], s["succeeded"]) for s in stats] == [("quran", 1, 0)]


async def test_a_bulk_action_by_selector_answers_one_result_per_job(
        console: ConsoleUnderTest, kube: KubeClient) -> None:
    ns, other = console.namespace, console.other
    for name in ("b-1", "b-2", "b-3"):
        await _create(kube, ns, name, batch="nightly")
    await _create(kube, ns, "b-other", batch="weekly")
    await _create(kube, other, "o-1", batch="nightly")
    status, results = await console.call("POST", f"/api/v1/namespaces/{ns}/bulk", "alice",
                                         json={"action": "priority", "priority": 1,
                                               "selector": "batch=nightly"})
    assert status == 200
    assert [(r["name"], r["ok"]) for r in results] == [
        ("b-1", True), ("b-2", True), ("b-3", True)]
    priorities = {j["metadata"]["name"]: j["spec"].get("priority")
                  for j in (await kube.list(SYNCJOBS, ns))["items"]}
    assert priorities == {"b-1": 1, "b-2": 1, "b-3": 1, "b-other": 5}  # the default
    status, results = await console.call("POST", f"/api/v1/namespaces/{other}/bulk", "bob",
                                         json={"action": "cancel", "names": ["o-1"]})
    assert status == 200
    assert [(r["name"], r["ok"], r["status"]) for r in results] == [("o-1", False, 403)]
    assert not (await kube.get(SYNCJOBS, "o-1", other))["spec"].get("cancel")
    status, body = await console.call("POST", f"/api/v1/namespaces/{ns}/bulk", "alice",
                                      json={"action": "priority", "names": ["b-1"]})
    assert status == 422
    assert "priority" in json.dumps(body)


async def _events(resp: aiohttp.ClientResponse) -> Any:
    """Parse an SSE stream into (event, id, data) tuples as they arrive."""
    event: dict[str, Any] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "event" in event:
                yield event.get("event"), event.get("id"), json.loads(event["data"])
            event = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            event[key] = value


async def test_the_live_stream_sends_a_snapshot_then_batched_changes_and_resumes(
        console: ConsoleUnderTest, kube: KubeClient) -> None:
    ns = console.namespace
    await _create(kube, ns, "live-1")
    # unsafe=True: aiohttp keeps no cookie from an IP address unless told (browsers do).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(console.url + "/api/v1/session",
                             json={"token": console.tokens["alice"]}) as login:
            assert login.status == 200
            assert "httponly" in login.headers["Set-Cookie"].lower()
        path = f"{console.url}/api/v1/namespaces/{ns}/watch/syncjobs"
        async with http.get(path, timeout=aiohttp.ClientTimeout(total=60)) as resp:
            assert resp.status == 200  # by the cookie alone
            events = _events(resp)
            kind, first_id, data = await anext(events)
            assert kind == "snapshot"
            assert [j["metadata"]["name"] for j in data["jobs"]] == ["live-1"]
            for priority in (2, 3, 4):  # three writes in a row: one batch, latest state
                await kube.patch(SYNCJOBS, "live-1", {"spec": {"priority": priority}}, ns)
            seen: list[int] = []
            last_id = first_id
            while 4 not in seen:
                kind, last_id, data = await asyncio.wait_for(anext(events), 30)
                assert kind == "changes"
                seen += [c["job"]["spec"]["priority"] for c in data["changes"]]
            assert seen[-1] == 4  # the latest state last
            assert len(seen) <= 3  # each job at most once per batch
        await kube.patch(SYNCJOBS, "live-1", {"spec": {"priority": 7}}, ns)
        await _create(kube, ns, "live-2")
        # Resumed from the last id: only what changed since, no snapshot.
        async with http.get(path, headers={"Last-Event-ID": str(last_id)},
                            timeout=aiohttp.ClientTimeout(total=60)) as resp:
            resumed = _events(resp)
            got: dict[str, Any] = {}
            while set(got) != {"live-1", "live-2"}:
                kind, _, data = await asyncio.wait_for(anext(resumed), 30)
                assert kind == "changes"  # never a snapshot: it caught up by version
                got |= {c["job"]["metadata"]["name"]: c["job"]["spec"].get("priority")
                        for c in data["changes"]}
            assert got == {"live-1": 7, "live-2": 5}


async def test_a_live_stream_ends_when_its_token_stops_being_valid(
        console: ConsoleUnderTest, kube: KubeClient, cluster: LocalCluster) -> None:
    """Long-lived streams are re-checked (every second here): deleting the
    ServiceAccount invalidates its token, and the stream says so and ends."""
    ns = console.namespace
    await service_account_with(kube, ns, "watcher", ("Role", "carol-view"))
    token = load_connection(cluster.service_account_kubeconfig(ns, "watcher")).token
    assert token
    async with aiohttp.ClientSession() as http, http.get(
            f"{console.url}/api/v1/namespaces/{ns}/watch/syncjobs",
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=60)) as resp:
        assert resp.status == 200
        events = _events(resp)
        assert (await anext(events))[0] == "snapshot"
        await kube.delete(SERVICEACCOUNTS, "watcher", ns)
        kinds = []
        async for kind, _, _ in events:
            kinds.append(kind)
        assert kinds[-1:] == ["expired"]
