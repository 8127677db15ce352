"""SyncSchedule against the real API server, with a controllable clock.

The schedule controller runs in-process (the operator's Runtime, schedules only,
with a ManualClock), so a test moves time to just after a tick instead of
sleeping until 03:00. Ticks, names, history and status are all real objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync_operator.api.common import API_VERSION, SYNCJOBS, SYNCSCHEDULES
from sync_operator.app.clock import ManualClock
from sync_operator.app.runtime import Runtime
from sync_operator.app.settings import OperatorSettings
from sync_operator.kube import ApiError, KubeClient, load_connection
from testkit.cluster import LocalCluster
from testkit.servers import RedisServer
from testkit.syncjobs import events_of
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
SCHEDULE_LABEL = "sync.jobcontrol.io/schedule"
# After the cluster's real "now", so the schedule's creationTimestamp is in the past.
START = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)

RuntimeFactory = Callable[..., Any]


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def start_runtime(cluster: LocalCluster, redis_server: RedisServer, crds: list[str],
                        namespace: str, clock: ManualClock) -> AsyncIterator[RuntimeFactory]:
    runtimes: list[Runtime] = []

    async def start() -> Runtime:
        settings = OperatorSettings(
            namespace=namespace, redis_url=redis_server.url, controllers=["schedules"],
            lease_namespace=namespace, lease_duration_seconds=3,
            lease_renew_deadline_seconds=2, lease_retry_period_seconds=0.5, metrics_port=0)
        runtime = Runtime(settings, KubeClient(load_connection(cluster.admin_kubeconfig)),
                          clock)
        await runtime.start()
        runtimes.append(runtime)
        return runtime

    yield start
    for runtime in runtimes:
        await runtime.stop()


def schedule(name: str, cron: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": {"name": name},
            "spec": {"jobType": "prayer", "schedule": cron, **spec}}


async def jobs_of(kube: KubeClient, ns: str, name: str) -> list[dict[str, Any]]:
    """The schedule's SyncJobs not being deleted. A pruned job waits for the operator's
    finalizer (put on at create by the API server), and no SyncJob controller runs in
    these tests to remove it: its deletion is what the schedule controller decided."""
    items = (await kube.list(SYNCJOBS, ns, label_selector=f"{SCHEDULE_LABEL}={name}"))["items"]
    return sorted((j for j in items if not j["metadata"].get("deletionTimestamp")),
                  key=lambda j: j["metadata"]["name"])


def scheduled_times(jobs: list[dict[str, Any]]) -> list[str]:
    return [j["metadata"]["annotations"]["sync.jobcontrol.io/scheduled-time"] for j in jobs]


async def tick(runtime: Runtime, kube: KubeClient, ns: str, name: str, clock: ManualClock,
               at: datetime) -> None:
    """Move the clock to `at` and let the schedule controller look (as its timer would)."""
    clock.set(at)
    before = runtime.schedules.reconciles
    runtime.on_schedule(await kube.get(SYNCSCHEDULES, name, ns))

    async def looked() -> bool:
        return runtime.schedules.reconciles > before and runtime.schedule_queue.idle

    await eventually(looked, timeout=10, what="schedule reconciled")


async def wait_jobs(kube: KubeClient, ns: str, name: str, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        jobs = await jobs_of(kube, ns, name)
        return jobs if len(jobs) == count else None

    return await eventually(enough, timeout=15, what=f"{count} jobs of {name}")


async def finish(kube: KubeClient, ns: str, job: str, phase: str, at: datetime) -> None:
    """Mark a scheduled SyncJob finished (no SyncJob controller runs in these tests)."""
    await kube.patch(SYNCJOBS, job, {"status": {
        "phase": phase, "completedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}}, ns,
        subresource="status")


async def test_ticks_on_time_in_a_non_utc_zone_across_spring_forward(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime()
    await kube.create(SYNCSCHEDULES, schedule(
        "berlin", "0 3 * * *", timeZone="Europe/Berlin", concurrencyPolicy="Allow",
        startingDeadlineSeconds=600), namespace)
    await tick(runtime, kube, namespace, "berlin", clock, START)
    assert await jobs_of(kube, namespace, "berlin") == []  # 26 Mar 03:00 is long past
    status = (await kube.get(SYNCSCHEDULES, "berlin", namespace))["status"]
    assert status["nextScheduleTime"] == "2027-03-27T02:00:00Z"  # 03:00 CET

    await tick(runtime, kube, namespace, "berlin", clock, datetime(2027, 3, 27, 1, 59, 50,
                                                                  tzinfo=UTC))
    assert await jobs_of(kube, namespace, "berlin") == []  # ten seconds early: nothing
    await tick(runtime, kube, namespace, "berlin", clock, datetime(2027, 3, 27, 2, 0, 5,
                                                                  tzinfo=UTC))
    await wait_jobs(kube, namespace, "berlin", 1)
    status = (await kube.get(SYNCSCHEDULES, "berlin", namespace))["status"]
    assert status["lastScheduleTime"] == "2027-03-27T02:00:00Z"
    assert status["nextScheduleTime"] == "2027-03-28T01:00:00Z"  # 03:00 CEST after the change
    await tick(runtime, kube, namespace, "berlin", clock, datetime(2027, 3, 28, 1, 0, 5,
                                                                  tzinfo=UTC))
    jobs = await wait_jobs(kube, namespace, "berlin", 2)
    assert scheduled_times(jobs) == ["2027-03-27T02:00:00Z", "2027-03-28T01:00:00Z"]
    first = jobs[0]
    assert first["spec"]["scheduleRef"] == "berlin"
    assert first["metadata"]["ownerReferences"][0]["kind"] == "SyncSchedule"
    reasons = [e["reason"] for e in await events_of(kube, namespace, "berlin")]
    assert reasons.count("SuccessfulCreate") == 2
    assert "MissedSchedule" in reasons  # the 26 March run, past its starting deadline


async def test_forbid_skips_while_a_job_is_active(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime()
    await kube.create(SYNCSCHEDULES, schedule("hourly", "0 * * * *",
                                              concurrencyPolicy="Forbid"), namespace)
    await tick(runtime, kube, namespace, "hourly", clock, datetime(2027, 3, 26, 13, 0, 1,
                                                                  tzinfo=UTC))
    [job] = await wait_jobs(kube, namespace, "hourly", 1)
    await tick(runtime, kube, namespace, "hourly", clock, datetime(2027, 3, 26, 14, 0, 1,
                                                                  tzinfo=UTC))
    assert len(await jobs_of(kube, namespace, "hourly")) == 1
    assert "ConcurrencyForbidden" in [e["reason"] for e in
                                      await events_of(kube, namespace, "hourly")]
    await finish(kube, namespace, job["metadata"]["name"], "Succeeded",
                 datetime(2027, 3, 26, 14, 10, tzinfo=UTC))
    await tick(runtime, kube, namespace, "hourly", clock, datetime(2027, 3, 26, 15, 0, 1,
                                                                  tzinfo=UTC))
    jobs = await wait_jobs(kube, namespace, "hourly", 2)
    assert scheduled_times(jobs)[1] == "2027-03-26T15:00:00Z"
    status = (await kube.get(SYNCSCHEDULES, "hourly", namespace))["status"]
    assert status["lastSuccessfulTime"] == "2027-03-26T14:10:00Z"
    assert status["activeCount"] == 1


async def test_replace_cancels_the_active_job_and_allow_runs_both(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime()
    await kube.create(SYNCSCHEDULES, schedule("replace", "0 * * * *",
                                              concurrencyPolicy="Replace"), namespace)
    await kube.create(SYNCSCHEDULES, schedule("allow", "0 * * * *",
                                              concurrencyPolicy="Allow"), namespace)
    for hour in (13, 14):
        at = datetime(2027, 3, 26, hour, 0, 1, tzinfo=UTC)
        await tick(runtime, kube, namespace, "replace", clock, at)
        await tick(runtime, kube, namespace, "allow", clock, at)
    replaced = await wait_jobs(kube, namespace, "replace", 2)
    assert replaced[0]["spec"].get("cancel") is True
    assert replaced[1]["spec"].get("cancel", False) is False
    allowed = await wait_jobs(kube, namespace, "allow", 2)
    assert not any(j["spec"].get("cancel") for j in allowed)


async def test_suspend_holds_ticks_and_resume_follows_the_starting_deadline(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime()
    await kube.create(SYNCSCHEDULES, schedule(
        "paused", "0 * * * *", suspend=True, startingDeadlineSeconds=300,
        concurrencyPolicy="Allow"), namespace)
    await tick(runtime, kube, namespace, "paused", clock, datetime(2027, 3, 26, 13, 0, 1,
                                                                  tzinfo=UTC))
    assert await jobs_of(kube, namespace, "paused") == []
    status = (await kube.get(SYNCSCHEDULES, "paused", namespace))["status"]
    assert "nextScheduleTime" not in status
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Suspended")

    # Resumed 2 minutes after the 14:00 tick: within the 300 s deadline, it runs.
    await kube.patch(SYNCSCHEDULES, "paused", {"spec": {"suspend": False}}, namespace)
    await tick(runtime, kube, namespace, "paused", clock, datetime(2027, 3, 26, 14, 2,
                                                                  tzinfo=UTC))
    jobs = await wait_jobs(kube, namespace, "paused", 1)
    assert scheduled_times(jobs) == ["2027-03-26T14:00:00Z"]

    # Down from 14:02 to 15:10: the 15:00 tick is past its deadline and is skipped.
    await tick(runtime, kube, namespace, "paused", clock, datetime(2027, 3, 26, 15, 10,
                                                                  tzinfo=UTC))
    assert len(await jobs_of(kube, namespace, "paused")) == 1
    status = (await kube.get(SYNCSCHEDULES, "paused", namespace))["status"]
    assert status["lastScheduleTime"] == "2027-03-26T15:00:00Z"
    assert "MissedSchedule" in [e["reason"] for e in await events_of(kube, namespace, "paused")]


async def test_history_limits_prune_the_oldest_finished_jobs(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory) -> None:
    runtime = await start_runtime()
    await kube.create(SYNCSCHEDULES, schedule(
        "pruned", "0 * * * *", concurrencyPolicy="Allow", successfulJobsHistoryLimit=2,
        failedJobsHistoryLimit=1), namespace)
    for hour in range(13, 18):
        await tick(runtime, kube, namespace, "pruned", clock,
                   datetime(2027, 3, 26, hour, 0, 1, tzinfo=UTC))
    jobs = await wait_jobs(kube, namespace, "pruned", 5)
    outcomes = ["Succeeded", "Failed", "Succeeded", "Succeeded", "Failed"]
    for n, (job, phase) in enumerate(zip(jobs, outcomes, strict=True)):
        await finish(kube, namespace, job["metadata"]["name"], phase,
                     datetime(2027, 3, 26, 13 + n, 30, tzinfo=UTC))
    await tick(runtime, kube, namespace, "pruned", clock, datetime(2027, 3, 26, 17, 45,
                                                                  tzinfo=UTC))

    async def pruned() -> list[str] | None:
        left = [j["metadata"]["annotations"]["sync.jobcontrol.io/scheduled-time"]
                for j in await jobs_of(kube, namespace, "pruned")]
        return left if len(left) == 3 else None

    left = await eventually(pruned, timeout=15, what="history pruned to 2+1")
    # Kept: the two newest successes (15:00, 16:00) and the newest failure (17:00).
    assert left == ["2027-03-26T15:00:00Z", "2027-03-26T16:00:00Z", "2027-03-26T17:00:00Z"]


async def test_operator_restart_between_ticks_loses_no_tick(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory) -> None:
    first = await start_runtime()
    await kube.create(SYNCSCHEDULES, schedule("steady", "0 * * * *", concurrencyPolicy="Allow",
                                              startingDeadlineSeconds=3600), namespace)
    await tick(first, kube, namespace, "steady", clock, datetime(2027, 3, 26, 13, 0, 1,
                                                                tzinfo=UTC))
    await wait_jobs(kube, namespace, "steady", 1)
    await first.stop()  # releases the Lease
    clock.set(datetime(2027, 3, 26, 14, 20, tzinfo=UTC))  # the 14:00 tick passes while down
    second = await start_runtime()
    await eventually(lambda: _true(second.leading), timeout=10, what="new leader")
    jobs = await wait_jobs(kube, namespace, "steady", 2)
    assert scheduled_times(jobs) == ["2027-03-26T13:00:00Z", "2027-03-26T14:00:00Z"]


async def _true(value: bool) -> bool:
    return value


async def test_two_operator_instances_create_each_tick_once(
        kube: KubeClient, namespace: str, clock: ManualClock,
        start_runtime: RuntimeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = await start_runtime(), await start_runtime()
    await eventually(lambda: _true(one.leading or two.leading), timeout=10, what="a leader")
    assert not (one.leading and two.leading)
    leader, standby = (one, two) if one.leading else (two, one)
    await kube.create(SYNCSCHEDULES, schedule("shared", "*/10 * * * *",
                                              concurrencyPolicy="Allow"), namespace)
    for count, minute in enumerate((10, 20, 30), start=1):
        at = datetime(2027, 3, 26, 12, minute, 1, tzinfo=UTC)
        clock.set(at)
        body = await kube.get(SYNCSCHEDULES, "shared", namespace)
        one.on_schedule(body)
        two.on_schedule(body)
        # The tick is acted on: its job exists and lastScheduleTime records it.
        await wait_jobs(kube, namespace, "shared", count)
        await eventually(lambda at=at: _last_schedule_time_is(kube, namespace, "shared",
                                                              at.replace(second=0)),
                         timeout=30, what=f"lastScheduleTime {at:%H:%M}")
    jobs = await wait_jobs(kube, namespace, "shared", 3)
    assert scheduled_times(jobs) == ["2027-03-26T12:10:00Z", "2027-03-26T12:20:00Z",
                                     "2027-03-26T12:30:00Z"]
    assert (one.leading, two.leading) == (leader is one, leader is two)  # no hand-over
    assert (leader.schedules.created, standby.schedules.created) == (3, 0)
    assert standby.schedules.reconciles == 0  # the standby looked at nothing

    # The leader's 12:30 job has finished, and its lastScheduleTime write is lost (as if it
    # crashed between the create and the status write). The next leader then sees the
    # 12:30 tick as due again and re-creates its job: the deterministic name answers 409,
    # which must count as "already done".
    tick_job = jobs[2]["metadata"]["name"]
    await finish(kube, namespace, tick_job, "Succeeded", datetime(2027, 3, 26, 12, 35,
                                                                  tzinfo=UTC))
    await kube.patch(SYNCSCHEDULES, "shared",
                     {"status": {"lastScheduleTime": "2027-03-26T12:20:00Z"}}, namespace,
                     subresource="status")
    answers: list[tuple[str, int]] = []  # (name, HTTP status) of the standby's job creates
    real_create = standby.client.create

    async def recording_create(res: Any, obj: dict[str, Any], namespace: str | None = None,
                               *args: Any, **kwargs: Any) -> dict[str, Any]:
        if res is not SYNCJOBS:
            return await real_create(res, obj, namespace, *args, **kwargs)
        try:
            created = await real_create(res, obj, namespace, *args, **kwargs)
        except ApiError as err:
            answers.append((obj["metadata"]["name"], err.status))
            raise
        answers.append((obj["metadata"]["name"], 201))
        return created

    monkeypatch.setattr(standby.client, "create", recording_create)
    await leader.stop()
    await eventually(lambda: _true(standby.leading), timeout=10, what="standby takes over")
    # The new leader's first pass (clock still at 12:30:01) repairs lastScheduleTime...
    await eventually(lambda: _last_schedule_time_is(
        kube, namespace, "shared", datetime(2027, 3, 26, 12, 30, tzinfo=UTC)),
        timeout=30, what="lastScheduleTime repaired by the new leader")
    # ...through the 409 path: it did try to create the 12:30 job, the API server answered
    # AlreadyExists, and nothing was created or announced.
    assert answers
    assert set(answers) == {(tick_job, 409)}
    assert standby.schedules.created == 0
    jobs = await jobs_of(kube, namespace, "shared")
    assert scheduled_times(jobs) == ["2027-03-26T12:10:00Z", "2027-03-26T12:20:00Z",
                                     "2027-03-26T12:30:00Z"]
    reasons = [e["reason"] for e in await events_of(kube, namespace, "shared")]
    assert reasons.count("SuccessfulCreate") == 3

    clock.set(START + timedelta(minutes=40, seconds=1))
    standby.on_schedule(await kube.get(SYNCSCHEDULES, "shared", namespace))
    jobs = await wait_jobs(kube, namespace, "shared", 4)
    assert scheduled_times(jobs)[3] == "2027-03-26T12:40:00Z"
    assert standby.schedules.created == 1
    assert set(answers) == {(tick_job, 409), (jobs[3]["metadata"]["name"], 201)}


async def _last_schedule_time_is(kube: KubeClient, ns: str, name: str, at: datetime) -> bool:
    status = (await kube.get(SYNCSCHEDULES, name, ns)).get("status") or {}
    return bool(status.get("lastScheduleTime") == at.strftime("%Y-%m-%dT%H:%M:%SZ"))
