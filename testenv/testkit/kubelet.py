"""A process kubelet: runs the pods bound to its Node as local processes.

It stands in for a real kubelet and container runtime where neither can run (no
Docker engine, no container images): it registers a Node and keeps it Ready,
binds pending pods to itself (there is no scheduler), runs each container as a
local process (the image name maps to a local entrypoint through a table),
reports pod phase and container statuses with exit codes so the real Job
controller completes, retries or fails Jobs, and on pod deletion sends SIGTERM,
then SIGKILL after terminationGracePeriodSeconds. Each container's output goes
to a log file under the state directory.

A pod gets what a container would (testkit.podvolumes, containers, podnet, probes): an
IP of its own on the loopback range, reported in its status (so Endpoints list it);
its volumes (Secrets, ConfigMaps, emptyDir, downward API, projected ServiceAccount
tokens from the TokenRequest API, renewed) bind-mounted at their mount paths in a mount
namespace of the container's own, as its runAsUser, on a read-only root if asked; the
API server as KUBERNETES_SERVICE_HOST/PORT; and readiness, liveness and startup probes
that drive its Ready condition and restart its containers.

An image whose table entry is [IN_PROCESS_SIM] runs in-process instead: the sync
runner as an asyncio task of this kubelet (testkit.sim_runner), for scale tests that a
process per pod could not afford. Its pods look the same from the API (phases, exit
codes, restarts, SIGTERM on deletion); only the containerID says `inprocess://`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import CONFIGMAPS, LEASES, NODES, PODS, SECRETS
from testkit.containers import IsolationUnavailableError, identity, launch_argv
from testkit.podnet import PodIPs
from testkit.podvolumes import PodVolumes, VolumeNotReadyError
from testkit.probes import Probe
from testkit.sim_runner import SimContainer, SimRuntime

log = logging.getLogger("process-kubelet")
Obj = dict[str, Any]
PYTHON_ALIASES = {"python", "python3", "/usr/bin/python3", "/usr/local/bin/python"}
# The image table's entry for an image run in-process: {"sync-sim": [IN_PROCESS_SIM]}.
IN_PROCESS_SIM = "in-process:sync-runner-sim"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_key(image: str) -> str:
    """`registry.example/team/sync-runner:1.2@sha256:..` -> `sync-runner`."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes-style $(VAR) expansion; unknown references stay as written."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


# How often a pod status patch that timed out is tried again.
STATUS_ATTEMPTS = 6
# Restarts of a container that keeps exiting wait longer each time (CrashLoopBackOff).
RESTART_BACKOFF_FIRST, RESTART_BACKOFF_MAX = 1.0, 30.0


class ContainerConfigError(Exception):
    """A container cannot start yet (missing Secret/ConfigMap, unmapped image)."""


@dataclass
class ContainerRun:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    log_path: Path
    in_process: bool = False  # the image's table entry is [IN_PROCESS_SIM]
    process: asyncio.subprocess.Process | None = None
    sim: SimContainer | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    restart_count: int = 0
    spec: Obj = field(default_factory=dict)  # the pod's container entry (probes, ports)
    ready: bool = True  # the readiness probe's verdict (no probe: ready when running)
    started: bool = True  # the startup probe's verdict (no probe: started when running)
    probes: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass
class PodRun:
    """One pod's processes and the task that supervises them."""

    uid: str
    namespace: str
    name: str
    containers: list[ContainerRun] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    terminating: bool = False
    terminator: asyncio.Task[None] | None = None
    grace_seconds: int = 30
    ip: str = "127.0.0.1"
    volumes: PodVolumes | None = None
    refresher: asyncio.Task[None] | None = None
    status_changed: asyncio.Event = field(default_factory=asyncio.Event)


