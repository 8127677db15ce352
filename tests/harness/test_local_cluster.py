"""The local control plane behaves as a real cluster does: these are the facts the
operator's tests rely on, checked against the real components."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import (
    CONFIGMAPS,
    CRDS,
    JOBS,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    Resource,
)
from testkit.cluster import LocalCluster
from testkit.podsecurity import restricted
from testkit.rbac import grant, rule, service_account
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

WIDGETS = Resource("harness.example.com", "v1", "widgets")


def python_job(name: str, code: str, *, backoff_limit: int = 0,
               env: list[dict[str, Any]] | None = None,
               restricted_pod: bool = True) -> dict[str, Any]:
    """A Job running `code`; its pod is `restricted`-compliant unless told otherwise."""
    pod: dict[str, Any] = {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "main", "image": "python:3.11-slim",
                        "command": ["python", "-c", code], "env": env or []}],
    }
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit,
                 "template": {"spec": restricted(pod) if restricted_pod else pod}},
    }


async def job_condition(kube: KubeClient, ns: str, name: str, ctype: str) -> dict[str, Any] | None:
    job = await kube.get(JOBS, name, ns)
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype and cond["status"] == "True":
            return job
    return None


async def test_crd_is_served_and_schema_violations_are_rejected_with_the_servers_message(
        kube: KubeClient, namespace: str) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.harness.example.com"},
        "spec": {"group": "harness.example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object", "required": ["size"], "properties": {
                             "size": {"type": "integer", "minimum": 1, "maximum": 10}}}}}}}]},
    }
    if await kube.get_or_none(CRDS, crd["metadata"]["name"]) is None:
        await kube.create(CRDS, crd)
    await eventually(lambda: _established(kube), what="CRD Established")

    ok = await kube.create(WIDGETS, {"apiVersion": "harness.example.com/v1", "kind": "Widget",
                                     "metadata": {"name": "fine"}, "spec": {"size": 3}},
                           namespace)
    assert ok["spec"]["size"] == 3
    with pytest.raises(ApiError) as rejected:
        await kube.create(WIDGETS, {"apiVersion": "harness.example.com/v1", "kind": "Widget",
                                    "metadata": {"name": "too-big"}, "spec": {"size": 11}},
                          namespace)
    assert rejected.value.status == 422
    assert "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10" \
        in rejected.value.message


async def _established(kube: KubeClient) -> bool:
    crd = await kube.get(CRDS, "widgets.harness.example.com")
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


async def test_job_whose_pod_runs_python_completes_with_env_from_secret_and_configmap(
        kube: KubeClient, namespace: str, cluster: LocalCluster) -> None:
    await kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "creds"},
                                "stringData": {"password": "s3cret"}}, namespace)
    await kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "conf"}, "data": {"mode": "fast"}},
                      namespace)
    env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                "key": "password"}}},
           {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "mode"}}},
           {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    code = ("import os,sys; print('hello', os.environ['PASSWORD'], os.environ['MODE'], "
            "os.environ['POD']); sys.exit(0 if os.environ['PASSWORD']=='s3cret' else 9)")
    await kube.create(JOBS, python_job("hello", code, env=env), namespace)
    job = await eventually(lambda: job_condition(kube, namespace, "hello", "Complete"),
                           timeout=60, what="Job Complete")
    assert job["status"]["succeeded"] == 1
    pods = (await kube.list(PODS, namespace, label_selector="job-name=hello"))["items"]
    assert pods[0]["status"]["phase"] == "Succeeded"
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    log = Path(cluster.root, "kubelet", "logs",
               f"{namespace}_{pods[0]['metadata']['name']}_main.log").read_text()
    assert f"hello s3cret fast {pods[0]['metadata']['name']}" in log


async def test_init_containers_run_first_and_a_failing_one_fails_the_pod(
        kube: KubeClient, namespace: str, cluster: LocalCluster) -> None:
    """Init containers run one after the other before the main one (each sees the last's
    work in a shared emptyDir); a failing one ends the pod Failed, main never started."""
    def job(name: str, second_init_exit: int) -> dict[str, Any]:
        body = python_job(name, "print(open('/work/order').read())")
        spec = body["spec"]["template"]["spec"]
        mount = [{"name": "work", "mountPath": "/work"}]
        spec["volumes"] = [{"name": "work", "emptyDir": {}}]
        spec["containers"][0]["volumeMounts"] = mount
        spec["initContainers"] = [
            {"name": f"init-{i}", "image": "python:3.11-slim", "volumeMounts": mount,
             "command": ["python", "-c",
                         f"open('/work/order', 'a').write('{i} '); raise SystemExit({code})"]}
            for i, code in ((1, 0), (2, second_init_exit))]
        body["spec"]["template"]["spec"] = restricted(spec)
        return body

    await kube.create(JOBS, job("inits-ok", 0), namespace)
    await eventually(lambda: job_condition(kube, namespace, "inits-ok", "Complete"),
                     timeout=60, what="Job Complete")
    pod = (await kube.list(PODS, namespace, label_selector="job-name=inits-ok"))["items"][0]
    log = Path(cluster.root, "kubelet", "logs",
               f"{namespace}_{pod['metadata']['name']}_main.log").read_text()
    assert "1 2" in log

    await kube.create(JOBS, job("inits-fail", 7), namespace)
    await eventually(lambda: job_condition(kube, namespace, "inits-fail", "Failed"),
                     timeout=60, what="Job Failed")
    pod = (await kube.list(PODS, namespace, label_selector="job-name=inits-fail"))["items"][0]
    assert pod["status"]["phase"] == "Failed"
    assert not Path(cluster.root, "kubelet", "logs",
                    f"{namespace}_{pod['metadata']['name']}_main.log").exists()


async def test_failing_job_is_retried_up_to_backoff_limit_then_marked_failed(
        kube: KubeClient, namespace: str) -> None:
    await kube.create(JOBS, python_job("flaky", "import sys; sys.exit(7)", backoff_limit=2),
                      namespace)
    job = await eventually(lambda: job_condition(kube, namespace, "flaky", "Failed"),
                           timeout=120, what="Job Failed")
    assert job["status"]["failed"] == 3
    reasons = {c["reason"] for c in job["status"]["conditions"] if c["type"] == "Failed"}
    assert reasons == {"BackoffLimitExceeded"}
    pods = (await kube.list(PODS, namespace, label_selector="job-name=flaky"))["items"]
    codes = [p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
             for p in pods]
    assert codes == [7, 7, 7]


async def test_suspending_a_job_terminates_its_pod_with_sigterm(
        kube: KubeClient, namespace: str, cluster: LocalCluster) -> None:
    code = ("import signal,sys,time\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), "
            "sys.exit(0)))\n"
            "print('running', flush=True)\n"
            "time.sleep(600)\n")
    await kube.create(JOBS, python_job("sleeper", code), namespace)

    async def running_pod() -> dict[str, Any] | None:
        pods = (await kube.list(PODS, namespace, label_selector="job-name=sleeper"))["items"]
        return next((p for p in pods if p.get("status", {}).get("phase") == "Running"), None)

    pod = await eventually(running_pod, timeout=60, what="pod Running")
    log_path = Path(cluster.root, "kubelet", "logs",
                    f"{namespace}_{pod['metadata']['name']}_main.log")

    async def handler_installed() -> bool:
        # Running means the process started, not that Python has set its handler yet.
        return log_path.exists() and "running" in log_path.read_text()

    await eventually(handler_installed, timeout=60, what="SIGTERM handler installed")
    await kube.patch(JOBS, "sleeper", {"spec": {"suspend": True}}, namespace)

    async def pods_gone() -> bool:
        pods = (await kube.list(PODS, namespace, label_selector="job-name=sleeper"))["items"]
        return not pods

    await eventually(pods_gone, timeout=60, what="pod deleted after suspend")
    job = await eventually(lambda: job_condition(kube, namespace, "sleeper", "Suspended"),
                           timeout=30, what="Job Suspended")
    assert job["spec"]["suspend"] is True
    assert "got SIGTERM" in log_path.read_text()


async def test_deleting_an_owner_garbage_collects_the_job_it_owns(
        kube: KubeClient, namespace: str) -> None:
    owner = await kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "owner"}}, namespace)
    job = python_job("owned", "print('owned')")
    job["metadata"]["ownerReferences"] = [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    await kube.create(JOBS, job, namespace)
    await kube.delete(CONFIGMAPS, "owner", namespace, propagation="Background")

    async def job_gone() -> bool:
        return await kube.get_or_none(JOBS, "owned", namespace) is None

    await eventually(job_gone, timeout=60, what="owned Job garbage-collected")


async def test_service_account_is_forbidden_what_its_role_does_not_grant(
        kube: KubeClient, namespace: str, cluster: LocalCluster) -> None:
    await kube.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": "reader"}}, namespace)
    await grant(kube, namespace, "configmap-reader", [rule("", ["configmaps"], ["get", "list"])],
                [service_account("reader", namespace)])
    config = cluster.service_account_kubeconfig(namespace, "reader")
    async with KubeClient(load_connection(config)) as reader:
        listed = await reader.list(CONFIGMAPS, namespace)
        assert listed["kind"] == "ConfigMapList"
        with pytest.raises(ApiError) as forbidden:
            await reader.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "nope"}}, namespace)
        assert forbidden.value.status == 403
        assert (f'User "system:serviceaccount:{namespace}:reader" cannot create resource '
                '"configmaps"') in forbidden.value.message
        with pytest.raises(ApiError) as secrets:
            await reader.list(SECRETS, namespace)
        assert secrets.value.status == 403


def test_built_kubectl_reports_the_pinned_version_and_talks_to_the_cluster(
        kubectl_env: dict[str, str]) -> None:
    version = subprocess.run(["kubectl", "version", "-o", "json"], env=kubectl_env,
                             capture_output=True, text=True, check=True, timeout=30).stdout
    assert '"gitVersion": "v1.37.2"' in version
    nodes = subprocess.run(["kubectl", "get", "nodes", "-o", "name"], env=kubectl_env,
                           capture_output=True, text=True, check=True, timeout=30).stdout
    assert nodes.strip() == "node/local-node"


def process_alive(pid: int, token: str) -> bool:
    """Whether `pid` is still our container's process: a zombie, or a pid reused by a
    process that is not ours, counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state != "Z" and token.encode() in cmdline


