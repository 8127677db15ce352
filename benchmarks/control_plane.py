"""Control-plane benchmark: prints latencies, rates and memory of the whole local stack.

Each run starts everything itself under a temporary directory, exactly as the
integration tests do (tests/conftest.py): the local control plane (etcd,
kube-apiserver, kube-controller-manager from the testenv binary, and the process
kubelet running runner pods as local processes), Redis, the CRDs, optionally a
PostgreSQL database for the mirror, and the operator as a real process. It then
drives demo SyncJobs through their life and times what an observer sees: SyncJob
and pod watch events from the API server and the runner's own reports on Redis.

    .venv/bin/python benchmarks/control_plane.py [--runs N] [--no-mirror]

See benchmarks/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis

from sync_operator.api.common import SYNCJOBS, JobType
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import NAMESPACES, PODS, Resource
from sync_operator.mirror import upgrade
from sync_operator.syncjob.job_builder import LABEL_JOB_UID
from sync_runner.contract import EVENTS_PATTERN, Keys, RunnerStatus
from testkit.build import KUBE_VERSION
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.ports import free_port
from testkit.process import ManagedProcess
from testkit.servers import PostgresServer, RedisServer, _pg_bin
from testkit.syncjobs import create_syncjob, install_crds, set_spec, syncjob

NAMESPACE = "bench"
WARMUP = "warm-up"
CLUSTER_PROCESSES = {
    "etcd": "etcd",
    "kube-apiserver": "apiserver",
    "kube-controller-manager": "controller-manager",
    "process-kubelet": "kubelet",
}
JOB_TYPES = [t.value for t in JobType]

# Workloads (demo task params); fixed so numbers compare across machines and commits.
PROGRESS_JOB = {"items": 40, "unitSeconds": 0.25}  # ~10 s of steady progress
PAUSE_JOB = {"items": 300, "unitSeconds": 0.2}  # long enough to pause, resume, cancel
PAUSE_AFTER_DONE = 5
THROUGHPUT_JOB = {"items": 1, "unitSeconds": 0.1}
THROUGHPUT_GLOBAL_LIMIT = 8
THROUGHPUT_TYPE_LIMIT = 8


def demo(params: dict[str, Any]) -> dict[str, Any]:
    return {"task": "demo", **params}


# -- what gets measured ---------------------------------------------------------------

# (key, label, unit); None key starts a section. Printed in this order.
ROWS: list[tuple[str | None, str, str]] = [
    (None, "stack start-up", ""),
    ("cp_ready", "control plane ready (LocalCluster.startup_seconds)", "s"),
    ("crds", "CRDs installed and Established", "s"),
    ("op_metrics", "operator start -> metrics say leading, first admission pass", "s"),
    ("op_ready", "operator start -> first SyncJob reconciled (ready)", "s"),
    *[(f"rss_ready_{short}", f"RSS at ready: {short}", "MiB")
      for short in CLUSTER_PROCESSES.values()],
    ("rss_ready_operator", "RSS at ready: operator", "MiB"),
    *[(f"rss_peak_{short}", f"peak RSS over the run (VmHWM): {short}", "MiB")
      for short in CLUSTER_PROCESSES.values()],
    ("rss_peak_operator", "peak RSS over the run (VmHWM): operator", "MiB"),
    (None, "create -> Running", ""),
    ("create_running", "create -> status.phase Running", "s"),
    ("create_pod_running", "create -> runner pod phase Running", "s"),
    ("create_first_report", "create -> runner's first report on Redis", "s"),
    ("final_succeeded", "runner's final report -> status.phase Succeeded", "s"),
    (None, "progress relay (runner -> Redis -> operator -> status.progress)", ""),
    ("progress_lag", "publish of a done value -> it shows in status (per update)", "s"),
    ("progress_writes", "status.progress writes per second per job (whole run)", "1/s"),
    ("progress_interval", "interval between consecutive status.progress writes", "s"),
    (None, "pause / resume", ""),
    ("pause_paused", "spec.paused=true -> status.phase Paused", "s"),
    ("pause_pod_gone", "spec.paused=true -> pod deleted (released)", "s"),
    ("resume_running", "spec.paused=false -> status.phase Running", "s"),
    ("resume_pod_running", "spec.paused=false -> new pod phase Running", "s"),
    ("resume_status_fallback", "min status.progress.done after resume - done at pause", "items"),
    ("resume_runner_fallback", "min runner-reported done after resume - done at pause", "items"),
    (None, "cancel (cooperative, running job)", ""),
    ("cancel_cancelled", "spec.cancel=true -> status.phase Cancelled", "s"),
    ("cancel_pod_gone", "spec.cancel=true -> pod deleted", "s"),
    (None, "throughput", ""),
    ("tp_seconds", "N quick jobs created at once -> all Succeeded", "s"),
    ("tp_rate", "throughput", "jobs/min"),
    ("tp_wait", "per job: create -> status.phase Running (queue wait)", "s"),
    ("tp_run", "per job: status.phase Running -> Succeeded", "s"),
]


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, *values: float) -> None:
        self.values.setdefault(key, []).extend(values)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = q * (len(sorted_values) - 1)
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def render_table(samples: Samples) -> str:
    lines = [f"{'metric':<66} {'unit':>8} {'n':>4} {'median':>8} {'p90':>8} {'max':>8}"]
    lines.append("-" * len(lines[0]))
    for key, label, unit in ROWS:
        if key is None:
            lines.append(label)
            continue
        values = sorted(samples.values.get(key, []))
        if not values:
            lines.append(f"  {label:<64} {unit:>8} {0:>4} {'-':>8} {'-':>8} {'-':>8}")
            continue
        med, p90, top = percentile(values, 0.5), percentile(values, 0.9), values[-1]
        lines.append(f"  {label:<64} {unit:>8} {len(values):>4} "
                     f"{med:>8.2f} {p90:>8.2f} {top:>8.2f}")
    return "\n".join(lines)


# -- observing the cluster and Redis ---------------------------------------------------

T = TypeVar("T")


@dataclass
class Seen:
    """A watch event as received: monotonic time, type and object."""

    t: float
    kind: str
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def phase(self) -> str | None:
        phase = (self.obj.get("status") or {}).get("phase")
        return str(phase) if phase is not None else None

    @property
    def progress(self) -> dict[str, Any] | None:
        progress = (self.obj.get("status") or {}).get("progress")
        return dict(progress) if progress else None

    @property
    def done(self) -> int | None:
        progress = self.progress
        return None if progress is None else int(progress.get("done") or 0)

    @property
    def job_uid(self) -> str | None:
        labels = self.obj["metadata"].get("labels") or {}
        uid = labels.get(LABEL_JOB_UID)
        return str(uid) if uid is not None else None


@dataclass
class Report:
    """A runner status received on syncjob:{uid}:events."""

    t: float
    uid: str
    done: int
    state: str


class Feed(Generic[T]):
    """Everything received so far, in order, with a way to wait for a matching item."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._new = asyncio.Event()

    def add(self, item: T) -> None:
        self.items.append(item)
        self._new.set()

    async def first(self, match: Callable[[T], bool], *, timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            for item in self.items[start:]:
                if match(item):
                    return item
            start = len(self.items)
            self._new.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)