class ProcessKubelet:
    def __init__(self, client: KubeClient, node_name: str, state_dir: Path,
                 images: dict[str, list[str]]) -> None:
        self.client = client
        self.node_name = node_name
        self.state_dir = state_dir
        self.images = images
        self.pods: dict[str, PodRun] = {}
        self.handled_deletions: set[str] = set()
        self.sims = SimRuntime()
        self.ips = PodIPs()
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)

    # -- node ---------------------------------------------------------------------------

    def _node_status(self) -> Obj:
        now = now_rfc3339()
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "250", "ephemeral-storage": "100Gi"}

        def cond(ctype: str, status: str, reason: str) -> Obj:
            return {"type": ctype, "status": status, "reason": reason,
                    "message": "process kubelet", "lastHeartbeatTime": now,
                    "lastTransitionTime": now}

        return {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                cond("Ready", "True", "KubeletReady"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node_name}],
            "nodeInfo": {"kubeletVersion": "process-kubelet", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "process://1",
                         "kernelVersion": os.uname().release, "osImage": "local",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""},
        }

    async def register_node(self) -> None:
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name,
                             "labels": {"kubernetes.io/hostname": self.node_name,
                                        "kubernetes.io/os": "linux"}}}
        try:
            await self.client.create(NODES, node)
        except ApiError as err:
            if err.status != 409:
                raise
        await self.client.patch(NODES, self.node_name, {"status": self._node_status()},
                                subresource="status")

    async def heartbeat(self) -> None:
        lease_body: Obj = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": 40},
        }
        while True:
            try:
                await self.client.patch(NODES, self.node_name, {"status": self._node_status()},
                                        subresource="status")
                lease_body["spec"]["renewTime"] = datetime.now(UTC).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ")
                try:
                    await self.client.patch(LEASES, self.node_name, lease_body,
                                            "kube-node-lease")
                except ApiError as err:
                    if err.not_found:
                        with contextlib.suppress(ApiError):
                            await self.client.create(LEASES, lease_body, "kube-node-lease")
            except Exception as err:  # keep beating through API hiccups
                log.warning("heartbeat failed: %s", err)
            await asyncio.sleep(10)

    # -- pod watch ---------------------------------------------------------------------

    async def watch_pods(self) -> None:
        while True:
            try:
                listing = await self.client.list(PODS)
                for pod in listing.get("items", []):
                    await self.on_pod(dict(pod))
                rv = listing["metadata"]["resourceVersion"]
                while True:
                    async for etype, pod in self.client.watch(PODS, resource_version=rv):
                        if etype == "BOOKMARK":
                            rv = pod["metadata"]["resourceVersion"]
                            continue
                        if etype == "ERROR":  # a metav1.Status, not a pod
                            failure: dict[str, Any] = dict(pod)
                            raise ApiError(int(failure.get("code", 500)), "WatchError",
                                           str(failure.get("message")))
                        rv = pod["metadata"]["resourceVersion"]
                        if etype == "DELETED":
                            await self.on_pod_gone(dict(pod))
                        else:
                            await self.on_pod(dict(pod))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("pod watch restarts: %s", err)
                await asyncio.sleep(0.5)

    async def on_pod(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        phase = pod.get("status", {}).get("phase", "Pending")
        node = spec.get("nodeName")
        if not node:
            if not meta.get("deletionTimestamp"):
                await self.bind(pod)
            return
        if node != self.node_name:
            return
        if meta.get("deletionTimestamp"):
            await self.on_pod_deleting(pod)
            return
        if uid not in self.pods and phase not in ("Succeeded", "Failed"):
            run = PodRun(uid=uid, namespace=meta["namespace"], name=meta["name"])
            self.pods[uid] = run
            run.task = asyncio.create_task(self.run_pod(pod, run))

    async def bind(self, pod: Obj) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                "uid": meta["uid"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
        try:
            await self.client.create(PODS, binding, meta["namespace"], "binding",
                                     name=meta["name"])
        except ApiError as err:
            if err.status not in (404, 409):
                log.warning("bind %s/%s: %s", meta["namespace"], meta["name"], err)

    async def on_pod_deleting(self, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        run = self.pods.get(uid)
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        if run is not None and run.task is not None and not run.task.done():
            if not run.terminating:
                run.terminating = True
                run.grace_seconds = int(grace)
                run.terminator = asyncio.create_task(self.terminate(run))
            return
        if uid in self.handled_deletions:
            return
        self.handled_deletions.add(uid)
        await self.force_delete(meta["namespace"], meta["name"], uid)

    async def on_pod_gone(self, pod: Obj) -> None:
        run = self.pods.pop(pod["metadata"]["uid"], None)
        if run is not None:
            for c in run.containers:
                self._signal(c, signal.SIGKILL)
            if run.task:
                run.task.cancel()
            self._release(run)

    def _release(self, run: PodRun) -> None:
        """What a pod held beyond its processes: its IP, its volumes, its token renewal."""
        for c in run.containers:
            for task in c.probes:
                task.cancel()
        if run.refresher is not None:
            run.refresher.cancel()
        if run.volumes is not None:
            run.volumes.remove()
        self.ips.release(run.uid)

    async def force_delete(self, namespace: str, name: str, uid: str) -> None:
        try:
            await self.client.delete(PODS, name, namespace, grace_period_seconds=0,
                                     preconditions={"uid": uid})
        except ApiError as err:
            if err.status not in (404, 409):
                log.warning("delete %s/%s: %s", namespace, name, err)

    # -- running -----------------------------------------------------------------------

    async def run_pod(self, pod: Obj, run: PodRun) -> None:
        spec = pod["spec"]
        started = now_rfc3339()
        run.ip = self.ips.of(run.uid, (pod.get("status") or {}).get("podIP"))
        pod = {**pod, "status": {**(pod.get("status") or {}), "podIP": run.ip}}
        await self.patch_status(run, pod, "Pending", started, [], init=False)
        run.volumes = PodVolumes(self.client, pod, self.state_dir / "pods" / run.uid)
        retry = 0.1
        while True:
            try:
                await run.volumes.prepare()
                containers = [await self.prepare(pod, c, spec, run) for c in spec["containers"]]
                inits = [await self.prepare(pod, c, spec, run)
                         for c in spec.get("initContainers", [])]
                break
            except (ContainerConfigError, VolumeNotReadyError) as err:
                await self.patch_waiting(run, pod, started, str(err))
                # Soon at first (a namespace's kube-root-ca.crt comes a moment after it).
                await asyncio.sleep(retry)
                retry = min(retry * 2, 2.0)
                if run.terminating:
                    return
        run.refresher = asyncio.create_task(run.volumes.refresh_tokens())
        for init in inits:
            code = await self.start_and_wait(init)
            if code != 0 or run.terminating:
                run.containers = [init]
                await self.finish(run, pod, started, "Failed")
                return
        run.containers = containers
        policy = spec.get("restartPolicy", "Always")
        for c in containers:
            await self.start(c)
            self._probe(run, c)
        await self.patch_status(run, pod, "Running", started, containers, init=True)
        reporter = asyncio.create_task(self._report_changes(run, pod, started))
        backoff = RESTART_BACKOFF_FIRST
        try:
            while True:
                codes = await asyncio.gather(*(self.wait(c) for c in containers))
                for c in containers:
                    self._stop_probes(c)
                if run.terminating:
                    break
                failed = [c for c, code in zip(containers, codes, strict=True) if code != 0]
                restart = containers if policy == "Always" else failed \
                    if policy == "OnFailure" else []
                if not restart:
                    break
                await self.patch_status(run, pod, "Running", started, containers, init=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RESTART_BACKOFF_MAX)
                for c in restart:
                    c.restart_count += 1
                    await self.start(c)
                    self._probe(run, c)
                await self.patch_status(run, pod, "Running", started, containers, init=True)
        finally:
            reporter.cancel()
        phase = "Succeeded" if all(c.exit_code == 0 for c in containers) else "Failed"
        await self.finish(run, pod, started, phase)

    # -- probes ------------------------------------------------------------------------

    def _probe(self, run: PodRun, c: ContainerRun) -> None:
        """Start the container's probes: startup first; then readiness and liveness."""
        spec = c.spec
        c.ready = "readinessProbe" not in spec
        c.started = "startupProbe" not in spec

        def probe(kind: str) -> Probe:
            return Probe(spec[kind], spec, run.ip,
                         exec_in=lambda: c.process.pid if c.process else None)

        async def supervise() -> None:
            if not c.started:
                passed = asyncio.Event()

                def on_startup(ok: bool) -> None:
                    if ok:
                        passed.set()
                    else:
                        self._kill_for_probe(run, c, "startup")

                task = asyncio.create_task(probe("startupProbe").run(on_startup, initial=False))
                try:
                    await passed.wait()
                finally:
                    task.cancel()
                c.started = True
                run.status_changed.set()
            running: list[asyncio.Task[None]] = []
            if "readinessProbe" in spec:
                def on_ready(ok: bool) -> None:
                    c.ready = ok
                    run.status_changed.set()
                running.append(asyncio.create_task(
                    probe("readinessProbe").run(on_ready, initial=False)))
            if "livenessProbe" in spec:
                def on_alive(ok: bool) -> None:
                    if not ok:
                        self._kill_for_probe(run, c, "liveness")
                running.append(asyncio.create_task(
                    probe("livenessProbe").run(on_alive, initial=True)))
            try:
                await asyncio.gather(*running)
            finally:
                for task in running:
                    task.cancel()

        if "readinessProbe" in spec or "livenessProbe" in spec or "startupProbe" in spec:
            c.probes.append(asyncio.create_task(supervise()))

    def _kill_for_probe(self, run: PodRun, c: ContainerRun, kind: str) -> None:
        """A failed liveness or startup probe: the container is restarted (SIGTERM, then
        SIGKILL after the pod's grace period), as the kubelet does."""
        log.info("%s/%s container %s failed its %s probe: restarting it", run.namespace,
                 run.name, c.name, kind)
        self._signal(c, signal.SIGTERM)

        async def kill_later(process: asyncio.subprocess.Process | None) -> None:
            await asyncio.sleep(run.grace_seconds)
            if process is not None and process is c.process and process.returncode is None:
                self._signal(c, signal.SIGKILL)

        asyncio.get_running_loop().create_task(kill_later(c.process))

    @staticmethod
    def _stop_probes(c: ContainerRun) -> None:
        for task in c.probes:
            task.cancel()
        c.probes.clear()

    async def _report_changes(self, run: PodRun, pod: Obj, started: str) -> None:
        """Write the pod's status when a probe's verdict changed its readiness."""
        while True:
            await run.status_changed.wait()
            run.status_changed.clear()
            if not run.terminating:
                await self.patch_status(run, pod, "Running", started, run.containers,
                                        init=True)

    async def finish(self, run: PodRun, pod: Obj, started: str, phase: str) -> None:
        await self.patch_status(run, pod, phase, started, run.containers, init=True)
        self._release(run)
        if run.terminating:
            await self.force_delete(run.namespace, run.name, run.uid)

    async def prepare(self, pod: Obj, container: Obj, spec: Obj, run: PodRun) -> ContainerRun:
        meta = pod["metadata"]
        env = await self.container_env(pod, container)
        command = [expand(a, env) for a in container.get("command", [])]
        args = [expand(a, env) for a in container.get("args", [])]
        if command:
            if command[0] in PYTHON_ALIASES:
                command[0] = sys.executable
            argv = command + args
        else:
            entry = self.images.get(image_key(container.get("image", "")))
            if entry is None:
                raise ContainerConfigError(
                    f"image {container.get('image')!r} has no local entrypoint in the "
                    "process kubelet's image table")
            argv = list(entry) + args
        in_process = argv[:1] == [IN_PROCESS_SIM]
        if not in_process and run.volumes is not None:
            try:
                argv = launch_argv(argv, run.volumes.mounts(container),
                                   identity(pod, container))
            except IsolationUnavailableError as err:
                raise ContainerConfigError(str(err)) from None
        log_path = self.state_dir / "logs" / f"{meta['namespace']}_{meta['name']}_" \
                                             f"{container['name']}.log"
        return ContainerRun(name=container["name"], argv=argv, env=env,
                            cwd=container.get("workingDir"), log_path=log_path,
                            in_process=in_process, spec=container)

    async def container_env(self, pod: Obj, container: Obj) -> dict[str, str]:
        meta = pod["metadata"]
        ns = meta["namespace"]
        env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOSTNAME": meta["name"],
            "PYTHONUNBUFFERED": "1",
        }
        server = self.client.connection.server.removeprefix("https://")
        host, _, port = server.partition(":")
        env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = host, port or "443"
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                data = await self._data(CONFIGMAPS, source["configMapRef"], ns, b64=False)
            else:
                data = await self._data(SECRETS, source["secretRef"], ns, b64=True)
            env.update({prefix + k: v for k, v in data.items()})
        for item in container.get("env", []):
            name = item["name"]
            if "value" in item:
                env[name] = expand(str(item["value"]), env)
                continue
            ref = item.get("valueFrom", {})
            value: str | None
            if "fieldRef" in ref:
                value = self._field(pod, ref["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in ref:
                data = await self._data(SECRETS, ref["secretKeyRef"], ns, b64=True)
                value = data.get(ref["secretKeyRef"]["key"])
                if value is None and not ref["secretKeyRef"].get("optional"):
                    raise ContainerConfigError(
                        f"key {ref['secretKeyRef']['key']!r} not in Secret "
                        f"{ref['secretKeyRef']['name']!r}")
            elif "configMapKeyRef" in ref:
                data = await self._data(CONFIGMAPS, ref["configMapKeyRef"], ns, b64=False)
                value = data.get(ref["configMapKeyRef"]["key"])
                if value is None and not ref["configMapKeyRef"].get("optional"):
                    raise ContainerConfigError(
                        f"key {ref['configMapKeyRef']['key']!r} not in ConfigMap "
                        f"{ref['configMapKeyRef']['name']!r}")
            else:
                value = ""
            if value is not None:
                env[name] = value
        return env

    async def _data(self, res: Any, ref: Obj, namespace: str, *, b64: bool) -> dict[str, str]:
        obj = await self.client.get_or_none(res, ref["name"], namespace)
        if obj is None:
            if ref.get("optional"):
                return {}
            kind = "Secret" if b64 else "ConfigMap"
            raise ContainerConfigError(f"{kind} {ref['name']!r} not found")
        raw: dict[str, Any] = dict(obj)  # a Secret or ConfigMap: data, not spec/status
        data: dict[str, str] = raw.get("data") or {}
        if b64:
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    @staticmethod
    def _field(pod: Obj, path: str) -> str:
        meta = pod["metadata"]
        simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "metadata.uid": meta["uid"], "spec.nodeName": pod["spec"].get("nodeName", ""),
                  "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                  "status.podIP": (pod.get("status") or {}).get("podIP", "127.0.0.1"),
                  "status.hostIP": "127.0.0.1"}
        if path in simple:
            return str(simple[path])
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            return str(meta.get(match.group(1), {}).get(match.group(2), ""))
        return ""

    async def start(self, c: ContainerRun) -> None:
        if c.in_process:
            c.sim = self.sims.start(c.env, c.log_path)
            c.started_at, c.finished_at, c.exit_code = now_rfc3339(), None, None
            return
        c.log_path.parent.mkdir(parents=True, exist_ok=True)
        with c.log_path.open("ab") as out:
            try:
                c.process = await asyncio.create_subprocess_exec(
                    *c.argv, env=c.env, cwd=c.cwd, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
            except OSError as err:
                out.write(f"process-kubelet: cannot start {c.argv}: {err}\n".encode())
                c.process = None
                c.exit_code = 128
        c.started_at = now_rfc3339()
        c.finished_at = None
        if c.process is not None:
            c.exit_code = None

    async def wait(self, c: ContainerRun) -> int:
        if c.sim is not None:
            c.exit_code = await c.sim.wait()
            c.finished_at = now_rfc3339()
        elif c.process is not None:
            rc = await c.process.wait()
            # A signal death reads as 128 + signal number, as a container runtime reports.
            c.exit_code = 128 - rc if rc < 0 else rc
            c.finished_at = now_rfc3339()
        return c.exit_code if c.exit_code is not None else 128

    async def start_and_wait(self, c: ContainerRun) -> int:
        await self.start(c)
        return await self.wait(c)

    @staticmethod
    def _signal(c: ContainerRun, sig: signal.Signals) -> None:
        if c.sim is not None and c.sim.running:
            if sig == signal.SIGTERM:
                c.sim.terminate()
            else:
                c.sim.kill()
        if c.process is not None and c.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.process.pid, sig)

    async def terminate(self, run: PodRun) -> None:
        """SIGTERM now, SIGKILL after the grace period (as a real kubelet does)."""
        for c in run.containers:
            self._signal(c, signal.SIGTERM)
        procs = [c.process.wait() for c in run.containers
                 if c.process is not None and c.process.returncode is None]
        procs += [c.sim.wait() for c in run.containers if c.sim is not None and c.sim.running]
        if procs:
            try:
                await asyncio.wait_for(asyncio.gather(*procs), timeout=max(run.grace_seconds, 0))
            except TimeoutError:
                for c in run.containers:
                    self._signal(c, signal.SIGKILL)
        if run.task is not None and not run.containers:
            # Still preparing (e.g. waiting for a Secret): finish it as failed.
            run.task.cancel()
            await self.force_delete(run.namespace, run.name, run.uid)

    # -- status ------------------------------------------------------------------------

    def _container_status(self, c: ContainerRun, image: str) -> Obj:
        state: Obj
        if c.exit_code is not None and c.finished_at:
            reason = "Completed" if c.exit_code == 0 else "Error"
            state = {"terminated": {"exitCode": c.exit_code, "reason": reason,
                                    "startedAt": c.started_at, "finishedAt": c.finished_at}}
        elif c.started_at:
            state = {"running": {"startedAt": c.started_at}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        container_id = f"inprocess://{c.sim.id}" if c.sim is not None \
            else f"process://{c.process.pid if c.process else 0}"
        running = "running" in state
        return {"name": c.name, "image": image, "imageID": f"process://{image}",
                "containerID": container_id,
                "ready": running and c.ready and c.started, "started": running and c.started,
                "restartCount": c.restart_count, "state": state}

    async def patch_status(self, run: PodRun, pod: Obj, phase: str, started: str,
                           containers: list[ContainerRun], *, init: bool) -> None:
        images = {c["name"]: c.get("image", "") for c in
                  pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])}
        now = now_rfc3339()
        ready = "True" if phase == "Running" and all(
            c.exit_code is None and c.ready and c.started for c in containers) else "False"
        status: Obj = {
            "phase": phase, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": run.ip, "podIPs": [{"ip": run.ip}], "startTime": started,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True" if init else "False",
                 "lastTransitionTime": now},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                {"type": "Ready", "status": ready, "lastTransitionTime": now},
            ],
        }
        if containers:
            status["containerStatuses"] = [
                self._container_status(c, images.get(c.name, "")) for c in containers]
        # A busy API server may time a patch out: try again (a lost final status would
        # leave the pod Running for ever although its container exited).
        for attempt in range(STATUS_ATTEMPTS):
            try:
                await self.client.patch(PODS, run.name, {"status": status}, run.namespace,
                                        subresource="status")
                return
            except ApiError as err:
                if err.status != 404:
                    log.warning("status %s/%s: %s", run.namespace, run.name, err)
                return
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                log.warning("status %s/%s (try %d): %s", run.namespace, run.name,
                            attempt + 1, err)
                await asyncio.sleep(min(0.5 * 2 ** attempt, 10.0))

    async def patch_waiting(self, run: PodRun, pod: Obj, started: str, message: str) -> None:
        statuses = [{"name": c["name"], "image": c.get("image", ""), "imageID": "",
                     "ready": False, "restartCount": 0,
                     "state": {"waiting": {"reason": "CreateContainerConfigError",
                                           "message": message}}}
                    for c in pod["spec"]["containers"]]
        with contextlib.suppress(ApiError):
            await self.client.patch(PODS, run.name, {"status": {
                "phase": "Pending", "startTime": started, "containerStatuses": statuses}},
                run.namespace, subresource="status")

    async def shutdown(self) -> None:
        for run in self.pods.values():
            for c in run.containers:
                self._signal(c, signal.SIGKILL)
        await self.sims.close()


async def amain(args: argparse.Namespace) -> None:
    images = json.loads(Path(args.images).read_text()) if args.images else {}
    async with KubeClient(load_connection(args.kubeconfig), qps=args.qps,
                          burst=args.burst) as client:
        kubelet = ProcessKubelet(client, args.node_name, Path(args.state_dir), images)
        await kubelet.register_node()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(kubelet.heartbeat()),
                 asyncio.create_task(kubelet.watch_pods())]
        log.info("node %s ready", args.node_name)
        await stop.wait()
        for t in tasks:
            t.cancel()
        await kubelet.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node-name", default="local-node")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--images", help="JSON file: image name -> entrypoint argv")
    parser.add_argument("--qps", type=float, default=50.0,
                        help="API requests per second (the client's limiter)")
    parser.add_argument("--burst", type=int, default=100)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
