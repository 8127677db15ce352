"""The process kubelet survives its own restart as a real kubelet does: the containers
outlive it, and the next one adopts them (one process per container, never two), obeys
a deletion it missed, and reports the exit codes of containers that ended meanwhile."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import NAMESPACES, PODS
from testkit.cluster import LocalCluster
from testkit.kubelet import LOST_MESSAGE, proc_start_time
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
Obj = dict[str, Any]

# Appends its pid to `starts` (one line per start), then waits for `go` and exits 3.
WAIT_FOR_GO = """
import os, sys, time
from pathlib import Path
out = Path(os.environ["OUT"])
with open(out / "starts", "a") as f:
    f.write(f"{os.getpid()}\\n")
while not (out / "go").exists():
    time.sleep(0.05)
sys.exit(int(os.environ.get("CODE", "3")))
"""

# Writes a marker on SIGTERM and exits 0; else sleeps.
TRAPS_TERM = """
import os, signal, sys, time
from pathlib import Path
out = Path(os.environ["OUT"])
def on_term(*_):
    (out / "terminated").write_text(f"SIGTERM {os.getpid()}")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
with open(out / "starts", "a") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(600)
"""


@pytest.fixture
async def plain_namespace(kube: KubeClient) -> AsyncIterator[str]:
    """A namespace without Pod Security labels: these pods write to the test's tmp_path
    as the kubelet's user, which `restricted` would refuse."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name}})
    yield name
    await kube.delete(NAMESPACES, name)


def python_pod(name: str, code: str, out: Path, *, code_env: int = 3) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 20,
                     "containers": [{"name": "main", "image": "python", "args": ["-c", code],
                                     "env": [{"name": "OUT", "value": str(out)},
                                             {"name": "CODE", "value": str(code_env)}]}]}}


def main_status(pod: Obj) -> Obj:
    statuses: list[Obj] = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s["name"] == "main"), {})


async def pod_of(kube: KubeClient, ns: str, name: str) -> Obj:
    return dict(await kube.get(PODS, name, ns))


async def failed(kube: KubeClient, ns: str, name: str) -> Obj:
    """The pod, once its phase is Failed."""
    async def probe() -> Obj | None:
        pod = await pod_of(kube, ns, name)
        return pod if pod.get("status", {}).get("phase") == "Failed" else None

    return await eventually(probe, timeout=30, what=f"pod {name} Failed")


async def started(kube: KubeClient, ns: str, name: str, out: Path) -> tuple[Obj, int]:
    """The pod once Running with its process started: the pod and the process's pid."""
    async def running() -> Obj | None:
        pod = await pod_of(kube, ns, name)
        ok = pod.get("status", {}).get("phase") == "Running" and \
            "running" in main_status(pod).get("state", {})
        return pod if ok and _starts(out) else None

    pod = await eventually(running, timeout=60, what=f"pod {name} Running")
    return pod, int(_starts(out)[0])


def _starts(out: Path) -> list[str]:
    """The pids the container wrote, one per start."""
    path = out / "starts"
    return path.read_text().split() if path.exists() else []


def record_of(cluster: LocalCluster, uid: str) -> Obj:
    """The kubelet's record of a pod (what a new kubelet adopts)."""
    record: Obj = json.loads((cluster.root / "kubelet" / "records" / f"{uid}.json").read_text())
    return record


def shim_pid(cluster: LocalCluster, uid: str) -> int:
    return int(next(c for c in record_of(cluster, uid)["containers"]
                    if c["name"] == "main")["pid"])


async def restart_kubelet(cluster: LocalCluster,
                          while_down: Callable[[], Coroutine[Any, Any, None]] | None = None,
                          ) -> None:
    await cluster.restart_kubelet_async(while_down)


async def gone(pid: int) -> bool:
    return proc_start_time(pid) is None


async def test_a_running_pod_is_adopted_not_started_again_and_its_exit_code_reported(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str,
        tmp_path: Path) -> None:
    ns = plain_namespace
    created = await kube.create(PODS, python_pod("survivor", WAIT_FOR_GO, tmp_path), ns)
    uid = created["metadata"]["uid"]
    before, pid = await started(kube, ns, "survivor", tmp_path)
    assert main_status(before)["containerID"] == f"process://{pid}"
    since = proc_start_time(pid)

    await restart_kubelet(cluster)

    assert proc_start_time(pid) == since  # the very process lives on
    (tmp_path / "go").touch()

    pod = await failed(kube, ns, "survivor")
    status = main_status(pod)
    assert status["state"]["terminated"]["exitCode"] == 3
    assert status["state"]["terminated"]["reason"] == "Error"
    assert status["restartCount"] == main_status(before)["restartCount"] == 0
    assert status["containerID"] == f"process://{pid}"
    assert _starts(tmp_path) == [str(pid)]  # started once
    await eventually(lambda: _no_record(cluster, uid), what="the record removed")


