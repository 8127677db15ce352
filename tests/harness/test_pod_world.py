"""What the process kubelet gives a container, part by part, for real: volumes made from
the real API server (Secrets, ConfigMaps, downward API, bound ServiceAccount tokens
that are renewed), a mount namespace with those volumes at their paths, another user
and a read-only root, and the probes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sync_operator.kube import ApiError, KubeClient, Resource
from sync_operator.kube.config import Connection
from sync_operator.kube.resources import CONFIGMAPS, PODS, SECRETS
from testkit import podvolumes
from testkit.cluster import LocalCluster
from testkit.containers import Identity, can_isolate, launch_argv, reachable_by
from testkit.podnet import PodIPs
from testkit.podsecurity import (
    RESTRICTED_UID,
    restricted_container_context,
    restricted_pod_context,
)
from testkit.podvolumes import Mount, PodVolumes, VolumeNotReadyError
from testkit.probes import Probe
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
SELF_SUBJECT_REVIEWS = Resource("authentication.k8s.io", "v1", "selfsubjectreviews",
                                namespaced=False)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


# -- the container's world ---------------------------------------------------------------


def test_a_container_sees_its_volumes_at_their_paths_as_its_user_on_a_read_only_root(
        tmp_path: Path) -> None:
    assert can_isolate(), "the process kubelet isolates containers as root (CI runs as root)"
    secret, scratch = tmp_path / "secret", tmp_path / "scratch"
    secret.mkdir()
    scratch.mkdir()
    scratch.chmod(0o777)
    (secret / "token").write_text("s3cr3t")
    target = f"/var/run/secrets/sync-test-{tmp_path.name}"
    code = (
        "import os, json\n"
        f"out = {{'uid': os.getuid(), 'token': open({target + '/token'!r}).read()}}\n"
        f"for name, path in [('ro_mount', {target + '/x'!r}), ('root', '/sync-test-file'),"
        f" ('scratch', '/scratch-{tmp_path.name}/x')]:\n"
        "    try:\n"
        "        open(path, 'w').close(); out[name] = 'written'\n"
        "    except OSError as err:\n"
        "        out[name] = err.strerror\n"
        "print(json.dumps(out))\n")
    system_python = "/usr/bin/python3"  # reachable by any user, unlike a pyenv under /root
    assert reachable_by(system_python, 65532)
    argv = launch_argv(
        [system_python, "-c", code],
        [Mount(secret, target, read_only=True),
         Mount(scratch, f"/scratch-{tmp_path.name}", read_only=False)],
        Identity(user=65532, group=65532, read_only_root=True, no_new_privileges=True))
    done = run(argv)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"uid": 65532, "token": "s3cr3t", "ro_mount": "Read-only file system",
                    "root": "Read-only file system", "scratch": "written"}
    # Outside the container nothing changed: the mount is its own.
    assert not any(Path(target).iterdir())


def test_an_emptydir_over_tmp_does_not_hide_the_other_volumes_kept_under_tmp(
        tmp_path: Path) -> None:
    """The kubelet keeps volumes under its state directory, here under /tmp, and the
    operator's pod mounts an emptyDir at /tmp: listed first, it must still not hide the
    webhook certificate's source from the mount that comes after it."""
    scratch, secret = tmp_path / "tmp-volume", tmp_path / "secret"
    scratch.mkdir()
    secret.mkdir()
    (secret / "tls.crt").write_text("certificate")
    target = f"/etc/sync-test-{tmp_path.name}"
    assert str(secret).startswith("/tmp/")
    code = (f"print(open({target + '/tls.crt'!r}).read(), "
            "sorted(__import__('os').listdir('/tmp')))")
    argv = launch_argv(["/usr/bin/python3", "-c", code],
                       [Mount(scratch, "/tmp", read_only=False),
                        Mount(secret, target, read_only=True)],
                       Identity(user=None, group=None, read_only_root=False,
                                no_new_privileges=True))
    done = run(argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["certificate", "[]"]  # the emptyDir, empty, at /tmp


def test_a_container_that_needs_nothing_is_its_plain_command() -> None:
    argv = [sys.executable, "-c", "pass"]
    assert launch_argv(argv, [], Identity(None, None, False, False)) == argv


# -- volumes from the API server -----------------------------------------------------------


@pytest.fixture
async def elsewhere_pod(kube: KubeClient, namespace: str) -> AsyncIterator[dict[str, Any]]:
    """A real Pod object (tokens are bound to it) on a node no kubelet serves."""
    pod = await kube.create(PODS, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "holder", "labels": {"app": "holder"},
                     "annotations": {"team": "sync"}},
        "spec": {"nodeName": "no-such-node",
                 "securityContext": restricted_pod_context(fsGroup=RESTRICTED_UID),
                 "containers": [
            {"name": "c", "image": "python",
             "securityContext": restricted_container_context(runAsUser=RESTRICTED_UID)}],
                 "volumes": []}}, namespace)
    yield dict(pod)
    await kube.delete(PODS, "holder", namespace, grace_period_seconds=0)