async def test_pods_of_a_deleted_namespace_are_terminated(kube: KubeClient,
                                                          cluster: LocalCluster,
                                                          tmp_path: Path) -> None:
    # Its own namespace, deliberately without Pod Security labels: the pod writes its
    # markers into this test's tmp_path, so it runs as the kubelet's user (root), which
    # `restricted` would refuse.
    ns = f"t-{uuid.uuid4().hex[:8]}"
    from sync_operator.kube.resources import NAMESPACES
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": ns}})
    token = f"pod-of-{ns}"
    code = (f"# {token}\n"
            "import os,signal,sys,time\n"
            "from pathlib import Path\n"
            "out = Path(os.environ['MARKER_DIR'])\n"
            "def on_term(*_):\n"
            "    print('got SIGTERM', flush=True)\n"
            "    (out / 'terminated').write_text(f'SIGTERM {os.getpid()}')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, on_term)\n"
            "(out / 'pid.tmp').write_text(str(os.getpid()))\n"
            "os.replace(out / 'pid.tmp', out / 'pid')\n"
            "time.sleep(600)\n")
    await kube.create(JOBS, python_job("long", code, env=[
        {"name": "MARKER_DIR", "value": str(tmp_path)}], restricted_pod=False), ns)

    async def running_pod() -> tuple[str, str] | None:  # its name and container ID
        for pod in (await kube.list(PODS, ns))["items"]:
            status = pod.get("status", {})
            if status.get("phase") == "Running":
                return pod["metadata"]["name"], status["containerStatuses"][0]["containerID"]
        return None

    name, container_id = await eventually(running_pod, timeout=60, what="pod Running")

    async def started_pid() -> int | None:  # written once its SIGTERM handler is in place
        path = tmp_path / "pid"
        return int(path.read_text()) if path.exists() else None

    pid = await eventually(started_pid, timeout=30, what="the pod's process to start")
    assert container_id == f"process://{pid}"  # the kubelet runs it as this very process
    assert process_alive(pid, token)
    assert not (tmp_path / "terminated").exists()

    await kube.delete(NAMESPACES, ns)

    async def pod_gone() -> bool:
        return await kube.get_or_none(PODS, name, ns) is None

    async def namespace_gone() -> bool:
        return await kube.get_or_none(NAMESPACES, ns) is None

    await eventually(pod_gone, timeout=60, what="the pod object deleted")
    await eventually(namespace_gone, timeout=90, what="namespace deleted")

    # Terminated gracefully: SIGTERM reached the process (SIGKILL would leave no marker) ...
    assert (tmp_path / "terminated").read_text() == f"SIGTERM {pid}"
    log = Path(cluster.root, "kubelet", "logs", f"{ns}_{name}_main.log").read_text()
    assert "got SIGTERM" in log
    # ... and the process is gone, not left running behind a deleted pod.
    assert not process_alive(pid, token)