async def until_served(call: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """Retry while the API server answers 429 (a new CRD's storage is initialising)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except ApiError as err:
            if err.status != 429 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def follow(kube: KubeClient, res: Resource, feed: Feed[Seen]) -> asyncio.Task[None]:
    """List (so nothing after this call is missed), then watch from that resourceVersion."""
    listed = await until_served(lambda: kube.list(res, NAMESPACE))
    version = str(listed["metadata"]["resourceVersion"])

    async def loop(version: str) -> None:
        while True:
            async for kind, obj in kube.watch(res, NAMESPACE, resource_version=version):
                if kind == "ERROR":
                    raise RuntimeError(f"watch of {res.plural} failed: {obj}")
                version = str(obj["metadata"]["resourceVersion"])
                if kind != "BOOKMARK":
                    feed.add(Seen(time.monotonic(), kind, obj))

    return asyncio.create_task(loop(version), name=f"watch-{res.plural}")


async def follow_redis(client: aioredis.Redis, feed: Feed[Report]) -> asyncio.Task[None]:
    pubsub = client.pubsub()
    await pubsub.psubscribe(EVENTS_PATTERN)

    async def loop() -> None:
        try:
            async for message in pubsub.listen():
                if message["type"] != "pmessage":
                    continue
                received = time.monotonic()
                status = RunnerStatus.model_validate_json(message["data"])
                feed.add(Report(received, Keys.uid_from_channel(message["channel"]),
                                status.progress.done, status.state.value))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    return asyncio.create_task(loop(), name="redis-events")


# -- process memory ----------------------------------------------------------------------


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB, from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def pid_of(proc: ManagedProcess | None) -> int:
    assert proc is not None
    assert proc.proc is not None
    return proc.proc.pid


# -- one run -----------------------------------------------------------------------------


@dataclass
class Stack:
    root: Path
    cluster: LocalCluster
    redis: RedisServer
    database_url: str | None
    run: int
    throughput_jobs: int
    notes: list[str] = field(default_factory=list)


def metric_value(page: str, name: str) -> float | None:
    found = re.search(rf"^sync_operator_{name} ([0-9.e+-]+)$", page, re.MULTILINE)
    return float(found.group(1)) if found else None


async def wait_until_leading(op: OperatorProcess, port: int, deadline: float) -> None:
    """Until the operator's metrics say it leads and has run an admission pass."""
    while True:
        assert op.process is not None
        op.process.check_alive()
        page = await scrape(port)
        if metric_value(page, "leader") == 1.0 and (metric_value(page, "admission_passes")
                                                   or 0) >= 1:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"operator not ready after 90s:\n{op.log()}")
        await asyncio.sleep(0.05)