async def test_volumes_are_made_from_secrets_configmaps_the_pod_and_its_token(
        cluster: LocalCluster, kube: KubeClient, namespace: str, tmp_path: Path,
        elsewhere_pod: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    await kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "db"},
                                "stringData": {"url": "postgresql://x"}}, namespace)
    pod = dict(elsewhere_pod)
    pod["spec"] = {**pod["spec"], "volumes": [
        {"name": "db", "secret": {"secretName": "db", "defaultMode": 0o440}},
        {"name": "settings", "configMap": {"name": "settings"}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "team", "fieldRef": {"fieldPath": "metadata.annotations['team']"}}]}},
        {"name": "api", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
            {"configMap": {"name": "settings", "items": [{"key": "ca", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [
                {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "scratch", "emptyDir": {}}]}
    volumes = PodVolumes(kube, pod, tmp_path / "pod")
    with pytest.raises(VolumeNotReadyError, match="'settings' not found"):
        await volumes.prepare()  # the ConfigMap is not there yet: ContainerCreating
    await kube.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "settings"},
                                   "data": {"level": "debug", "ca": "CA"}}, namespace)
    await volumes.prepare()
    root = tmp_path / "pod" / "volumes"
    assert (root / "db" / "url").read_text() == "postgresql://x"
    assert (root / "db" / "url").stat().st_mode & 0o777 == 0o440
    assert (root / "db" / "url").stat().st_gid == 65532  # fsGroup: the pod's user reads it
    assert (root / "settings" / "level").read_text() == "debug"
    assert (root / "info" / "name").read_text() == "holder"
    assert (root / "info" / "team").read_text() == "sync"
    assert (root / "api" / "ca.crt").read_text() == "CA"
    assert (root / "api" / "namespace").read_text() == namespace
    assert (root / "scratch").is_dir()

    async def user_of(token: str) -> dict[str, Any]:
        connection = Connection(server=cluster.server, ca_data=cluster.pki.ca_cert.read_bytes(),
                                token=token)
        async with KubeClient(connection) as client:
            review = await client.create(SELF_SUBJECT_REVIEWS, {
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        return dict(review["status"]["userInfo"])  # type: ignore[typeddict-item]

    first = (root / "api" / "token").read_text()
    who = await user_of(first)
    assert who["username"] == f"system:serviceaccount:{namespace}:default"
    assert who["extra"]["authentication.kubernetes.io/pod-name"] == ["holder"]  # bound

    # Renewed at 80 % of its life (shortened here), in place, as a new valid token.
    monkeypatch.setattr(podvolumes, "REFRESH_AT", 0.001)
    volumes._tokens = [(path, source, 0.0) for path, source, _ in volumes._tokens]
    refresher = asyncio.create_task(volumes.refresh_tokens())
    try:
        async def renewed() -> str | None:
            token = (root / "api" / "token").read_text()
            return token if token != first else None

        second = await eventually(renewed, timeout=20, what="a renewed token")
    finally:
        refresher.cancel()
    assert (await user_of(second))["username"] == who["username"]


async def test_a_token_is_bound_to_its_pod(kube: KubeClient, namespace: str,
                                          tmp_path: Path, elsewhere_pod: dict[str, Any]
                                          ) -> None:
    pod = {**elsewhere_pod, "metadata": {**elsewhere_pod["metadata"], "uid": "not-its-uid"},
           "spec": {**elsewhere_pod["spec"], "volumes": [
               {"name": "api", "projected": {"sources": [
                   {"serviceAccountToken": {"path": "token"}}]}}]}}
    with pytest.raises(ApiError) as refused:
        await PodVolumes(kube, pod, tmp_path / "pod").prepare()
    assert "uid" in refused.value.message


# -- pod IPs and probes --------------------------------------------------------------------


def test_pod_ips_are_distinct_loopback_addresses_kept_across_restarts() -> None:
    ips = PodIPs(routed=False)
    a, b = ips.of("a"), ips.of("b")
    assert a != b
    assert a.startswith("127.1.")
    assert ips.of("a") == a
    again = PodIPs(routed=False)
    assert again.of("b", reported=b) == b  # what the pod's status already says
    assert again.of("c") != b


async def test_probes_flip_their_verdict_after_their_thresholds(tmp_path: Path) -> None:
    healthy = {"ok": True}

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200 if healthy["ok"] else 503)

    app = web.Application()
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app)
    await runner.setup()
    ips = PodIPs()
    host = ips.of("probe-target")
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    container = {"name": "c", "ports": [{"name": "health", "containerPort": port}]}
    try:
        assert await Probe({"httpGet": {"path": "/healthz", "port": "health"}},
                           container, host).check()
        assert await Probe({"tcpSocket": {"port": port}}, container, host).check()
        assert await Probe({"exec": {"command": ["true"]}}, container, host).check()
        assert not await Probe({"exec": {"command": ["false"]}}, container, host).check()
        verdicts: list[bool] = []
        probe = Probe({"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 0.05,
                       "failureThreshold": 3, "successThreshold": 2}, container, host)
        task = asyncio.create_task(probe.run(verdicts.append, initial=False))

        def seen(expected: list[bool]) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return verdicts == expected
            return check

        try:
            await eventually(seen([True]), timeout=10, what="ready")
            healthy["ok"] = False
            await eventually(seen([True, False]), timeout=10,
                             what="not ready after 3 failures")
        finally:
            task.cancel()
    finally:
        await runner.cleanup()
    assert not await Probe({"tcpSocket": {"port": port}}, container, host).check()
    ips.release("probe-target")


# -- all of it, through the process kubelet ---------------------------------------------------

RESTRICTED = restricted_container_context(runAsUser=RESTRICTED_UID, runAsGroup=RESTRICTED_UID,
                                          readOnlyRootFilesystem=True)


def container_log(cluster: LocalCluster, namespace: str, pod: str, container: str) -> str:
    path = cluster.root / "kubelet" / "logs" / f"{namespace}_{pod}_{container}.log"
    return path.read_text(errors="replace") if path.exists() else ""


async def pod_phase(kube: KubeClient, namespace: str, name: str, *phases: str
                    ) -> dict[str, Any] | None:
    pod = await kube.get_or_none(PODS, name, namespace)
    return dict(pod) if pod and (pod.get("status") or {}).get("phase") in phases else None


async def test_a_pods_code_logs_in_in_cluster_with_its_projected_token(
        cluster: LocalCluster, kube: KubeClient, namespace: str) -> None:
    """Our own client, in a pod, as in a real cluster: KUBERNETES_SERVICE_HOST and the
    ServiceAccount volume the API server's admission projected into the pod."""
    code = (
        "import asyncio, os\n"
        "from sync_operator.kube import KubeClient, Resource, load_connection\n"
        "R = Resource('authentication.k8s.io', 'v1', 'selfsubjectreviews', namespaced=False)\n"
        "async def main():\n"
        "    async with KubeClient(load_connection()) as c:\n"
        "        r = await c.create(R, {'apiVersion': 'authentication.k8s.io/v1',"
        " 'kind': 'SelfSubjectReview'})\n"
        "        print('user', r['status']['userInfo']['username'], 'uid', os.getuid())\n"
        "        print('namespace', c.connection.namespace)\n"
        "        try:\n"
        "            open('/written', 'w')\n"
        "        except OSError as e:\n"
        "            print('root', e.strerror)\n"
        "asyncio.run(main())\n")
    await kube.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "in-cluster"},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "python", "command": ["python", "-c", code],
             "securityContext": RESTRICTED}]}}, namespace)
    pod = await eventually(lambda: pod_phase(kube, namespace, "in-cluster", "Succeeded",
                                             "Failed"), timeout=60, what="the pod's end")
    out = container_log(cluster, namespace, "in-cluster", "main")
    assert pod["status"]["phase"] == "Succeeded", out
    # As its runAsUser where that user can start the interpreter at all (a pyenv under
    # a 0700 /root it cannot: then as the kubelet's user, with a warning).
    uid = 65532 if reachable_by(sys.executable, 65532) else 0
    assert f"user system:serviceaccount:{namespace}:default uid {uid}" in out
    assert f"namespace {namespace}" in out
    assert "root Read-only file system" in out


