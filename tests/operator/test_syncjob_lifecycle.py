"""SyncJob end to end: the operator (a real process) on the real control plane, with
runner pods as real local processes reporting through real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import JOBS, LEASES, PODS
from sync_runner.contract import EVENTS_PATTERN, STATE_FIELD, Keys, RunnerState, RunnerStatus
from testkit.operator import OperatorProcess
from testkit.syncjobs import create_syncjob, events_of, set_spec, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster


def demo(items: int = 20, unit_seconds: float = 0.1, **extra: Any) -> dict[str, Any]:
    return {"task": "demo", "items": items, "unitSeconds": unit_seconds, **extra}


async def progress_done(kube: KubeClient, ns: str, name: str) -> int:
    body = await kube.get(SYNCJOBS, name, ns)
    return int((body.get("status", {}).get("progress") or {}).get("done") or 0)


async def jobs_of(kube: KubeClient, ns: str) -> list[dict[str, Any]]:
    return list((await kube.list(JOBS, ns))["items"])


JOB_UID_LABEL = "sync.jobcontrol.io/job-uid"  # on the Job and its pods (job_builder)


async def pods_of(kube: KubeClient, ns: str, uid: str) -> list[dict[str, Any]]:
    """The runner pods of one SyncJob (any phase), oldest first."""
    items = (await kube.list(PODS, ns, label_selector=f"{JOB_UID_LABEL}={uid}"))["items"]
    return sorted(items, key=lambda p: p["metadata"]["creationTimestamp"])


def conditions_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body.get("status", {}).get("conditions") or []}


async def scrape(op: OperatorProcess) -> dict[str, float]:
    """The operator's /metrics as {'name{labels}': value}."""
    url = f"http://127.0.0.1:{op.settings['metrics_port']}/metrics"
    try:
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    except OSError:
        return {}  # not serving yet
    samples = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def health(op: OperatorProcess) -> str | None:
    url = f"http://127.0.0.1:{op.settings['health_port']}/healthz"
    try:
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    except OSError:
        return None  # not serving yet
    return body.decode()


async def event_seen(kube: KubeClient, ns: str, name: str, reason: str) -> bool:
    return any(e["reason"] == reason for e in await events_of(kube, ns, name))


async def runner_state(client: aioredis.Redis, uid: str) -> RunnerStatus | None:
    """What the runner last published in Redis (the operator reads the same hash)."""
    raw = await client.hget(Keys(uid).state, STATE_FIELD)
    return None if raw is None else RunnerStatus.model_validate_json(raw)


def leader_identity(op: OperatorProcess) -> str | None:
    found = re.findall(r"(\S+) is leading", op.log())
    return found[-1] if found else None


async def lease_holder(kube: KubeClient, ns: str) -> str | None:
    lease = await kube.get_or_none(LEASES, "sync-operator", ns)
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


async def test_syncjob_runs_to_succeeded_with_progress_and_events(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("q1", "quran", params=demo(10, 0.05)))
    body = await wait_phase(kube, namespace, "q1", "Succeeded", timeout=90)
    status = body["status"]
    assert status["progress"]["done"] == 10
    assert status["progress"]["percent"] == 100
    assert status["startedAt"]
    assert status["completedAt"]
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["attempts"] == 1
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Complete"]["status"] == "True"
    assert conditions["Admitted"]["status"] == "True"
    job = await kube.get(JOBS, status["jobRef"], namespace)
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("SyncJob", "q1", True)
    async def scraped() -> str | None:
        url = f"http://127.0.0.1:{operator.settings['metrics_port']}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        page = text.decode()
        return page if 'sync_operator_jobs{phase="Succeeded"} 1.0' in page else None

    metrics = await eventually(scraped, timeout=15, what="metrics page")
    health_url = f"http://127.0.0.1:{operator.settings['health_port']}/healthz"
    health = await asyncio.to_thread(
        lambda: urllib.request.urlopen(health_url, timeout=5).read())
    assert b'"leading": true' in health
    assert "sync_operator_leader 1.0" in metrics
    assert 'sync_operator_phase_transitions_total{to="Succeeded"} 1.0' in metrics
    reasons = [e["reason"] for e in await events_of(kube, namespace, "q1")]
    assert "Admitted" in reasons
    assert "Completed" in reasons