async def scrape(port: int) -> str:
    def get() -> str:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())

    try:
        return await asyncio.to_thread(get)
    except OSError:
        return ""


async def start_operator(stack: Stack, kube: KubeClient, jobs: Feed[Seen],
                         out: Samples) -> OperatorProcess:
    port = free_port()
    limits = "{" + ",".join(f'"{t}":{THROUGHPUT_TYPE_LIMIT}' for t in JOB_TYPES) + "}"
    settings = {
        "namespace": NAMESPACE,
        "lease_namespace": NAMESPACE,
        "redis_url": stack.redis.url,
        "runner_image": "registry.local/sync-runner:bench",
        "metrics_port": str(port),
        "global_limit": str(THROUGHPUT_GLOBAL_LIMIT),
        "type_limits": limits,
    }
    if stack.database_url:
        settings["database_url"] = stack.database_url
    op = OperatorProcess(stack.cluster.admin_kubeconfig, stack.root / "operator.log", settings)
    started = time.monotonic()
    op.start()
    # A paused job created as the operator starts: it shows Paused (no pod) once the
    # operator acts on SyncJobs, which is later than its metrics saying it leads.
    await create_syncjob(kube, NAMESPACE, syncjob(WARMUP, "quran", paused=True,
                                                  params=demo(THROUGHPUT_JOB)))
    await wait_until_leading(op, port, started + 90)
    out.add("op_metrics", time.monotonic() - started)
    try:
        handled = await jobs.first(named(WARMUP, "Paused"), timeout=90, what="warm-up Paused")
    except TimeoutError:
        raise TimeoutError(f"operator did not reconcile a SyncJob:\n{op.log()}") from None
    out.add("op_ready", handled.t - started)
    await kube.delete(SYNCJOBS, WARMUP, NAMESPACE)
    await jobs.first(lambda s: s.name == WARMUP and s.kind == "DELETED", timeout=60,
                     what="warm-up deleted")
    return op


def named(name: str, *phases: str) -> Callable[[Seen], bool]:
    return lambda s: s.name == name and s.phase in phases


