"""The console's job view, schedule manager and analytics, under each user's own rights:
Events and the audit trail of one job, schedules changed as the user (the API server's
refusals passed on, field named), throughput and a timeline from the mirror."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from console_helpers import ConsoleUnderTest, let_read_events

from sync_operator.api import SYNCSCHEDULES
from sync_operator.api.common import API_VERSION, SYNCJOBS
from sync_operator.kube import KubeClient
from testkit.syncjobs import syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
QUICK = {"task": "demo", "items": 5, "unitSeconds": 0.05}


async def test_the_job_view_and_analytics_tell_each_run_and_who_did_what(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any,
        database_url: str) -> None:
    ns = console.namespace
    await let_read_events(kube, ns, "alice")
    start_operator(database_url=database_url)
    await kube.create(SYNCJOBS, syncjob("viewed", "quran", params=QUICK), ns)
    await kube.create(SYNCJOBS, syncjob("stopped", "prayer", params=QUICK, paused=True), ns)
    assert (await console.call("POST", f"/api/v1/namespaces/{ns}/syncjobs/stopped/cancel",
                               "alice"))[0] == 200
    done = await wait_phase(kube, ns, "viewed", "Succeeded", timeout=90)
    await wait_phase(kube, ns, "stopped", "Cancelled", timeout=60)
    runner = done["status"]["jobRef"]

    async def events() -> list[dict[str, Any]] | None:
        status, body = await console.call(
            "GET", f"/api/v1/namespaces/{ns}/syncjobs/viewed/events", "alice")
        assert status == 200, body
        about = {e["object"] for e in body}
        return body if about == {"SyncJob/viewed", f"Job/{runner}"} else None

    shown = await eventually(events, timeout=30, what="Events of the job and its Job")
    assert all(e["reason"] and e["last_seen"] for e in shown)
    seen = [datetime.fromisoformat(e["last_seen"]) for e in shown]
    assert seen == sorted(seen, reverse=True)
    status, body = await console.call(
        "GET", f"/api/v1/namespaces/{ns}/syncjobs/viewed/events", "carol")
    assert status == 403
    assert "carol" in body["detail"]

    uid = done["metadata"]["uid"]

    async def trail() -> list[dict[str, Any]] | None:
        _, rows = await console.call("GET", f"/api/v1/namespaces/{ns}/audit?uid={uid}",
                                     "carol")
        return rows if any(r["action"] == "create" for r in rows) else None

    rows = await eventually(trail, timeout=60, what="the job's audit trail")
    assert {r["name"] for r in rows} == {"viewed"}

    async def counted() -> list[tuple[str, int, int, int]] | None:
        _, points = await console.call(
            "GET", f"/api/v1/namespaces/{ns}/analytics/throughput?bucket=minute", "carol")
        totals = sorted((p["job_type"], p["succeeded"], p["failed"], p["cancelled"])
                        for p in points)
        return totals if len(totals) == 2 else None

    assert await eventually(counted, timeout=60, what="both runs in the throughput") == [
        ("prayer", 0, 0, 1), ("quran", 1, 0, 0)]
    status, runs = await console.call(
        "GET", f"/api/v1/namespaces/{ns}/analytics/timeline?limit=10", "carol")
    assert status == 200
    by_name = {r["name"]: r for r in runs}
    assert set(by_name) == {"viewed", "stopped"}
    assert by_name["viewed"]["phase"] == "Succeeded"
    assert by_name["viewed"]["started_at"] <= by_name["viewed"]["completed_at"]
    status, body = await console.call(
        "GET", f"/api/v1/namespaces/{console.other}/analytics/timeline", "bob")
    assert status == 403


async def test_the_schedule_manager_changes_schedules_as_the_user(
        console: ConsoleUnderTest, kube: KubeClient) -> None:
    ns = console.namespace
    await kube.create(SYNCSCHEDULES, {
        "apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": {"name": "nightly"},
        "spec": {"jobType": "hadith", "schedule": "0 2 * * *"}}, ns)
    path = f"/api/v1/namespaces/{ns}/syncschedules"
    status, listed = await console.call("GET", path, "alice")
    assert status == 200
    assert [s["metadata"]["name"] for s in listed] == ["nightly"]

    change = {"schedule": "*/5 * * * *", "timeZone": "Asia/Riyadh", "priority": 2,
              "maxConcurrency": 3, "suspend": True}
    status, body = await console.call("PATCH", f"{path}/nightly", "alice", json=change)
    assert status == 200, body
    spec = (await kube.get(SYNCSCHEDULES, "nightly", ns))["spec"]
    assert {k: spec[k] for k in change} == change

    # carol's role here names syncjobs only: the API server refuses her schedules.
    status, body = await console.call("GET", path, "carol")
    assert status == 403
    assert "carol" in body["detail"]
    status, body = await console.call("PATCH", f"{path}/nightly", "carol",
                                      json={"suspend": False})
    assert status == 403
    assert "carol" in body["detail"]
    status, body = await console.call("PATCH", f"{path}/nightly", "alice",
                                      json={"schedule": "every night"})
    assert status == 422
    assert "spec.schedule" in body["detail"]
    status, body = await console.call("PATCH", f"{path}/nightly", "alice",
                                      json={"priority": 11, "cron": "x"})
    assert status == 422
    assert {tuple(e["loc"]) for e in body["detail"]} == {("body", "priority"),
                                                         ("body", "cron")}
    spec = (await kube.get(SYNCSCHEDULES, "nightly", ns))["spec"]
    assert {k: spec[k] for k in change} == change  # the refusals changed nothing


async def test_new_jobs_by_hand_and_from_a_schedule_are_created_as_the_user(
        console: ConsoleUnderTest, kube: KubeClient) -> None:
    ns = console.namespace
    jobs = f"/api/v1/namespaces/{ns}/syncjobs"
    status, made = await console.call("POST", jobs, "alice", json={
        "jobType": "finance", "name": "by-hand", "priority": 2, "params": {"items": 3},
        "paused": True})
    assert status == 201, made
    stored = await kube.get(SYNCJOBS, "by-hand", ns)
    assert {k: stored["spec"][k] for k in ("jobType", "priority", "params", "paused")} == {
        "jobType": "finance", "priority": 2, "params": {"items": 3}, "paused": True}
    status, made = await console.call("POST", jobs, "alice", json={"jobType": "audio"})
    assert status == 201
    assert made["metadata"]["name"].startswith("audio-")

    status, body = await console.call("POST", jobs, "carol", json={"jobType": "audio"})
    assert status == 403
    assert "carol" in body["detail"]
    status, body = await console.call("POST", jobs, "alice", json={"jobType": "music",
                                                                   "priority": 0})
    assert status == 422
    assert {e["loc"][-1] for e in body["detail"]} == {"jobType", "priority"}
    status, body = await console.call("POST", jobs, "alice", json={"jobType": "audio",
                                                                   "name": "Not_A_Name"})
    assert status == 422  # the API server's own refusal, passed on
    assert "Not_A_Name" in body["detail"]

    schedule = await kube.create(SYNCSCHEDULES, {
        "apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": {"name": "weekly"},
        "spec": {"jobType": "hadith", "schedule": "0 3 * * 0", "priority": 4,
                 "jobTemplate": {"params": {"items": 7}}}}, ns)
    status, body = await console.call("POST", f"/api/v1/namespaces/{ns}/syncschedules/weekly/"
                                              "trigger", "carol")
    assert status == 403
    status, run = await console.call("POST", f"/api/v1/namespaces/{ns}/syncschedules/weekly/"
                                             "trigger", "alice")
    assert status == 201, run
    stored = await kube.get(SYNCJOBS, run["metadata"]["name"], ns)
    assert stored["metadata"]["name"].startswith("weekly-manual-")
    assert (stored["spec"]["scheduleRef"], stored["spec"]["priority"],
            stored["spec"]["params"]) == ("weekly", 4, {"items": 7})
    assert [o["uid"] for o in stored["metadata"]["ownerReferences"]] == [
        schedule["metadata"]["uid"]]
