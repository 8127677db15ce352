"""The simulated runner: sim-image pods run in-process in the process kubelet, speaking
the runner's real Redis contract, on the real control plane with a real operator."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import JOBS, PODS
from sync_operator.syncjob.job_builder import CONTAINER_NAME, LABEL_JOB_UID, JobSettings, build_job
from sync_runner.contract import (
    STATE_FIELD,
    Checkpoint,
    ExitCode,
    Keys,
    RunnerState,
    RunnerStatus,
)
from testkit.cluster import LocalCluster
from testkit.servers import RedisServer
from testkit.syncjobs import create_syncjob, set_spec, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

SIM_IMAGE_REF = "local/sync-sim:dev"  # image key `sync-sim`: in-process in the kubelet
Pod = dict[str, Any]


# -- the kubelet as an OS process (/proc) ----------------------------------------------


def kubelet_pid(cluster: LocalCluster) -> int:
    proc = cluster.processes["process-kubelet"].proc
    assert proc is not None
    return proc.pid


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (where the kubelet's process pods would be)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def processes_with_env(variable: str) -> list[int]:
    """Every readable process whose environment holds `variable` (NAME=value)."""
    needle = variable.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in environ:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- pods, logs and Redis ---------------------------------------------------------------


async def pods_of(kube: KubeClient, ns: str, uid: str) -> list[Pod]:
    items = (await kube.list(PODS, ns, label_selector=f"{LABEL_JOB_UID}={uid}"))["items"]
    return sorted((dict(p) for p in items), key=lambda p: p["metadata"]["creationTimestamp"])


def container_status(pod: Pod) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def exit_code(pod: Pod) -> int | None:
    terminated = container_status(pod).get("state", {}).get("terminated")
    return None if terminated is None else int(terminated["exitCode"])


def container_log(cluster: LocalCluster, ns: str, pod_name: str) -> list[dict[str, Any]]:
    """The JSON lines the sim runner of a pod wrote (the kubelet's per-container log)."""
    path = cluster.root / "kubelet" / "logs" / f"{ns}_{pod_name}_{CONTAINER_NAME}.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events_in(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event]


async def runner_state(client: aioredis.Redis, uid: str) -> RunnerStatus | None:
    raw = await client.hget(Keys(uid).state, STATE_FIELD)
    return None if raw is None else RunnerStatus.model_validate_json(raw)


async def checkpoint_of(client: aioredis.Redis, uid: str) -> Checkpoint | None:
    raw = await client.get(Keys(uid).checkpoint)
    return None if raw is None else Checkpoint.model_validate_json(raw)


async def running_pod(kube: KubeClient, ns: str, uid: str) -> Pod:
    async def probe() -> Pod | None:
        pods = [p for p in await pods_of(kube, ns, uid)
                if (p.get("status") or {}).get("phase") == "Running"]
        return pods[-1] if pods else None

    return await eventually(probe, timeout=30, what=f"a running pod of {uid}")


def sim_pod(name: str, ns: str, redis_url: str, params: dict[str, Any],
            grace_seconds: int = 10) -> tuple[str, Pod]:
    """A bare pod exactly like the one a SyncJob's Job makes (job_builder), with the sim
    image: the tests below need the pod without an operator in between."""
    uid = str(uuid.uuid4())
    body = {"metadata": {"name": name, "namespace": ns, "uid": uid},
            "spec": {"jobType": "quran", "params": params}}
    settings = JobSettings(image=SIM_IMAGE_REF, redis_url=redis_url,
                           termination_grace_seconds=grace_seconds)
    template = build_job(body, settings)["spec"]["template"]
    return uid, {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": name, "labels": template["metadata"]["labels"]},
                 "spec": template["spec"]}


# -- through the operator ---------------------------------------------------------------


@pytest.fixture
def sim_operator(start_operator: Any) -> Any:
    return start_operator(runner_image=SIM_IMAGE_REF)


async def test_a_sim_syncjob_succeeds_in_process_with_progress_and_one_job(
        cluster: LocalCluster, kube: KubeClient, namespace: str, sim_operator: Any) -> None:
    created = await create_syncjob(kube, namespace, syncjob(
        "sim-a", "quran", params={"units": 10, "unitSeconds": 0.3}))
    uid = created["metadata"]["uid"]
    pod = await running_pod(kube, namespace, uid)
    assert container_status(pod)["containerID"].startswith("inprocess://sim-")
    # While it runs, no OS process exists for it: none carries its job uid, and none of
    # the kubelet's children does either.
    kubelet = kubelet_pid(cluster)
    assert processes_with_env(f"SYNC_JOB_UID={uid}") == []
    print(f"kubelet children while the sim pod runs: {len(children_of(kubelet))}")

    done = await wait_phase(kube, namespace, "sim-a", "Succeeded", timeout=60)
    assert done["status"]["progress"]["done"] == 10
    assert done["status"]["progress"]["total"] == 10
    assert done["status"]["result"]["processed"] == 10
    assert len((await kube.list(JOBS, namespace))["items"]) == 1
    (final,) = await pods_of(kube, namespace, uid)
    assert exit_code(final) == ExitCode.SUCCEEDED
    log = container_log(cluster, namespace, final["metadata"]["name"])
    assert events_in(log, "runner.exit")[-1]["exit_code"] == 0
    assert all(line["sim"] is True and line["job_uid"] == uid for line in log)


async def test_b_pause_then_resume_continues_from_the_checkpoint(
        cluster: LocalCluster, kube: KubeClient, namespace: str, redis_client: aioredis.Redis,
        sim_operator: Any) -> None:
    created = await create_syncjob(kube, namespace, syncjob(
        "sim-b", "hadith", params={"units": 40, "unitSeconds": 0.2}))
    uid = created["metadata"]["uid"]
    first = await running_pod(kube, namespace, uid)

    async def some_progress() -> bool:
        state = await runner_state(redis_client, uid)
        return state is not None and state.progress.done >= 5

    await eventually(some_progress, timeout=30, what="some progress")
    await set_spec(kube, namespace, "sim-b", paused=True)
    paused = await wait_phase(kube, namespace, "sim-b", "Paused", timeout=30)
    done_at_pause = paused["status"]["progress"]["done"]
    assert 5 <= done_at_pause < 40
    conditions = {c["type"]: c for c in paused["status"]["conditions"]}
    assert conditions["Paused"]["reason"] == "PausedAtCheckpoint"
    checkpoint = await checkpoint_of(redis_client, uid)
    assert checkpoint is not None
    assert checkpoint.progress.done == done_at_pause

    async def released() -> bool:
        return not await pods_of(kube, namespace, uid)

    await eventually(released, timeout=30, what="pod released while paused")
    job = await kube.get(JOBS, paused["status"]["jobRef"], namespace)
    assert job["spec"]["suspend"] is True
    # The first pod acknowledged at a unit boundary, then left on the SIGTERM of the
    # suspend with the runner's STOPPED code.
    log = container_log(cluster, namespace, first["metadata"]["name"])
    assert [e["reason"] for e in events_in(log, "stop.acknowledged")] == ["pause"]
    assert events_in(log, "stop.released")[-1]["by"] == "sigterm"
    assert events_in(log, "runner.exit")[-1]["exit_code"] == ExitCode.STOPPED

    await set_spec(kube, namespace, "sim-b", paused=False)
    done = await wait_phase(kube, namespace, "sim-b", "Succeeded", timeout=60)
    assert done["status"]["progress"]["done"] == 40
    assert done["status"]["result"]["resumedFrom"] == done_at_pause
    (second,) = await pods_of(kube, namespace, uid)
    loaded = events_in(container_log(cluster, namespace, second["metadata"]["name"]),
                       "checkpoint.loaded")
    assert loaded
    assert loaded[0]["done"] == done_at_pause


async def test_c_cancel_ends_cancelled_cooperatively(
        cluster: LocalCluster, kube: KubeClient, namespace: str, redis_client: aioredis.Redis,
        sim_operator: Any) -> None:
    created = await create_syncjob(kube, namespace, syncjob(
        "sim-c", "finance", params={"units": 100, "unitSeconds": 0.2}))
    uid = created["metadata"]["uid"]
    pod = await running_pod(kube, namespace, uid)
    await set_spec(kube, namespace, "sim-c", cancel=True)
    body = await wait_phase(kube, namespace, "sim-c", "Cancelled", timeout=30)
    reason = {c["type"]: c for c in body["status"]["conditions"]}["Cancelled"]["reason"]
    assert reason == "CancelledByUser"  # acknowledged, not forced
    state = await runner_state(redis_client, uid)
    assert state is not None
    assert state.state is RunnerState.CANCELLED

    async def gone() -> bool:
        return not await pods_of(kube, namespace, uid)

    await eventually(gone, timeout=30, what="pod gone after cancel")
    log = container_log(cluster, namespace, pod["metadata"]["name"])
    assert [e["reason"] for e in events_in(log, "stop.acknowledged")] == ["cancel"]
    assert events_in(log, "runner.exit")[-1]["exit_code"] == ExitCode.STOPPED


# -- the kubelet alone: exit codes and SIGTERM -------------------------------------------


async def test_sim_pods_exit_with_the_runners_codes_and_checkpoint_on_sigterm(
        cluster: LocalCluster, kube: KubeClient, namespace: str, redis_server: RedisServer,
        redis_client: aioredis.Redis) -> None:
    ok_uid, ok = sim_pod("ok", namespace, redis_server.url, {"units": 3, "unitSeconds": 0.05})
    fatal_uid, fatal = sim_pod("fatal", namespace, redis_server.url, {"fatal": True})
    term_uid, term = sim_pod("term", namespace, redis_server.url,
                             {"units": 200, "unitSeconds": 0.1})
    for pod in (ok, fatal, term):
        await kube.create(PODS, pod, namespace)

    async def finished(uid: str) -> Pod | None:
        pods = await pods_of(kube, namespace, uid)
        return pods[0] if pods and exit_code(pods[0]) is not None else None

    assert exit_code(await eventually(lambda: finished(ok_uid), timeout=30,
                                      what="ok pod done")) == ExitCode.SUCCEEDED
    failed = await eventually(lambda: finished(fatal_uid), timeout=30, what="fatal pod done")
    assert exit_code(failed) == ExitCode.FATAL
    assert failed["status"]["phase"] == "Failed"

    await running_pod(kube, namespace, term_uid)

    async def working() -> bool:
        state = await runner_state(redis_client, term_uid)
        return state is not None and state.progress.done >= 3

    await eventually(working, timeout=30, what="the term pod working")
    await kube.delete(PODS, "term", namespace)  # the kubelet's SIGTERM

    async def interrupted() -> RunnerStatus | None:
        state = await runner_state(redis_client, term_uid)
        return state if state is not None and state.state is RunnerState.INTERRUPTED else None

    state = await eventually(interrupted, timeout=30, what="interrupted")
    checkpoint = await checkpoint_of(redis_client, term_uid)
    assert checkpoint is not None
    assert checkpoint.progress.done == state.progress.done
    assert state.checkpoint_at == checkpoint.saved_at
    await eventually(lambda: _no_pods(kube, namespace, term_uid), timeout=30,
                     what="term pod gone")
    assert events_in(container_log(cluster, namespace, "term"),
                     "runner.exit")[-1]["exit_code"] == ExitCode.STOPPED


async def _no_pods(kube: KubeClient, ns: str, uid: str) -> bool:
    return not await pods_of(kube, ns, uid)


async def test_d_two_hundred_sim_pods_run_at_once_cheaply(
        cluster: LocalCluster, kube: KubeClient, namespace: str, redis_server: RedisServer,
        redis_client: aioredis.Redis) -> None:
    count, units = 200, 60
    kubelet = kubelet_pid(cluster)
    pods = [sim_pod(f"scale-{n:03d}", namespace, redis_server.url,
                    {"units": units, "unitSeconds": 0.5}) for n in range(count)]
    cpu_start, started = cpu_seconds(kubelet), time.monotonic()
    gate = asyncio.Semaphore(16)

    async def create(pod: Pod) -> None:
        async with gate:
            await kube.create(PODS, pod, namespace)

    await asyncio.gather(*(create(pod) for _, pod in pods))

    async def phases() -> dict[str, int]:
        counted: dict[str, int] = {}
        for pod in (await kube.list(PODS, namespace))["items"]:
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            counted[phase] = counted.get(phase, 0) + 1
        return counted

    async def states() -> list[RunnerStatus | None]:
        return [await runner_state(redis_client, uid) for uid, _ in pods]

    async def all_running() -> bool:
        counted = await phases()
        assert not counted.get("Failed"), f"sim pods failed: {counted}"
        running = counted.get("Running", 0) == count
        return running and all(s is not None and s.state is RunnerState.RUNNING
                               for s in await states())

    await eventually(all_running, timeout=120, interval=1.0,
                     what=f"{count} sim pods running at once")
    ramp = time.monotonic() - started
    cpu_ramp = cpu_seconds(kubelet)
    assert processes_with_env(f"SYNC_JOB_UID={pods[0][0]}") == []
    window = 5.0
    await asyncio.sleep(window)
    cpu_window = cpu_seconds(kubelet) - cpu_ramp
    print(f"\n{count} sim pods running after {ramp:.1f}s; kubelet CPU to get there "
          f"{cpu_ramp - cpu_start:.2f}s; over {window:.0f}s with all running "
          f"{cpu_window:.2f}s ({cpu_window / window:.0%} of a core); "
          f"RSS {rss_mib(kubelet):.0f} MiB; kubelet children {len(children_of(kubelet))}")

    async def all_succeeded() -> bool:
        return (await phases()).get("Succeeded", 0) == count

    await eventually(all_succeeded, timeout=180, interval=1.0, what="all sim pods Succeeded")
    print(f"all {count} Succeeded after {time.monotonic() - started:.1f}s; kubelet CPU "
          f"in total {cpu_seconds(kubelet) - cpu_start:.2f}s")
    finals = await states()
    assert all(s is not None and s.state is RunnerState.SUCCEEDED and s.progress.done == units
               for s in finals)
    listed = (await kube.list(PODS, namespace))["items"]
    assert {exit_code(dict(p)) for p in listed} == {0}
    assert all(container_status(dict(p))["containerID"].startswith("inprocess://")
               for p in listed)