async def bench_progress(kube: KubeClient, jobs: Feed[Seen], pods: Feed[Seen],
                         reports: Feed[Report], out: Samples) -> None:
    name = "progress"
    created_at = time.monotonic()
    uid = (await create_syncjob(kube, NAMESPACE, syncjob(
        name, "quran", params=demo(PROGRESS_JOB))))["metadata"]["uid"]
    running = await jobs.first(named(name, "Running"), timeout=60, what=f"{name} Running")
    out.add("create_running", running.t - created_at)
    pod = await pods.first(lambda s: s.job_uid == uid
                           and (s.obj.get("status") or {}).get("phase") == "Running",
                           timeout=60, what="runner pod Running")
    out.add("create_pod_running", pod.t - created_at)
    first = await reports.first(lambda r: r.uid == uid, timeout=60, what="first report")
    out.add("create_first_report", first.t - created_at)
    finished = await jobs.first(named(name, "Succeeded", "Failed"), timeout=120,
                                what=f"{name} finished")
    if finished.phase != "Succeeded":
        raise RuntimeError(f"{name} ended {finished.phase}: {finished.obj.get('status')}")
    last = [r for r in reports.items if r.uid == uid and r.state == "succeeded"]
    if last:
        out.add("final_succeeded", finished.t - last[0].t)

    published: dict[int, float] = {}
    for report in reports.items:
        if report.uid == uid:
            published.setdefault(report.done, report.t)
    writes: list[float] = []
    shown: set[int] = set()
    previous: dict[str, Any] | None = None
    for seen in jobs.items:
        if seen.name != name or seen.t < running.t or seen.phase != "Running":
            continue
        progress = seen.progress
        if progress is None or progress == previous:
            continue
        previous = progress
        writes.append(seen.t)
        done = int(progress.get("done") or 0)
        if done > 0 and done not in shown and done in published:
            shown.add(done)
            out.add("progress_lag", seen.t - published[done])
    runner = [r.t for r in reports.items if r.uid == uid]
    if len(writes) >= 2:
        # Writes per second of reporting: from the runner's first report to its last.
        out.add("progress_writes", len(writes) / (runner[-1] - runner[0]))
        out.add("progress_interval", *(b - a for a, b in itertools.pairwise(writes)))


async def bench_pause_resume_cancel(kube: KubeClient, jobs: Feed[Seen], pods: Feed[Seen],
                                    reports: Feed[Report], out: Samples,
                                    notes: list[str]) -> None:
    name = "pausable"
    uid = (await create_syncjob(kube, NAMESPACE, syncjob(
        name, "hadith", params=demo(PAUSE_JOB))))["metadata"]["uid"]
    await jobs.first(named(name, "Running"), timeout=60, what=f"{name} Running")
    await jobs.first(lambda s: s.name == name and (s.done or 0) >= PAUSE_AFTER_DONE,
                     timeout=60, what=f"{name} progress")
    old_pod = await pods.first(lambda s: s.job_uid == uid, timeout=10, what="its pod")

    # Pause: Paused in status, then the pod is released.
    since = time.monotonic()
    await set_spec(kube, NAMESPACE, name, paused=True)
    paused = await jobs.first(lambda s: s.t >= since and named(name, "Paused")(s),
                              timeout=90, what=f"{name} Paused")
    out.add("pause_paused", paused.t - since)
    gone = await pods.first(lambda s: s.t >= since and s.kind == "DELETED"
                            and s.name == old_pod.name, timeout=90, what="pod released")
    out.add("pause_pod_gone", gone.t - since)
    at_pause = paused.done or 0

    # Resume: Running again with a new pod; progress continues from the checkpoint.
    resumed = time.monotonic()
    await set_spec(kube, NAMESPACE, name, paused=False)
    running = await jobs.first(lambda s: s.t >= resumed and named(name, "Running")(s),
                               timeout=60, what=f"{name} Running again")
    out.add("resume_running", running.t - resumed)
    new_pod = await pods.first(
        lambda s: s.t >= resumed and s.job_uid == uid and s.kind != "DELETED"
        and s.name != old_pod.name and (s.obj.get("status") or {}).get("phase") == "Running",
        timeout=60, what="new pod Running")
    out.add("resume_pod_running", new_pod.t - resumed)
    await jobs.first(lambda s: s.t >= resumed and s.name == name
                     and (s.done or 0) >= at_pause + 3, timeout=60, what="progress after resume")
    after_status = [s.done for s in jobs.items
                    if s.t >= resumed and s.name == name and s.done is not None]
    after_runner = [r.done for r in reports.items if r.t >= resumed and r.uid == uid]
    min_status = min(d for d in after_status if d is not None)
    min_runner = min(after_runner)
    out.add("resume_status_fallback", min_status - at_pause)
    out.add("resume_runner_fallback", min_runner - at_pause)
    notes.append(f"paused at done={at_pause}; after resume min status done={min_status}, "
                 f"min runner report={min_runner}")

    # Cooperative cancel of the running job.
    since = time.monotonic()
    await set_spec(kube, NAMESPACE, name, cancel=True)
    cancelled = await jobs.first(lambda s: s.t >= since and named(name, "Cancelled")(s),
                                 timeout=90, what=f"{name} Cancelled")
    out.add("cancel_cancelled", cancelled.t - since)
    reason = {c["type"]: c.get("reason") for c in
              (cancelled.obj.get("status") or {}).get("conditions") or []}.get("Cancelled")
    if reason != "CancelledByUser":
        notes.append(f"cancel ended with reason {reason} (not cooperative)")
    gone = await pods.first(lambda s: s.t >= since and s.kind == "DELETED"
                            and s.name == new_pod.name, timeout=90, what="pod gone after cancel")
    out.add("cancel_pod_gone", gone.t - since)