async def test_readiness_puts_a_pod_in_its_services_endpoints_and_liveness_restarts_it(
        cluster: LocalCluster, kube: KubeClient, namespace: str) -> None:
    server = (
        "import http.server, os\n"
        "hits = {'alive': 0}\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        if self.path == '/alive':\n"
        "            hits['alive'] += 1\n"
        "        code = 500 if self.path == '/alive' and hits['alive'] > 3 else 200\n"
        "        self.send_response(code); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "http.server.HTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n")
    await kube.create(Resource("", "v1", "services"), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        namespace)
    await kube.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 2,
                 "containers": [{
                     "name": "web", "image": "python", "command": ["python", "-c", server],
                     "env": [{"name": "POD_IP",
                              "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                     "ports": [{"name": "http", "containerPort": 8080}],
                     "securityContext": RESTRICTED,
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                        "periodSeconds": 1},
                     "livenessProbe": {"httpGet": {"path": "/alive", "port": "http"},
                                       "initialDelaySeconds": 1, "periodSeconds": 1,
                                       "failureThreshold": 2}}]}}, namespace)
    endpoints = Resource("", "v1", "endpoints")

    async def listed() -> str | None:
        ep = await kube.get_or_none(endpoints, "web", namespace)
        subsets = (ep or {}).get("subsets") or []  # type: ignore[attr-defined]
        ips = [a["ip"] for s in subsets for a in s.get("addresses") or []]
        return ips[0] if ips else None

    try:
        ip = await eventually(listed, timeout=30,
                              what="the ready pod in the Service's Endpoints")
    except AssertionError as err:
        pod = await kube.get(PODS, "web", namespace)
        raise AssertionError(f"{err}\npod status: {pod.get('status')}\nlog: "
                             f"{container_log(cluster, namespace, 'web', 'web')}") from None
    pod = await kube.get(PODS, "web", namespace)
    assert pod["status"]["podIP"] == ip  # type: ignore[typeddict-item]
    assert ip.startswith("10.244.")  # a routable pod IP: Endpoints refuse loopback

    async def restarted() -> int:
        got = await kube.get(PODS, "web", namespace)
        statuses = got["status"].get("containerStatuses") or []  # type: ignore[typeddict-item]
        return int(statuses[0]["restartCount"]) if statuses else 0

    assert await eventually(restarted, timeout=60, what="a restart by the liveness probe") >= 1
    await eventually(listed, timeout=30, what="ready again after the restart")
