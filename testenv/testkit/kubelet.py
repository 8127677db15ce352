"""A process kubelet: runs the pods bound to its Node as local processes.

It stands in for a real kubelet and container runtime where neither can run (no
Docker engine, no container images): it registers a Node and keeps it Ready,
binds pending pods to itself (there is no scheduler), runs each container as a
local process (the image name maps to a local entrypoint through a table),
reports pod phase and container statuses with exit codes so the real Job
controller completes, retries or fails Jobs, and on pod deletion sends SIGTERM,
then SIGKILL after terminationGracePeriodSeconds. Each container's output goes
to a log file under the state directory, which an HTTPS endpoint serves to the API
server for pods/log (testkit.kubelet_server) when the kubelet is given a --port.

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

Containers outlive this kubelet, as they outlive a real one: each process is in a
session of its own, and what a new kubelet needs to take it over is on disk. A process
runs under a POSIX `sh` shim that waits for it and writes its exit status to a file
under the state directory; a file, because once this kubelet is gone the process is no
child of the next one, and its wait status would die with us. The shim traps TERM (and
INT, HUP, QUIT) with a no-op handler, not `trap ''`, which the command would inherit as
ignored: a signal to the group still reaches the command with its own disposition, and
the shim lives to write the status (128 + signal for a signal death, as before). A
SIGKILL to the group kills both and leaves no file: read as 137, as the kernel says.
Per pod a JSON record (shim pids with their /proc start times, so that a reused pid is
not taken for ours, restart counts, exit files) is replaced atomically on each start and
exit and removed with the pod. A kubelet that starts adopts the live processes of pods
bound to it (watched through pidfds: they are not its children to wait for), reads the exit codes
of those that ended, and reports what it cannot account for (no record, a process gone
without an exit file, an in-process sim, which died with the old kubelet) as lost:
exit 137 with a message, never started a second time beside a runner that may live on.
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
import shutil
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
from testkit.kubelet_server import LogServer, ServerTls
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


# The exit code of a container whose end nobody saw: its group SIGKILLed, or it was lost.
LOST_EXIT_CODE = 137
LOST_MESSAGE = "the container was lost while the kubelet was down"
# Runs `$2...` and writes its exit status to the file `$1` (atomically); see the module
# docstring for why the traps are no-op handlers.
SHIM = """f=$1; shift
trap : TERM INT HUP QUIT
"$@"
rc=$?
printf '%s\\n' "$rc" > "$f.tmp" && mv -f "$f.tmp" "$f"
exit "$rc"
"""
SHELL = shutil.which("sh") or "/bin/sh"


class ContainerConfigError(Exception):
    """A container cannot start yet (missing Secret/ConfigMap, unmapped image)."""


def proc_start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), None if it is gone or a zombie: with
    the pid it names one process, where a pid alone may have been reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def container_pids(name: str, value: str) -> list[int]:
    """The local container processes whose environment has `name=value`, without the
    shims that run them (those carry the same environment): what a test signals to act
    on a container from inside, as a process in a real container sees no shim."""
    marker = f"{name}={value}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ.split(b"\0") and argv[2:4] != [SHIM.encode(), b"shim"]:
            found.append(int(proc.name))
    return found


def read_exit(path: Path) -> int:
    """The exit status the shim wrote; none written means its group was SIGKILLed."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return LOST_EXIT_CODE