async def bench_throughput(kube: KubeClient, jobs: Feed[Seen], count: int, out: Samples,
                           notes: list[str]) -> None:
    names = [f"tp-{n:03d}" for n in range(count)]
    started = time.monotonic()
    await asyncio.gather(*(
        create_syncjob(kube, NAMESPACE, syncjob(
            name, JOB_TYPES[n % len(JOB_TYPES)], params=demo(THROUGHPUT_JOB)))
        for n, name in enumerate(names)))
    created = time.monotonic() - started
    finished: list[Seen] = []
    for name in names:
        left = max(1.0, started + 300 - time.monotonic())
        finished.append(await jobs.first(named(name, "Succeeded", "Failed", "Cancelled"),
                                         timeout=left, what=f"{name} finished"))
    failed = [s.name for s in finished if s.phase != "Succeeded"]
    if failed:
        raise RuntimeError(f"throughput jobs did not succeed: {failed}")
    for name, end in zip(names, finished, strict=True):
        running = await jobs.first(named(name, "Running"), timeout=1, what=f"{name} Running")
        out.add("tp_wait", running.t - started)
        out.add("tp_run", end.t - running.t)
    total = max(s.t for s in finished) - started
    out.add("tp_seconds", total)
    out.add("tp_rate", count / total * 60)
    notes.append(f"{count} jobs created in {created:.2f}s, all Succeeded after {total:.1f}s")


async def measure(stack: Stack, out: Samples) -> None:
    cluster = stack.cluster
    tasks: list[asyncio.Task[None]] = []
    op: OperatorProcess | None = None
    redis_client = aioredis.Redis.from_url(stack.redis.url, decode_responses=True)
    async with KubeClient(load_connection(cluster.admin_kubeconfig)) as kube:
        try:
            started = time.monotonic()
            await install_crds(kube)
            out.add("crds", time.monotonic() - started)
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NAMESPACE}})
            jobs: Feed[Seen] = Feed()
            pods: Feed[Seen] = Feed()
            reports: Feed[Report] = Feed()
            tasks += [await follow(kube, SYNCJOBS, jobs), await follow(kube, PODS, pods),
                      await follow_redis(redis_client, reports)]
            op = await start_operator(stack, kube, jobs, out)
            assert op.process is not None
            out.add("rss_ready_operator", memory_mib(pid_of(op.process))[0])

            await bench_progress(kube, jobs, pods, reports, out)
            await bench_pause_resume_cancel(kube, jobs, pods, reports, out, stack.notes)
            await bench_throughput(kube, jobs, stack.throughput_jobs, out, stack.notes)

            for name, short in CLUSTER_PROCESSES.items():
                out.add(f"rss_peak_{short}", memory_mib(pid_of(cluster.processes[name]))[1])
            out.add("rss_peak_operator", memory_mib(pid_of(op.process))[1])
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await redis_client.aclose()
            if op is not None:
                await asyncio.to_thread(op.stop)


def create_database(pg: PostgresServer, name: str) -> str:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-d", "postgres",
         "-tAc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    url = f"postgresql+psycopg://{pg.user}@127.0.0.1:{pg.port}/{name}"
    upgrade(url)
    return url


