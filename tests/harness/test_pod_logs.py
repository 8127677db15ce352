"""`pods/log` through the real API server: it calls the process kubelet's log endpoint
at the port and address the Node reports, with its client certificate, and the kubelet
serves the container's log file (tail, limit, follow). RBAC is the API server's."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import JOBS, NAMESPACES, NODES, PODS
from testkit.cluster import NODE_NAME, LocalCluster
from testkit.kubelet_server import tail_offset
from testkit.rbac import grant, rule, user
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
Obj = dict[str, Any]

# Three lines, then waits for the file `go` and prints one more, then exits.
PRINTS_THEN_WAITS = """
import os, time
from pathlib import Path
for i in (1, 2, 3):
    print(f"line {i}", flush=True)
while not Path(os.environ["GO"]).exists():
    time.sleep(0.05)
print("after go", flush=True)
"""


@pytest.fixture
async def plain_namespace(kube: KubeClient) -> AsyncIterator[str]:
    """No Pod Security labels: the container reads the test's tmp_path as the kubelet's
    user, which `restricted` would refuse."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name}})
    yield name
    await kube.delete(NAMESPACES, name)


async def job_pod(kube: KubeClient, ns: str, go: Path) -> str:
    """A python Job's pod, once it has printed its three lines; its name."""
    await kube.create(JOBS, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "printer"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "python",
                            "args": ["-c", PRINTS_THEN_WAITS],
                            "env": [{"name": "GO", "value": str(go)}]}]}}}}, ns)

    async def printed() -> str | None:
        pods = (await kube.list(PODS, ns, label_selector="job-name=printer"))["items"]
        running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
        if not running:
            return None
        name = str(running[0]["metadata"]["name"])
        return name if "line 3" in await read_log(kube, ns, name) else None

    return await eventually(printed, timeout=60, what="the Job's pod printing")


async def read_log(kube: KubeClient, ns: str, pod: str, **params: str) -> str:
    async with kube.stream(PODS.path(ns, pod, "log"), params) as chunks:
        return b"".join([c async for c in chunks]).decode()


async def test_the_node_reports_the_log_endpoint_the_api_server_dials(
        cluster: LocalCluster, kube: KubeClient) -> None:
    status = (await kube.get(NODES, NODE_NAME))["status"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == cluster.kubelet_port
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]


async def test_pods_log_returns_the_output_with_tail_and_limit(
        kube: KubeClient, plain_namespace: str, tmp_path: Path) -> None:
    ns = plain_namespace
    pod = await job_pod(kube, ns, tmp_path / "go")
    assert await read_log(kube, ns, pod) == "line 1\nline 2\nline 3\n"
    assert await read_log(kube, ns, pod, tailLines="2") == "line 2\nline 3\n"
    assert await read_log(kube, ns, pod, tailLines="0") == ""
    assert await read_log(kube, ns, pod, tailLines="10") == "line 1\nline 2\nline 3\n"
    assert await read_log(kube, ns, pod, limitBytes="9") == "line 1\nli"
    with pytest.raises(ApiError) as refused:
        await read_log(kube, ns, pod, previous="true")
    assert refused.value.status == 400
    assert "previous is not supported by the process kubelet" in refused.value.message
    (tmp_path / "go").touch()


async def test_follow_streams_a_line_printed_after_the_request_and_ends_with_the_container(
        kube: KubeClient, plain_namespace: str, tmp_path: Path) -> None:
    ns = plain_namespace
    pod = await job_pod(kube, ns, tmp_path / "go")
    seen = b""
    async with kube.stream(PODS.path(ns, pod, "log"), {"follow": "true",
                                                       "tailLines": "1"}) as chunks:
        async def read_to_end() -> None:
            nonlocal seen
            async for chunk in chunks:
                seen += chunk
                if seen == b"line 3\n":
                    (tmp_path / "go").touch()  # only now: the request has started

        # The stream ends by itself once the container has exited.
        await asyncio.wait_for(read_to_end(), 30)
    assert seen == b"line 3\nafter go\n"


async def test_a_user_without_pods_log_is_refused_by_the_api_server(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str, tmp_path: Path) -> None:
    ns = plain_namespace
    pod = await job_pod(kube, ns, tmp_path / "go")
    # carol may see the pods, not their logs.
    await grant(kube, ns, "pods-only", [rule("", ["pods"], ["get", "list"])], [user("carol")])
    async with KubeClient(load_connection(cluster.user_kubeconfig("carol", ns))) as carol:
        async def sees_pods() -> bool:
            try:
                return bool(await carol.get(PODS, pod, ns))
            except ApiError as err:
                if err.status != 403:
                    raise
                return False  # the role is not in the API server's cache yet

        await eventually(sees_pods, timeout=10, what="carol's role")
        with pytest.raises(ApiError) as refused:
            await read_log(carol, ns, pod)
    assert refused.value.status == 403
    assert 'cannot get resource "pods/log"' in refused.value.message
    (tmp_path / "go").touch()


async def test_the_log_endpoint_comes_back_on_the_same_port_after_a_kubelet_restart(
        cluster: LocalCluster, kube: KubeClient, plain_namespace: str, tmp_path: Path) -> None:
    ns = plain_namespace
    pod = await job_pod(kube, ns, tmp_path / "go")
    await cluster.restart_kubelet_async()
    # The adopted container's log, through the new kubelet at the port the Node reports.
    assert await read_log(kube, ns, pod) == "line 1\nline 2\nline 3\n"
    status = (await kube.get(NODES, NODE_NAME))["status"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == cluster.kubelet_port
    (tmp_path / "go").touch()


async def test_the_log_endpoint_serves_only_the_api_servers_client_certificate(
        cluster: LocalCluster) -> None:
    """Authorization is the API server's: nobody else reads logs straight from here,
    not without a certificate, nor with another one the cluster's CA signed."""
    url = f"https://127.0.0.1:{cluster.kubelet_port}/containerLogs/default/x/main"
    anonymous = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    other = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    other.load_cert_chain(str(cluster.pki.serving_cert), str(cluster.pki.serving_key))
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(url, ssl=anonymous) as resp:
                await resp.read()
        async with http.get(url, ssl=other) as resp:
            assert resp.status == 403
            assert "only the API server" in await resp.text()


@pytest.mark.parametrize("ending", ["\n", ""])
def test_a_tail_of_a_long_log_starts_at_the_right_line(tmp_path: Path, ending: str) -> None:
    """Read backwards in blocks: lines that straddle a block boundary count once."""
    lines = [f"line {i} " + "x" * (i % 97) for i in range(5000)]  # ~300 KiB, many blocks
    path = tmp_path / "log"
    path.write_text("\n".join(lines) + ending)
    with path.open("rb") as f:
        for n in (1, 2, 1234, 4999):
            f.seek(tail_offset(f, n))
            assert f.read().decode().splitlines() == lines[-n:]
        assert tail_offset(f, 5000) == 0
        assert tail_offset(f, 9999) == 0
        assert tail_offset(f, 0) == path.stat().st_size