async def _no_record(cluster: LocalCluster, uid: str) -> bool:
    return not (cluster.root / "kubelet" / "records" / f"{uid}.json").exists()


async def test_a_pod_deleted_while_the_kubelet_is_down_gets_sigterm_and_goes(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str,
        tmp_path: Path) -> None:
    ns = plain_namespace
    await kube.create(PODS, python_pod("deleted", TRAPS_TERM, tmp_path), ns)
    _, pid = await started(kube, ns, "deleted", tmp_path)

    async def delete() -> None:
        await kube.delete(PODS, "deleted", ns)
        pod = await pod_of(kube, ns, "deleted")
        assert pod["metadata"].get("deletionTimestamp")  # it waits for a kubelet
        assert not (tmp_path / "terminated").exists()

    await restart_kubelet(cluster, delete)

    async def pod_gone() -> bool:
        return await kube.get_or_none(PODS, "deleted", ns) is None

    await eventually(pod_gone, timeout=30, what="the deleted pod to disappear")
    assert (tmp_path / "terminated").read_text() == f"SIGTERM {pid}"
    await eventually(lambda: gone(pid), what="its process to end")
    assert _starts(tmp_path) == [str(pid)]


async def test_a_container_that_exited_while_the_kubelet_was_down_reports_its_code(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str,
        tmp_path: Path) -> None:
    ns = plain_namespace
    created = await kube.create(PODS, python_pod("exited", WAIT_FOR_GO, tmp_path,
                                                 code_env=5), ns)
    uid = created["metadata"]["uid"]
    await started(kube, ns, "exited", tmp_path)
    shim = shim_pid(cluster, uid)

    async def exit_meanwhile() -> None:
        (tmp_path / "go").touch()
        await eventually(lambda: gone(shim), what="the container and its shim to end")

    await restart_kubelet(cluster, exit_meanwhile)

    terminated = main_status(await failed(kube, ns, "exited"))["state"]
    assert terminated["terminated"]["exitCode"] == 5
    assert "message" not in terminated["terminated"]  # its end was recorded, not lost
    assert len(_starts(tmp_path)) == 1


async def test_a_container_killed_while_the_kubelet_was_down_is_reported_lost(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str,
        tmp_path: Path) -> None:
    ns = plain_namespace
    created = await kube.create(PODS, python_pod("killed", WAIT_FOR_GO, tmp_path), ns)
    uid = created["metadata"]["uid"]
    await started(kube, ns, "killed", tmp_path)
    shim = shim_pid(cluster, uid)

    async def kill_group() -> None:
        os.killpg(shim, signal.SIGKILL)  # no exit file: nobody saw its end
        await eventually(lambda: gone(shim), what="the group to die")

    await restart_kubelet(cluster, kill_group)

    terminated = main_status(await failed(kube, ns, "killed"))["state"]
    assert terminated["terminated"]["exitCode"] == 137
    assert terminated["terminated"]["reason"] == "Error"
    assert terminated["terminated"]["message"] == LOST_MESSAGE


async def test_a_running_pod_without_a_record_is_lost_not_started_twice(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str,
        tmp_path: Path) -> None:
    ns = plain_namespace
    created = await kube.create(PODS, python_pod("unrecorded", WAIT_FOR_GO, tmp_path), ns)
    uid = created["metadata"]["uid"]
    _, pid = await started(kube, ns, "unrecorded", tmp_path)
    shim = shim_pid(cluster, uid)

    async def forget() -> None:  # as if the old kubelet died before writing it
        (cluster.root / "kubelet" / "records" / f"{uid}.json").unlink()

    try:
        await restart_kubelet(cluster, forget)

        terminated = main_status(await failed(kube, ns, "unrecorded"))["state"]
        assert terminated["terminated"]["exitCode"] == 137
        assert terminated["terminated"]["message"] == LOST_MESSAGE
        assert _starts(tmp_path) == [str(pid)]
    finally:
        os.killpg(shim, signal.SIGKILL)  # the runner nobody knows of any more