def first_child(pid: int) -> int | None:
    """The command the shim `pid` runs (its only child), once it has forked it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
    return None


def cannot_exec(argv: list[str], env: dict[str, str], cwd: str | None) -> str | None:
    """Why `argv` could not be executed, as exec would have failed before the shim ran
    it (exit code 128, as before); None if it can."""
    if not argv:
        return "no command"
    if cwd and not os.path.isdir(cwd):
        return f"working directory {cwd!r} does not exist"
    prog = argv[0]
    if "/" in prog:
        full = os.path.join(cwd or "", prog)
        ok = os.path.isfile(full) and os.access(full, os.X_OK)
        return None if ok else f"{prog!r} is not an executable file"
    if shutil.which(prog, path=env.get("PATH", os.defpath)) is None:
        return f"{prog!r} not found in PATH"
    return None


@dataclass
class HostProcess:
    """A container's shim: the group leader the kubelet signals, known by pid and start
    time, and watched by polling when a previous kubelet started it."""

    pid: int
    start_time: int | None
    exit_file: Path
    container_pid: int  # the command itself (for exec probes and the containerID)

    def alive(self) -> bool:
        return self.start_time is not None and proc_start_time(self.pid) == self.start_time

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    async def wait(self) -> int:
        """Until the shim ends, then its exit code. Not our child when adopted, so not
        waited for: its pidfd turns readable when it exits (the start time, checked once
        the fd pins the process, says the pid is still the one we know)."""
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:  # gone already
            return read_exit(self.exit_file)
        try:
            if self.alive():
                loop = asyncio.get_running_loop()
                ended: asyncio.Future[None] = loop.create_future()
                def on_exit() -> None:
                    if not ended.done():
                        ended.set_result(None)

                loop.add_reader(fd, on_exit)
                try:
                    await ended
                finally:
                    loop.remove_reader(fd)
        finally:
            os.close(fd)
        return read_exit(self.exit_file)


@dataclass
class ContainerRun:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    log_path: Path
    in_process: bool = False  # the image's table entry is [IN_PROCESS_SIM]
    exits: Path | None = None  # where the shim writes exit codes (one file per start)
    init: bool = False
    prepared: bool = True  # argv and env made (adopted containers: only once restarted)
    process: asyncio.subprocess.Process | None = None  # the shim, when we started it
    host: HostProcess | None = None  # the shim, whoever started it
    message: str | None = None  # why it terminated, when it was not seen to
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
    inits: list[ContainerRun] = field(default_factory=list)
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
                 images: dict[str, list[str]], port: int | None = None) -> None:
        self.client = client
        self.port = port  # of the log endpoint, reported on the Node (None: no endpoint)
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
            **({"daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}}}
               if self.port else {}),
        }

    def container_running(self, namespace: str, name: str, container: str) -> bool:
        """Whether that container runs now (how long a log follow lasts)."""
        return any(c.name == container and c.started_at is not None and c.exit_code is None
                   for run in self.pods.values()
                   if run.namespace == namespace and run.name == name
                   for c in self._all(run))

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
                self.collect_orphans({
                    p["metadata"]["uid"] for p in listing.get("items", [])
                    if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")})
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
        if uid in self.pods or phase in ("Succeeded", "Failed"):
            if meta.get("deletionTimestamp"):
                await self.on_pod_deleting(pod)
            return
        record = self.load_record(uid)
        if meta.get("deletionTimestamp"):
            if record is not None:  # deleted while we were down: its processes live on
                self.adopt(pod, record)
            await self.on_pod_deleting(pod)
        elif phase == "Pending" and record is None:
            run = PodRun(uid=uid, namespace=meta["namespace"], name=meta["name"])
            self.pods[uid] = run
            run.task = asyncio.create_task(self.run_pod(pod, run))
        else:
            self.adopt(pod, record)

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
        """What a pod held beyond its processes: its IP, its volumes, its token renewal,
        its record."""
        for c in run.containers:
            for task in c.probes:
                task.cancel()
        if run.refresher is not None:
            run.refresher.cancel()
        if run.volumes is not None:
            run.volumes.remove()
        self.ips.release(run.uid)
        self._forget(run.uid)

    # -- records: what a new kubelet needs to take a pod's processes over ------------

    def _record_path(self, uid: str) -> Path:
        return self.state_dir / "records" / f"{uid}.json"

    def _exits(self, uid: str) -> Path:
        return self.state_dir / "exits" / uid

    @staticmethod
    def _all(run: PodRun) -> list[ContainerRun]:
        """The pod's init and app containers, each once (a failed init is both)."""
        return list({id(c): c for c in run.inits + run.containers}.values())

    def save_record(self, run: PodRun) -> None:
        """Write the pod's record (atomically: a crash leaves the old one or the new)."""
        containers = []
        for c in self._all(run):
            if c.started_at is None:
                continue
            host = c.host
            containers.append({
                "name": c.name, "init": c.init, "in_process": c.in_process,
                "pid": host.pid if host else None,
                "start_time": host.start_time if host else None,
                "container_pid": host.container_pid if host else None,
                "exit_file": str(host.exit_file) if host else None,
                "started_at": c.started_at, "finished_at": c.finished_at,
                "exit_code": c.exit_code if c.finished_at else None,
                "restart_count": c.restart_count})
        path = self._record_path(run.uid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"uid": run.uid, "namespace": run.namespace,
                                   "name": run.name, "ip": run.ip,
                                   "containers": containers}))
        os.replace(tmp, path)

    def load_record(self, uid: str) -> Obj | None:
        try:
            record: Obj = json.loads(self._record_path(uid).read_text())
        except (OSError, ValueError):
            return None
        return record

    def _forget(self, uid: str) -> None:
        self._record_path(uid).unlink(missing_ok=True)
        shutil.rmtree(self._exits(uid), ignore_errors=True)

    def collect_orphans(self, listed: set[str]) -> None:
        """Kill the processes of pods that went (force-deleted) or finished while we were
        down, and drop what they held, as a real kubelet removes orphaned containers;
        `listed` are the pods still to run."""
        records = self.state_dir / "records"
        for path in records.glob("*.json") if records.is_dir() else []:
            uid = path.stem
            record = self.load_record(uid)
            if uid in listed or uid in self.pods or record is None:
                continue
            log.info("pod %s/%s is gone: killing its processes", record.get("namespace"),
                     record.get("name"))
            for saved in record.get("containers", []):
                host = self._host(saved)
                if host is not None:
                    host.signal(signal.SIGKILL)
            if record.get("ip"):
                self.ips.of(uid, str(record["ip"]))
                self.ips.release(uid)
            shutil.rmtree(self.state_dir / "pods" / uid, ignore_errors=True)
            self._forget(uid)

    @staticmethod
    def _host(saved: Obj) -> HostProcess | None:
        if saved.get("pid") is None or saved.get("in_process"):
            return None
        return HostProcess(int(saved["pid"]), saved.get("start_time"),
                           Path(str(saved["exit_file"])),
                           int(saved.get("container_pid") or saved["pid"]))

    # -- adopting: the pods a previous kubelet ran -----------------------------------

    def adopt(self, pod: Obj, record: Obj | None) -> None:
        """Take over a pod a previous kubelet started: its live processes, the exit codes
        of those that ended; with no record, its containers count as lost."""
        meta, spec = pod["metadata"], pod["spec"]
        run = PodRun(uid=meta["uid"], namespace=meta["namespace"], name=meta["name"])
        saved = {c["name"]: c for c in (record or {}).get("containers", [])}
        run.inits = [self._recall(pod, c, saved.get(c["name"]), init=True)
                     for c in spec.get("initContainers", [])]
        run.containers = [self._recall(pod, c, saved.get(c["name"]), init=False)
                          for c in spec["containers"]]
        if record is None:
            reported = {s["name"]: s for s in (pod.get("status") or {})
                        .get("containerStatuses") or []}
            for c in run.containers:
                status = reported.get(c.name, {})
                c.restart_count = int(status.get("restartCount", 0))
                c.started_at = (status.get("state", {}).get("running") or {}).get("startedAt")
                self._lose(c)
        log.info("adopting %s/%s (%s)", run.namespace, run.name,
                 "its record" if record else "no record: its containers are lost")
        self.pods[run.uid] = run
        run.task = asyncio.create_task(self.resume_pod(pod, run, lost=record is None))

    def _recall(self, pod: Obj, container: Obj, saved: Obj | None, *,
                init: bool) -> ContainerRun:
        """A container as the record left it: running (adopted), ended, lost, or not
        started yet (its argv and env are made when it starts)."""
        c = ContainerRun(name=container["name"], argv=[], env={}, cwd=None,
                         log_path=self._log_path(pod, container), spec=container,
                         exits=self._exits(pod["metadata"]["uid"]), init=init,
                         prepared=False)
        if saved is None:
            return c
        c.restart_count = int(saved.get("restart_count", 0))
        c.started_at = saved.get("started_at")
        c.in_process = bool(saved.get("in_process"))
        if saved.get("exit_code") is not None:
            c.exit_code = int(saved["exit_code"])
            c.finished_at = saved.get("finished_at") or now_rfc3339()
            return c
        c.host = self._host(saved)
        if c.host is None or not (c.host.alive() or c.host.exit_file.exists()):
            self._lose(c)  # an in-process sim died with the old kubelet
        elif not c.host.alive():
            c.exit_code, c.finished_at = read_exit(c.host.exit_file), now_rfc3339()
        return c

    @staticmethod
    def _lose(c: ContainerRun) -> None:
        c.exit_code, c.finished_at, c.message = LOST_EXIT_CODE, now_rfc3339(), LOST_MESSAGE

    async def resume_pod(self, pod: Obj, run: PodRun, *, lost: bool) -> None:
        """Supervise an adopted pod from where the previous kubelet left it."""
        status = pod.get("status") or {}
        started = status.get("startTime") or now_rfc3339()
        run.ip = self.ips.of(run.uid, status.get("podIP"))
        pod = {**pod, "status": {**status, "podIP": run.ip}}
        run.volumes = PodVolumes(self.client, pod, self.state_dir / "pods" / run.uid)
        if lost:
            # Started by a kubelet that died before it wrote down its processes: they may
            # live on unseen, and starting them again would make two of them.
            await self.finish(run, pod, started, "Failed")
            return
        try:  # fresh data and tokens: the old kubelet's renewals ended with it
            await run.volumes.prepare()
        except (ApiError, VolumeNotReadyError, OSError) as err:
            log.warning("volumes of %s/%s: %s", run.namespace, run.name, err)
        run.refresher = asyncio.create_task(run.volumes.refresh_tokens())
        if not await self._run_inits(pod, run, started):
            return
        for c in run.containers:
            if c.started_at is None:
                await self.start_recalled(pod, run, c)
            if c.exit_code is None:
                self._probe(run, c)
        await self.patch_status(run, pod, "Running", started, run.containers, init=True)
        await self.supervise(run, pod, started)

    async def _run_inits(self, pod: Obj, run: PodRun, started: str) -> bool:
        """Run the init containers in order, each to its end (skipping those an adopted
        pod's record says succeeded, waiting for one still running); False once one
        fails or the pod is deleted: the pod has then finished as Failed."""
        for init in run.inits:
            if init.finished_at and init.exit_code == 0:
                continue
            if init.started_at is None:
                await self.start_recalled(pod, run, init)
            code = await self.wait(init)
            self.save_record(run)
            if code != 0 or run.terminating:
                run.containers = [init]
                await self.finish(run, pod, started, "Failed")
                return False
        return True

    async def start_recalled(self, pod: Obj, run: PodRun, c: ContainerRun) -> None:
        """Start a container, first making its argv and env if it was adopted."""
        if run.terminating:
            return
        if not c.prepared:
            try:
                made = await self.prepare(pod, c.spec, pod["spec"], run)
            except ContainerConfigError as err:
                c.exit_code, c.finished_at, c.message = 128, now_rfc3339(), str(err)
                return
            c.argv, c.env, c.cwd = made.argv, made.env, made.cwd
            c.in_process, c.prepared = made.in_process, True
        await self.start(run, c)

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
        run.inits = inits
        for init in inits:
            init.init = True
        if not await self._run_inits(pod, run, started):
            return
        run.containers = containers
        for c in containers:
            await self.start(run, c)
            self._probe(run, c)
        await self.patch_status(run, pod, "Running", started, containers, init=True)
        await self.supervise(run, pod, started)

    async def supervise(self, run: PodRun, pod: Obj, started: str) -> None:
        """Wait for the containers, restart them as restartPolicy says, then finish."""
        containers = run.containers
        policy = pod["spec"].get("restartPolicy", "Always")
        reporter = asyncio.create_task(self._report_changes(run, pod, started))
        backoff = RESTART_BACKOFF_FIRST
        try:
            while True:
                codes = await asyncio.gather(*(self.wait(c) for c in containers))
                self.save_record(run)
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
                    await self.start_recalled(pod, run, c)
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
                         exec_in=lambda: c.host.container_pid if c.host else None)

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

        async def kill_later(host: HostProcess | None) -> None:
            await asyncio.sleep(run.grace_seconds)
            if host is not None and host is c.host and host.alive():
                self._signal(c, signal.SIGKILL)

        asyncio.get_running_loop().create_task(kill_later(c.host))

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
        return ContainerRun(name=container["name"], argv=argv, env=env,
                            cwd=container.get("workingDir"),
                            log_path=self._log_path(pod, container), in_process=in_process,
                            spec=container, exits=self._exits(meta["uid"]))

    def _log_path(self, pod: Obj, container: Obj) -> Path:
        meta = pod["metadata"]
        return self.state_dir / "logs" / f"{meta['namespace']}_{meta['name']}_" \
                                         f"{container['name']}.log"

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

    async def start(self, run: PodRun, c: ContainerRun) -> None:
        c.process, c.sim, c.host, c.message = None, None, None, None
        if c.in_process:
            c.sim = self.sims.start(c.env, c.log_path)
            c.started_at, c.finished_at, c.exit_code = now_rfc3339(), None, None
            self.save_record(run)
            return
        exit_file = (c.exits or self._exits(run.uid)) / f"{c.name}.{c.restart_count}"
        exit_file.parent.mkdir(parents=True, exist_ok=True)
        exit_file.unlink(missing_ok=True)
        c.log_path.parent.mkdir(parents=True, exist_ok=True)
        problem = cannot_exec(c.argv, c.env, c.cwd)
        with c.log_path.open("ab") as out:
            try:
                if problem is not None:
                    raise OSError(problem)
                c.process = await asyncio.create_subprocess_exec(
                    SHELL, "-c", SHIM, "shim", str(exit_file), *self._resolved(c),
                    env=c.env, cwd=c.cwd, stdout=out, stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
            except OSError as err:
                out.write(f"process-kubelet: cannot start {c.argv}: {err}\n".encode())
                c.process = None
                c.exit_code = 128
        c.started_at = now_rfc3339()
        c.finished_at = None
        if c.process is not None:
            c.exit_code = None
            pid = c.process.pid
            c.host = HostProcess(pid, proc_start_time(pid), exit_file,
                                 await self._container_pid(c.process))
        self.save_record(run)

    @staticmethod
    def _resolved(c: ContainerRun) -> list[str]:
        """argv with its command as a path: the shim runs a file, never a builtin of its
        own (`echo`, `kill`) that happens to share the name."""
        prog = c.argv[0]
        if "/" in prog:
            return c.argv
        return [shutil.which(prog, path=c.env.get("PATH", os.defpath)) or prog, *c.argv[1:]]

    @staticmethod
    async def _container_pid(shim: asyncio.subprocess.Process) -> int:
        """The command's own pid, once the shim has forked it (a moment after it started);
        the shim's if the command is already gone."""
        for _ in range(200):
            child = first_child(shim.pid)
            if child is not None:
                return child
            if proc_start_time(shim.pid) is None:
                break
            await asyncio.sleep(0.005)
        return shim.pid

    async def wait(self, c: ContainerRun) -> int:
        if c.sim is not None:
            c.exit_code = await c.sim.wait()
            c.finished_at = now_rfc3339()
        elif c.process is not None:
            rc = await c.process.wait()
            # A signal death reads as 128 + signal number, as a container runtime reports.
            c.exit_code = 128 - rc if rc < 0 else rc
            c.finished_at = now_rfc3339()
        elif c.host is not None and c.exit_code is None:  # adopted: not our child
            c.exit_code = await c.host.wait()
            c.finished_at = now_rfc3339()
        return c.exit_code if c.exit_code is not None else 128

    @staticmethod
    def _signal(c: ContainerRun, sig: signal.Signals) -> None:
        if c.sim is not None and c.sim.running:
            if sig == signal.SIGTERM:
                c.sim.terminate()
            else:
                c.sim.kill()
        if c.process is not None:
            if c.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.process.pid, sig)
        elif c.host is not None:
            c.host.signal(sig)

    async def terminate(self, run: PodRun) -> None:
        """SIGTERM now, SIGKILL after the grace period (as a real kubelet does)."""
        everything = self._all(run)
        for c in everything:
            self._signal(c, signal.SIGTERM)
        procs = [c.process.wait() for c in everything
                 if c.process is not None and c.process.returncode is None]
        procs += [c.host.wait() for c in everything
                  if c.process is None and c.host is not None and c.host.alive()]
        procs += [c.sim.wait() for c in everything if c.sim is not None and c.sim.running]
        if procs:
            try:
                await asyncio.wait_for(asyncio.gather(*procs), timeout=max(run.grace_seconds, 0))
            except TimeoutError:
                for c in everything:
                    self._signal(c, signal.SIGKILL)
        if run.task is not None and not run.containers and not procs:
            # Still preparing (e.g. waiting for a Secret): finish it as failed. (An init
            # container that was running ends the pod itself, as it would on failing.)
            run.task.cancel()
            await self.force_delete(run.namespace, run.name, run.uid)

    # -- status ------------------------------------------------------------------------

    def _container_status(self, c: ContainerRun, image: str) -> Obj:
        state: Obj
        if c.exit_code is not None and c.finished_at:
            reason = "Completed" if c.exit_code == 0 else "Error"
            state = {"terminated": {"exitCode": c.exit_code, "reason": reason,
                                    "startedAt": c.started_at, "finishedAt": c.finished_at}}
            if c.message:
                state["terminated"]["message"] = c.message
        elif c.started_at:
            state = {"running": {"startedAt": c.started_at}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        container_id = f"inprocess://{c.sim.id}" if c.sim is not None \
            else f"process://{c.host.container_pid if c.host else 0}"
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
            for c in self._all(run):
                self._signal(c, signal.SIGKILL)
        await self.sims.close()


async def amain(args: argparse.Namespace) -> None:
    images = json.loads(Path(args.images).read_text()) if args.images else {}
    async with KubeClient(load_connection(args.kubeconfig), qps=args.qps,
                          burst=args.burst) as client:
        state_dir = Path(args.state_dir)
        kubelet = ProcessKubelet(client, args.node_name, state_dir, images, args.port)
        server = None
        if args.port:
            server = LogServer(state_dir / "logs", kubelet.container_running, port=args.port,
                               tls=ServerTls(Path(args.tls_cert_file),
                                             Path(args.tls_private_key_file),
                                             Path(args.client_ca_file)))
            await server.start()
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
        if server is not None:
            await server.close()
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
    parser.add_argument("--port", type=int, help="HTTPS port of the log endpoint, for the "
                        "API server's pods/log (needs the three TLS files)")
    parser.add_argument("--tls-cert-file", help="the endpoint's serving certificate")
    parser.add_argument("--tls-private-key-file")
    parser.add_argument("--client-ca-file", help="CA of the API server's client certificate")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