async def test_paused_pending_job_is_held_and_runs_after_resume(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    created = await create_syncjob(kube, namespace, syncjob("held", "hadith", paused=True,
                                                            params=demo(5, 0.05)))
    body = await wait_phase(kube, namespace, "held", "Paused", timeout=30)
    assert body["status"].get("jobRef") is None
    # The operator's verdict on this generation: held, not admitted.
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    conditions = conditions_of(body)
    assert (conditions["Paused"]["status"], conditions["Paused"]["reason"]) \
        == ("True", "HeldWhilePaused")
    assert (conditions["Admitted"]["status"], conditions["Admitted"]["reason"]) \
        == ("False", "HeldWhilePaused")
    # Its Event is recorded after the reconcile's actions: that reconcile is over.
    await eventually(lambda: event_seen(kube, namespace, "held", "HeldWhilePaused"),
                     timeout=30, what="HeldWhilePaused event")
    # And the admitter has looked at it since: a pass counted it Paused, then another ran.
    seen = await eventually(lambda: _passes_counting(operator, "Paused", 1), timeout=30,
                            what="an admission pass that saw the job Paused")
    await eventually(lambda: _metric_above(operator, "sync_operator_admission_passes", seen),
                     timeout=30, what="a later admission pass")
    assert (await scrape(operator))["sync_operator_admission_grants"] == 0
    assert await jobs_of(kube, namespace) == []
    assert await pods_of(kube, namespace, created["metadata"]["uid"]) == []
    await set_spec(kube, namespace, "held", paused=False)
    await wait_phase(kube, namespace, "held", "Succeeded", timeout=60)


async def test_pause_then_resume_continues_from_checkpoint(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("long", "quran", params=demo(60, 0.2)))
    await wait_phase(kube, namespace, "long", "Running", timeout=30)
    await eventually(lambda: _done_at_least(kube, namespace, "long", 5), timeout=30,
                     what="some progress")
    requested = time.monotonic()
    await set_spec(kube, namespace, "long", paused=True)
    paused = await wait_phase(kube, namespace, "long", "Paused", timeout=30)
    pause_latency = time.monotonic() - requested
    done_at_pause = paused["status"]["progress"]["done"]
    assert 5 <= done_at_pause < 60
    conditions = {c["type"]: c for c in paused["status"]["conditions"]}
    assert conditions["Paused"]["reason"] == "PausedAtCheckpoint"

    async def no_pods() -> bool:
        return not (await kube.list(PODS, namespace))["items"]

    await eventually(no_pods, timeout=30, what="pod released while paused")
    job = await kube.get(JOBS, paused["status"]["jobRef"], namespace)
    assert job["spec"]["suspend"] is True

    resumed_at = time.time()
    await set_spec(kube, namespace, "long", paused=False)
    await wait_phase(kube, namespace, "long", "Running", timeout=30)

    # The new pod's own first reports (updatedAt after the resume) start from the
    # checkpoint: progress never falls back below it.
    async def reported_after_resume() -> int | None:
        progress = (await kube.get(SYNCJOBS, "long", namespace))["status"].get("progress", {})
        updated = progress.get("updatedAt")
        if updated and datetime.fromisoformat(updated.replace("Z", "+00:00")).timestamp() \
                >= int(resumed_at):
            return int(progress["done"])
        return None

    first_done = await eventually(reported_after_resume, timeout=30,
                                  what="a report of the new pod")
    assert first_done >= done_at_pause
    done = await wait_phase(kube, namespace, "long", "Succeeded", timeout=90)
    assert done["status"]["progress"]["done"] == 60
    assert done["status"]["result"]["resumedFrom"] == done_at_pause
    print(f"pause took {pause_latency:.2f}s to show as Paused")


async def _done_at_least(kube: KubeClient, ns: str, name: str, n: int) -> bool:
    return await progress_done(kube, ns, name) >= n


async def _passes_counting(op: OperatorProcess, phase: str, count: int) -> float | None:
    """The admission pass count, once the last pass counted `count` jobs in `phase`."""
    samples = await scrape(op)
    if samples.get(f'sync_operator_jobs{{phase="{phase}"}}') == count:
        return samples["sync_operator_admission_passes"]
    return None


async def _metric_above(op: OperatorProcess, name: str, value: float) -> bool:
    return (await scrape(op)).get(name, 0.0) > value


async def test_cancel_while_paused_ends_cancelled_without_a_pod(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    created = await create_syncjob(kube, namespace, syncjob("c1", "audio",
                                                            params=demo(100, 0.2)))
    uid = created["metadata"]["uid"]
    await wait_phase(kube, namespace, "c1", "Running", timeout=30)

    async def runner_pod() -> list[dict[str, Any]]:
        return [p for p in await pods_of(kube, namespace, uid)
                if p["status"].get("phase") == "Running"]

    await eventually(runner_pod, timeout=30, what="the runner pod running")
    await set_spec(kube, namespace, "c1", paused=True)
    paused = await wait_phase(kube, namespace, "c1", "Paused", timeout=30)
    job_name = paused["status"]["jobRef"]

    async def no_pods() -> bool:
        return not await pods_of(kube, namespace, uid)

    await eventually(no_pods, timeout=30, what="pod released while paused")
    await set_spec(kube, namespace, "c1", cancel=True)
    body = await wait_phase(kube, namespace, "c1", "Cancelled", timeout=30)
    assert body["status"]["cancelledAt"]
    assert {c["type"]: c for c in body["status"]["conditions"]}["Cancelled"]["reason"] \
        == "CancelledByUser"
    # The Cancelled event is recorded after the reconcile's actions: it has acted.
    await eventually(lambda: event_seen(kube, namespace, "c1", "CancelledByUser"),
                     timeout=30, what="CancelledByUser event")
    assert await pods_of(kube, namespace, uid) == []
    # Nor can one start: the Job stays suspended (or is gone)...
    job = await kube.get_or_none(JOBS, job_name, namespace)
    assert job is None or job["spec"]["suspend"] is True
    # ...and it never made a pod after the first: one pod creation in its history.
    if job is not None:
        creations = [e for e in await events_of(kube, namespace, job_name)
                     if e["reason"] == "SuccessfulCreate"
                     and e["involvedObject"].get("kind") == "Job"]
        assert sum(int(e.get("count") or 1) for e in creations) == 1


async def test_cooperative_cancel_of_a_running_job(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("c2", "finance", params=demo(100, 0.2)))
    await wait_phase(kube, namespace, "c2", "Running", timeout=30)
    await eventually(lambda: _done_at_least(kube, namespace, "c2", 2), timeout=30,
                     what="progress")
    await set_spec(kube, namespace, "c2", cancel=True)
    body = await wait_phase(kube, namespace, "c2", "Cancelled", timeout=30)
    reason = {c["type"]: c for c in body["status"]["conditions"]}["Cancelled"]["reason"]
    assert reason == "CancelledByUser"

    async def no_pods() -> bool:
        return not (await kube.list(PODS, namespace))["items"]

    await eventually(no_pods, timeout=30, what="pod gone after cancel")


async def test_forced_cancel_of_a_runner_that_ignores_the_flag(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob(
        "stubborn", "prayer", params=demo(1000, 0.1, ignoreStop=True)))
    await wait_phase(kube, namespace, "stubborn", "Running", timeout=30)
    await eventually(lambda: _done_at_least(kube, namespace, "stubborn", 2), timeout=30,
                     what="progress")
    await set_spec(kube, namespace, "stubborn", cancel=True)
    await wait_phase(kube, namespace, "stubborn", "Cancelling", timeout=15)
    body = await wait_phase(kube, namespace, "stubborn", "Cancelled", timeout=40)
    reason = {c["type"]: c for c in body["status"]["conditions"]}["Cancelled"]["reason"]
    assert reason == "ForcedCancel"

    async def no_pods() -> bool:
        return not (await kube.list(PODS, namespace))["items"]

    # The runner ignores SIGTERM too: the kubelet kills it after the grace period.
    await eventually(no_pods, timeout=40, what="stubborn pod killed")
    warnings = [e for e in await events_of(kube, namespace, "stubborn")
                if e["type"] == "Warning"]
    assert any(e["reason"] == "ForcedCancel" for e in warnings)


async def test_delete_while_running_stops_the_pod_and_removes_the_job(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("gone", "quran", params=demo(200, 0.2)))
    running = await wait_phase(kube, namespace, "gone", "Running", timeout=30)
    assert "sync.jobcontrol.io/finalizer" in running["metadata"]["finalizers"]

    async def has_pod() -> bool:
        return bool((await kube.list(PODS, namespace))["items"])

    await eventually(has_pod, timeout=30, what="pod")
    await kube.delete(SYNCJOBS, "gone", namespace)

    async def all_gone() -> bool:
        sj = await kube.get_or_none(SYNCJOBS, "gone", namespace)
        return sj is None and not await jobs_of(kube, namespace) and not (
            await kube.list(PODS, namespace))["items"]

    await eventually(all_gone, timeout=60, what="SyncJob, Job and pod gone")


async def test_retry_after_a_pod_failure_resumes_and_succeeds(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        redis_client: aioredis.Redis) -> None:
    # Every status each runner pod publishes, in order (subscribed before the job exists).
    pubsub = redis_client.pubsub()
    await pubsub.psubscribe(EVENTS_PATTERN)
    reports: list[tuple[str, RunnerStatus]] = []  # (channel, status)

    async def follow() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                reports.append((message["channel"],
                                RunnerStatus.model_validate_json(message["data"])))

    follower = asyncio.create_task(follow())
    try:
        created = await create_syncjob(kube, namespace, syncjob(
            "flaky", "hadith", retryAttempts=2, params=demo(10, 0.05, failAt=5)))
        uid = created["metadata"]["uid"]
        body = await wait_phase(kube, namespace, "flaky", "Succeeded", timeout=90)
        channel = Keys(uid).events

        async def final_report() -> bool:
            return any(c == channel and s.state == RunnerState.SUCCEEDED for c, s in reports)

        await eventually(final_report, timeout=15, what="the runner's succeeded report")
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await pubsub.aclose()
    assert body["status"]["attempts"] == 2
    assert body["status"]["progress"]["done"] == 10

    mine = [s for c, s in reports if c == channel]
    pods = list(dict.fromkeys(s.pod for s in mine))  # in order of their first report
    assert len(pods) == 2, pods
    first = [s for s in mine if s.pod == pods[0]]
    second = [s for s in mine if s.pod == pods[1]]
    # The first pod failed at unit 5, after saving its checkpoint there.
    failed = first[-1]
    assert failed.state == RunnerState.FAILED
    assert failed.progress.done == 5
    assert failed.checkpoint_at is not None
    # The second pod's first report already stands on that checkpoint: it loaded it,
    # and its progress never starts below it.
    assert second[0].checkpoint_at == failed.checkpoint_at
    assert second[0].progress.done >= failed.progress.done
    assert all(s.progress.done >= failed.progress.done for s in second)
    assert body["status"]["result"]["resumedFrom"] == failed.progress.done
    # Two real pods: the failed one and the one that succeeded.
    phases = {p["metadata"]["name"]: p["status"].get("phase")
              for p in await pods_of(kube, namespace, uid)}
    assert phases == {pods[0]: "Failed", pods[1]: "Succeeded"}


async def test_fatal_failure_is_not_retried(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob(
        "fatal", "hadith", retryAttempts=3, params=demo(10, 0.05, fatal=True)))
    body = await wait_phase(kube, namespace, "fatal", "Failed", timeout=60)
    assert body["status"]["attempts"] == 1
    assert body["status"]["error"]


async def test_timeout_fails_the_job_with_deadline_exceeded(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob(
        "slow", "finance", timeoutMinutes=1, params=demo(1000, 0.2)))
    body = await wait_phase(kube, namespace, "slow", "Failed", timeout=120)
    failed = {c["type"]: c for c in body["status"]["conditions"]}["Failed"]
    assert failed["reason"] == "DeadlineExceeded"


async def test_long_quran_job_does_not_block_two_prayer_jobs(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("quran-long", "quran",
                                                  params=demo(400, 0.2)))
    await wait_phase(kube, namespace, "quran-long", "Running", timeout=30)
    await create_syncjob(kube, namespace, syncjob("quran-next", "quran", priority=1,
                                                  params=demo(5, 0.05)))
    for n in (1, 2):
        await create_syncjob(kube, namespace, syncjob(f"prayer-{n}", "prayer", priority=5,
                                                      params=demo(5, 0.05)))
    for n in (1, 2):
        await wait_phase(kube, namespace, f"prayer-{n}", "Succeeded", timeout=60)
    queued = await wait_phase(kube, namespace, "quran-next", "Queued", timeout=5)
    admitted = {c["type"]: c for c in queued["status"]["conditions"]}["Admitted"]
    # More urgent than both prayer jobs, yet it waited: held by its own type's limit only.
    assert (admitted["status"], admitted["reason"]) == ("False", "Queued")
    assert "startedAt" not in queued["status"]
    await set_spec(kube, namespace, "quran-long", cancel=True)
    await wait_phase(kube, namespace, "quran-next", "Succeeded", timeout=60)


async def test_priority_change_reorders_the_queue(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("blocker", "audio", params=demo(400, 0.2)))
    await wait_phase(kube, namespace, "blocker", "Running", timeout=30)
    await create_syncjob(kube, namespace, syncjob("first", "audio", priority=3,
                                                  params=demo(3, 0.05)))
    await create_syncjob(kube, namespace, syncjob("second", "audio", priority=5,
                                                  params=demo(3, 0.05)))
    await wait_phase(kube, namespace, "second", "Queued", timeout=10)
    changed = await set_spec(kube, namespace, "second", priority=1)

    async def operator_saw_the_change() -> bool:
        body = await kube.get(SYNCJOBS, "second", namespace)
        return body["status"].get("observedGeneration") == changed["metadata"]["generation"]

    await eventually(operator_saw_the_change, timeout=15, what="the priority change seen")
    await set_spec(kube, namespace, "blocker", cancel=True)
    second = await wait_phase(kube, namespace, "second", "Succeeded", timeout=60)
    first = await wait_phase(kube, namespace, "first", "Succeeded", timeout=60)
    assert second["status"]["startedAt"] <= first["status"]["startedAt"]
    assert second["status"]["completedAt"] <= first["status"]["startedAt"]


async def test_operator_killed_and_restarted_mid_run_loses_nothing(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        redis_client: aioredis.Redis) -> None:
    created = await create_syncjob(kube, namespace, syncjob("survivor", "quran",
                                                            params=demo(40, 0.15)))
    uid = created["metadata"]["uid"]
    await wait_phase(kube, namespace, "survivor", "Running", timeout=30)
    await eventually(lambda: _done_at_least(kube, namespace, "survivor", 3), timeout=30,
                     what="progress")
    operator.kill()
    assert operator.process is not None
    assert not operator.process.running
    at_kill = await progress_done(kube, namespace, "survivor")

    # The runner goes on without the operator: there is something to catch up on.
    async def runner_ahead() -> bool:
        status = await runner_state(redis_client, uid)
        return status is not None and status.progress.done >= at_kill + 3

    await eventually(runner_ahead, timeout=30, what="the runner progressing while down")
    operator.start()
    # The restarted operator catches up from the resources and Redis.
    await eventually(lambda: _done_at_least(kube, namespace, "survivor", 20), timeout=30,
                     what="progress after restart")
    body = await wait_phase(kube, namespace, "survivor", "Succeeded", timeout=60)
    assert body["status"]["attempts"] == 1
    assert len(await jobs_of(kube, namespace)) == 1
    started = [e for e in await events_of(kube, namespace, "survivor")
               if e["reason"] == "Admitted"]
    assert len(started) == 1


async def test_duplicate_dedup_key_ends_as_duplicate_of_the_active_job(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    await create_syncjob(kube, namespace, syncjob("orig", "prayer", dedupKey="prayer-2026",
                                                  params=demo(100, 0.2)))
    await wait_phase(kube, namespace, "orig", "Running", "Queued", timeout=30)
    await create_syncjob(kube, namespace, syncjob("dup", "prayer", dedupKey="prayer-2026",
                                                  params=demo(5, 0.05)))
    body = await wait_phase(kube, namespace, "dup", "Cancelled", timeout=30)
    assert body["status"]["duplicateOf"] == "orig"
    reason = {c["type"]: c for c in body["status"]["conditions"]}["Cancelled"]["reason"]
    assert reason == "Duplicate"


async def test_a_schedules_max_concurrency_is_its_types_limit_and_edits_apply_at_once(
        kube: KubeClient, namespace: str, operator: OperatorProcess) -> None:
    from sync_operator.api.common import SYNCSCHEDULES
    await kube.create(SYNCSCHEDULES, {
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
        "metadata": {"name": "audio-weekly"},
        "spec": {"jobType": "audio", "schedule": "0 4 * * 0", "suspend": True,
                 "maxConcurrency": 2}}, namespace)
    for name in ("a1", "a2", "a3"):
        await create_syncjob(kube, namespace, syncjob(name, "audio", params=demo(400, 0.2)))

    async def phases() -> dict[str, list[str]] | None:
        items = (await kube.list(SYNCJOBS, namespace))["items"]
        by_phase: dict[str, list[str]] = {}
        for item in items:
            by_phase.setdefault(item.get("status", {}).get("phase", ""), []).append(
                item["metadata"]["name"])
        ok = len(by_phase.get("Running", [])) == 2 and len(by_phase.get("Queued", [])) == 1
        return by_phase if ok else None

    # Two run at once although audio's default limit is 1: the schedule says 2.
    [waiting] = (await eventually(phases, timeout=30, what="2 running, 1 queued"))["Queued"]
    queued = await kube.get(SYNCJOBS, waiting, namespace)
    admitted = {c["type"]: c for c in queued["status"]["conditions"]}["Admitted"]
    assert (admitted["status"], admitted["reason"]) == ("False", "Queued")
    await kube.patch(SYNCSCHEDULES, "audio-weekly", {"spec": {"maxConcurrency": 3}}, namespace)
    await wait_phase(kube, namespace, waiting, "Running", timeout=15)
    for name in ("a1", "a2", "a3"):
        await set_spec(kube, namespace, name, cancel=True)


async def test_two_operator_replicas_one_acts_and_the_standby_takes_over(
        kube: KubeClient, namespace: str,
        start_operator: Callable[..., OperatorProcess]) -> None:
    fast_lease = {"lease_duration_seconds": "4", "lease_renew_deadline_seconds": "3",
                  "lease_retry_period_seconds": "0.5"}
    first = start_operator(**fast_lease)

    async def first_holds_the_lease() -> str | None:
        identity = leader_identity(first)
        return identity if identity and await lease_holder(kube, namespace) == identity \
            else None

    first_id = await eventually(first_holds_the_lease, timeout=30,
                                what="the first replica holding the Lease")
    second = start_operator(**fast_lease)

    async def second_up_as_standby() -> bool:
        page = await health(second)
        return page is not None and '"leading": false' in page

    await eventually(second_up_as_standby, timeout=30, what="the second replica serving")
    await create_syncjob(kube, namespace, syncjob("ha", "quran", params=demo(60, 0.15)))
    await wait_phase(kube, namespace, "ha", "Running", timeout=30)
    await eventually(lambda: _done_at_least(kube, namespace, "ha", 5), timeout=30,
                     what="progress")
    assert "is leading" in first.log()
    # A standby: it watches, it does not act; the Lease is still the first one's.
    assert await lease_holder(kube, namespace) == first_id
    assert '"leading": false' in (await health(second) or "")
    assert (await scrape(second))["sync_operator_leader"] == 0
    assert "is leading" not in second.log()
    first.kill()  # the leader dies without releasing the Lease
    # The standby takes over after the lease expires and carries the job to the end.
    await eventually(lambda: _done_at_least(kube, namespace, "ha", 40), timeout=40,
                     what="progress relayed by the new leader")
    body = await wait_phase(kube, namespace, "ha", "Succeeded", timeout=60)
    assert body["status"]["attempts"] == 1
    assert len(await jobs_of(kube, namespace)) == 1
    admitted = [e for e in await events_of(kube, namespace, "ha") if e["reason"] == "Admitted"]
    assert len(admitted) == 1
    assert "is leading" in second.log()
    second_id = leader_identity(second)
    assert second_id
    assert second_id != first_id
    assert await lease_holder(kube, namespace) == second_id