def run_once(run: int, root: Path, pg: PostgresServer | None, throughput_jobs: int,
             out: Samples) -> list[str]:
    cluster = LocalCluster(root / "cluster")
    redis = RedisServer(root / "redis")
    stack = Stack(root, cluster, redis, None, run, throughput_jobs)
    try:
        cluster.start()
        out.add("cp_ready", cluster.startup_seconds)
        for name, short in CLUSTER_PROCESSES.items():
            out.add(f"rss_ready_{short}", memory_mib(pid_of(cluster.processes[name]))[0])
        redis.start()
        if pg is not None:
            stack.database_url = create_database(pg, f"bench_run{run}")
        asyncio.run(measure(stack, out))
    finally:
        redis.stop()
        cluster.stop()
    return stack.notes


# -- the report ---------------------------------------------------------------------------


def version_of(argv: list[str]) -> str:
    try:
        found = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    match = re.search(r"v?=?(\d+\.\d+(\.\d+)?)", found)
    return match.group(1) if match else "?"


def concurrent_work() -> int:
    """Other test stacks on this machine right now (a CI run, another engineer's tests)."""
    own = os.getpid()
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == own:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"pytest" in cmdline or b"testenv kube-apiserver" in cmdline:
            count += 1
    return count


def header(args: argparse.Namespace) -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    redis = version_of([shutil.which("redis-server") or "redis-server", "--version"])
    postgres = "off (--no-mirror)"
    if not args.no_mirror:
        postgres = "PostgreSQL " + version_of([_pg_bin("postgres"), "--version"])
    load = Path("/proc/loadavg").read_text().split()[:3]
    return "\n".join([
        "sync-operator control-plane benchmark",
        f"command:  {shlex.join(sys.orig_argv)}   (cwd {Path.cwd()})",
        f"machine:  nproc={os.cpu_count()}, {cpu}, {mem_gib:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"stack:    Kubernetes {KUBE_VERSION} testenv (etcd, kube-apiserver, "
        f"kube-controller-manager) + process kubelet; Redis {redis}; mirror {postgres}",
        f"operator: default settings except global_limit={THROUGHPUT_GLOBAL_LIMIT}, "
        f"type_limits={THROUGHPUT_TYPE_LIMIT} per type, progress_interval_seconds=1 (default)",
        f"jobs:     progress demo {PROGRESS_JOB}; pause/resume/cancel demo {PAUSE_JOB} "
        f"(paused at done>={PAUSE_AFTER_DONE}); throughput {args.throughput_jobs} x demo "
        f"{THROUGHPUT_JOB} over {len(JOB_TYPES)} types",
        f"runs:     {args.runs}, each a fresh stack; rows aggregate all samples of all runs",
        f"load:     loadavg {' '.join(load)} at start; {concurrent_work()} other "
        "pytest/kube-apiserver processes running. Other work on this machine (e.g. a CI "
        "run) shares the CPUs and inflates latencies.",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh stacks to measure (5)")
    parser.add_argument("--throughput-jobs", type=int, default=50,
                        help="quick jobs created at once in the throughput phase (50)")
    parser.add_argument("--no-mirror", action="store_true",
                        help="run the operator without the PostgreSQL mirror")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs) afterwards")
    args = parser.parse_args()

    print(header(args), flush=True)
    root = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    out = Samples()
    failures = 0
    pg: PostgresServer | None = None
    began = time.monotonic()
    try:
        if not args.no_mirror:
            pg = PostgresServer(root / "postgres")
            pg.start()
        for run in range(1, args.runs + 1):
            run_root = root / f"run-{run}"
            started = time.monotonic()
            try:
                notes = run_once(run, run_root, pg, args.throughput_jobs, out)
            except Exception:
                failures += 1
                print(f"run {run}: FAILED (logs in {run_root}, kept)\n{traceback.format_exc()}",
                      flush=True)
                args.keep = True
                continue
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"run {run}: {time.monotonic() - started:.0f}s, loadavg {load}; "
                  + "; ".join(notes), flush=True)
    finally:
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\ntotal {time.monotonic() - began:.0f}s; loadavg {load} at end; "
          f"{failures} of {args.runs} runs failed\n")
    print(render_table(out), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
