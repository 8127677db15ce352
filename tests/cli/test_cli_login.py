"""Logging in as kubectl does, on the real API server: an exec credential plugin (as EKS,
GKE, AKS and OIDC kubeconfigs use), a $KUBECONFIG list merged across files, a token
file that rotates under a running client, and LISTs paged."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient, Resource, load_connection
from sync_operator.kube.resources import CONFIGMAPS, SERVICEACCOUNTS
from testkit.cluster import LocalCluster
from testkit.syncjobs import grant_users, syncjob
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
SELF_SUBJECT_REVIEWS = Resource("authentication.k8s.io", "v1", "selfsubjectreviews",
                                namespaced=False)


async def whoami(client: KubeClient) -> str:
    review = await client.create(SELF_SUBJECT_REVIEWS, {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return str(review["status"]["userInfo"]["username"])  # type: ignore[typeddict-item]


def exec_plugin(directory: Path, token: str) -> Path:
    """A credential plugin printing `token` as a v1 ExecCredential, counting its runs."""
    script = directory / "cloud-auth"
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    script.write_text(f"""#!{sys.executable}
import json, os
with open({str(directory / "runs")!r}, "a") as out:
    out.write(os.environ["KUBERNETES_EXEC_INFO"] + "\\n")
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {{"token": {token!r}, "expirationTimestamp": {expiry!r}}}}}))
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def split_kubeconfig(cluster: LocalCluster, directory: Path, user: dict[str, object],
                     namespace: str) -> str:
    """The cluster and context in one file, the user in another: a $KUBECONFIG list."""
    admin = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    (directory / "cluster.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "cloud",
        "clusters": admin["clusters"],
        "contexts": [{"name": "cloud", "context": {
            "cluster": admin["clusters"][0]["name"], "user": "cloud-user",
            "namespace": namespace}}]}))
    (directory / "user.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": "cloud-user", "user": user}]}))
    return f"{directory / 'missing.yaml'}:{directory / 'cluster.yaml'}:{directory / 'user.yaml'}"


async def test_an_exec_plugin_user_in_a_merged_kubeconfig_list_logs_in(
        cluster: LocalCluster, kube: KubeClient, namespace: str, crds: list[str],
        kubectl_env: dict[str, str], tmp_path: Path) -> None:
    await grant_users(kube, namespace)
    await kube.create(SYNCJOBS, syncjob("visible", "prayer", paused=True), namespace)
    plugin = exec_plugin(tmp_path, cluster.tokens["alice"])
    kubeconfig = split_kubeconfig(cluster, tmp_path, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
        "interactiveMode": "Never", "provideClusterInfo": True}}, namespace)

    async with KubeClient(load_connection(kubeconfig)) as client:
        assert await whoami(client) == "alice"
        assert client.connection.namespace == namespace  # from the merged context
    info = json.loads((tmp_path / "runs").read_text().splitlines()[0])
    assert info["spec"]["cluster"]["server"] == cluster.server

    # kubectl and kubectl sync read the same list the same way.
    env = {**kubectl_env, "KUBECONFIG": kubeconfig}
    for argv in (["kubectl", "get", "syncjobs", "-o", "name"],
                 ["kubectl", "sync", "list", "-o", "name"]):
        done = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True,
                                       text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "syncjob.sync.jobcontrol.io/visible", argv


async def test_a_rotated_token_file_is_read_again_when_the_old_token_is_refused(
        cluster: LocalCluster, kube: KubeClient, namespace: str, tmp_path: Path) -> None:
    """As a bound ServiceAccount token is rotated in its projected file: the running
    client's next request after the old token stops working uses the new one."""
    tokens = {}
    for name in ("old-identity", "new-identity"):
        await kube.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                            "metadata": {"name": name}}, namespace)
        request = await kube.create(SERVICEACCOUNTS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}}, namespace, "token", name=name)
        tokens[name] = request["status"]["token"]  # type: ignore[typeddict-item]
    token_file = tmp_path / "token"
    token_file.write_text(tokens["old-identity"] + "\n")
    kubeconfig = split_kubeconfig(cluster, tmp_path, {"tokenFile": str(token_file)},
                                  namespace)
    async with KubeClient(load_connection(kubeconfig)) as client:
        assert await whoami(client) == f"system:serviceaccount:{namespace}:old-identity"
        token_file.write_text(tokens["new-identity"] + "\n")
        await kube.delete(SERVICEACCOUNTS, "old-identity", namespace)  # its tokens die

        async def renewed() -> str | None:
            # Until the API server refuses the old token the file is not read again
            # (its period is a minute); then one 401, a fresh read, the new identity.
            identity = await whoami(client)
            return identity if identity.endswith(":new-identity") else None

        assert await eventually(renewed, timeout=30, what="the new token in use") == \
            f"system:serviceaccount:{namespace}:new-identity"


async def test_a_list_comes_in_pages_and_whole(kube: KubeClient, namespace: str) -> None:
    for n in range(12):
        await kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": f"cm-{n:02d}"}}, namespace)
    before = kube.requests
    listed = await kube.list(CONFIGMAPS, namespace, page_size=5)
    names = sorted(item["metadata"]["name"] for item in listed["items"])
    assert [n for n in names if n.startswith("cm-")] == [f"cm-{n:02d}" for n in range(12)]
    assert kube.requests - before == 3  # 5 + 5 + 2 (and the root CA ConfigMap)
    assert "continue" not in listed["metadata"]
    assert listed["metadata"]["resourceVersion"]
