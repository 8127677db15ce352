"""Scale benchmark: thousands of SyncJobs queued behind the limits, against plain Jobs.

Modelled on Kueue's performance tests: a generator creates a workload all at once, the
benchmark measures what the cluster and the operator did, and thresholds ("rangespec"
style targets) are printed beside the numbers as PASS or MISS, never asserted.

Every workload runs on a fresh local stack (LocalCluster with the process kubelet,
whose `sync-sim` pods are asyncio tasks speaking the real Redis contract; Redis; the
CRDs; the operator as a real process, without PostgreSQL unless --mirror):

- latency: a small paced workload with free capacity (nothing queues), as plain Jobs
  and as SyncJobs: create -> Running p50/p99;
- each drain size (100, 1,000, 5,000): the same N jobs as plain batch/v1 Jobs of the
  same sim image under the same concurrency (the baseline: a client-side queue keeps
  at most --global-limit unfinished, at most --type-limit per type, and creates the
  next as soon as the watch shows one Complete or Failed), then N SyncJobs created at
  once over the five types, queued behind the global and per-type limits, until the
  last Succeeded;
- the queued size (10,000): the limits filled by long jobs, 10,000 short ones created
  behind them and measured while they wait (operator CPU, requests, reconciles, the
  admission of one urgent job when a slot frees), then the stack is torn down.

    .venv/bin/python benchmarks/scale.py [--sizes 100,1000,5000,10000] [--mirror]

Prints a table and writes benchmarks/results/scale-<date>.json and scale-latest.json.
See benchmarks/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control_plane import (
    JOB_TYPES,
    NAMESPACE,
    Feed,
    Seen,
    concurrent_work,
    create_database,
    follow,
    memory_mib,
    metric_value,
    percentile,
    pid_of,
    scrape,
    until_served,
    version_of,
    wait_until_leading,
)
from report import (
    RESULTS,
    Row,
    close,
    dig,
    fmt,
    git_state,
    loadavg,
    print_report,
    run_header,
    table,
    target_lines,
    write_result,
)

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import EVENTS, JOBS, NAMESPACES, PODS
from sync_operator.syncjob.job_builder import JobSettings, build_job, job_name
from testkit.build import KUBE_VERSION
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.policies import install_policies
from testkit.ports import free_port
from testkit.servers import PostgresServer, RedisServer
from testkit.syncjobs import install_crds, syncjob

SIM_IMAGE = "local/sync-sim:dev"
SHORT_WORK = {"task": "demo", "items": 2, "unitSeconds": 0.05}
# The jobs that fill every slot in the queued case: one unit a second for an hour.
HOLDER_WORK = {"task": "demo", "items": 3600, "unitSeconds": 1.0}
DRAIN_SIZES = (100, 1000, 5000)
QUEUED_SIZES = (10_000,)
LATENCY_JOBS = 40
LATENCY_PACE_SECONDS = 0.5  # one create every 0.5 s: a steady trickle, never a burst
CREATE_CONCURRENCY = 50
STALL_SECONDS = 180.0  # a drain that finishes no job for this long has stalled
QUEUED_DEADLINE_SECONDS = 600.0  # the 10k case gives up waiting for all Queued after this
IDLE_WINDOW_SECONDS = 30.0
PLAIN_LABEL = "scale.bench/plain"
PLAIN_TYPE_LABEL = "scale.bench/type"  # the job type of a plain Job, for the client queue
JOB_DONE = ("Complete", "Failed")  # a plain Job's terminal conditions
POD_JOB_LABEL = "batch.kubernetes.io/job-name"
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"}
READ_VERBS = {"GET", "LIST", "WATCH"}
RESOURCES = ("syncjobs", "jobs", "pods", "events", "leases")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROBLEM_WORDS = ("Traceback", " ERROR ", " WARNING ", '"ERROR"', '"WARNING"')

# Targets (Kueue's rangespec style): (key, text, check on the result dict).
TARGET_DRAIN_5000_SECONDS = 180.0
TARGET_CPU_CORES = 1.0
TARGET_RSS_MB = 300.0
TARGET_WRITES_PER_JOB = 6.0
TARGET_RECONCILES_PER_JOB = 10.0
TARGET_P99_RATIO = 1.5
TARGET_RATE_KEPT = 0.9  # jobs/min at the largest size >= 90% of the smallest's


# -- what we watch ----------------------------------------------------------------------


Listener = Callable[[str, str, float], None]  # (key, state, time first reached)


class Milestones(Feed[Seen]):
    """The first time each object reached each state, without keeping every event.

    Listeners are called (in the watch task) each time a key reaches a state for the
    first time: the client-side queue of plain Jobs learns of a finished Job this way."""

    def __init__(self, key: Callable[[Seen], str | None],
                 state: Callable[[Seen], str | None]) -> None:
        super().__init__()
        self._key = key
        self._state = state
        self.first: dict[str, dict[str, float]] = {}
        self.events = 0
        self.listeners: list[Listener] = []

    def add(self, item: Seen) -> None:
        self.events += 1
        key, state = self._key(item), self._state(item)
        if key is None or state is None:
            return
        states = self.first.setdefault(key, {})
        if state not in states:
            states[state] = item.t
            for listener in list(self.listeners):
                listener(key, state, item.t)

    def reached(self, state: str, keys: list[str]) -> dict[str, float]:
        return {k: self.first[k][state] for k in keys
                if state in self.first.get(k, {})}


def job_state(seen: Seen) -> str | None:
    for cond in (seen.obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in JOB_DONE:
            return str(cond["type"])
    return None


def pod_job(seen: Seen) -> str | None:
    labels = seen.obj["metadata"].get("labels") or {}
    value = labels.get(POD_JOB_LABEL) or labels.get("job-name")
    return str(value) if value else None


@dataclass
class Watches:
    syncjobs: Milestones = field(default_factory=lambda: Milestones(
        lambda s: s.name, lambda s: s.phase))
    jobs: Milestones = field(default_factory=lambda: Milestones(lambda s: s.name, job_state))
    pods: Milestones = field(default_factory=lambda: Milestones(
        pod_job, lambda s: None if s.kind == "DELETED" else s.phase))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, kube: KubeClient) -> None:
        self.tasks = [await follow(kube, SYNCJOBS, self.syncjobs),
                      await follow(kube, JOBS, self.jobs),
                      await follow(kube, PODS, self.pods)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


# -- counters: the API server, the operator, /proc -------------------------------------

_REQUEST = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$",
                      re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
RequestKey = tuple[str, str, str]  # (verb, resource, subresource)


def api_requests(page: str) -> Counter[RequestKey]:
    """apiserver_request_total summed over codes, groups and versions."""
    counts: Counter[RequestKey] = Counter()
    for match in _REQUEST.finditer(page):
        labels = dict(_LABEL.findall(match.group("labels")))
        key = (labels.get("verb", ""), labels.get("resource", ""),
               labels.get("subresource", ""))
        counts[key] += int(float(match.group("value")))
    return counts


def scrape_apiserver(cluster: LocalCluster) -> Counter[RequestKey]:
    request = urllib.request.Request(
        cluster.server + "/metrics",
        headers={"Authorization": f"Bearer {cluster.tokens['admin']}"})
    context = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    with urllib.request.urlopen(request, context=context, timeout=30) as resp:
        return api_requests(resp.read().decode())


def labelled_sum(page: str, name: str) -> float:
    """A counter summed over its labels (e.g. sync_operator_reconciles_total{outcome})."""
    pattern = rf"^sync_operator_{name}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$"
    return sum(float(v) for v in re.findall(pattern, page, re.MULTILINE))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Snapshot:
    """Every counter at one moment."""

    t: float
    api: Counter[RequestKey]
    reconciles: float = 0.0
    progress_writes: float = 0.0
    passes: float = 0.0
    cpu: float = 0.0


async def snapshot(cluster: LocalCluster, op: Operator | None) -> Snapshot:
    api = await asyncio.to_thread(scrape_apiserver, cluster)
    snap = Snapshot(time.monotonic(), api)
    if op is not None:
        page = await scrape(op.metrics_port)
        snap.reconciles = labelled_sum(page, "reconciles_total")
        snap.progress_writes = metric_value(page, "progress_status_writes") or 0.0
        snap.passes = metric_value(page, "admission_passes") or 0.0
        snap.cpu = cpu_seconds(op.pid)
    return snap


def by_resource(delta: Counter[RequestKey], verbs: set[str]) -> dict[str, int]:
    """Requests per resource (subresources folded in), for the resources we attribute."""
    out = dict.fromkeys(RESOURCES, 0)
    for (verb, resource, _sub), count in delta.items():
        if verb in verbs and resource in out:
            out[resource] += count
    out["total"] = sum(c for (verb, _r, _s), c in delta.items() if verb in verbs)
    return out


def api_delta(before: Snapshot, after: Snapshot) -> Counter[RequestKey]:
    delta = Counter(after.api)
    delta.subtract(before.api)
    return +delta


class CpuSampler:
    """The operator's CPU once a second, for the busiest 5-second window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="cpu-sampler")

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
            await asyncio.sleep(1.0)

    async def stop(self) -> float:
        """Stop; return the peak cores over any 5 s window (0 if too short)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        peak = 0.0
        for i, (t0, c0) in enumerate(self.samples):
            for t1, c1 in self.samples[i + 1:]:
                if t1 - t0 >= 5.0:
                    peak = max(peak, (c1 - c0) / (t1 - t0))
                    break
        return peak


# -- the stack ------------------------------------------------------------------------------


@dataclass
class Operator:
    process: OperatorProcess
    metrics_port: int

    @property
    def pid(self) -> int:
        return pid_of(self.process.process)

    def log_size(self) -> int:
        try:
            return self.process.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_problems(self, since: int = 0) -> list[str]:
        """WARNING / ERROR / Traceback lines of the operator's log after byte `since`."""
        try:
            with self.process.log_path.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines()
                if any(word in line for word in PROBLEM_WORDS)]


@dataclass
class Stack:
    root: Path
    cluster: LocalCluster
    redis: RedisServer
    kube: KubeClient
    watches: Watches
    database_url: str | None
    global_limit: int
    type_limit: int
    operator_settings: dict[str, str]
    operator: Operator | None = None


def platform_args(manager_qps: int, kubelet_qps: int) -> tuple[list[str], list[str]]:
    """Flags that lift the Job controller's and the kubelet's client limits, so the
    platform (not the test harness's defaults of 20 and 50 QPS) is not the bound.

    The kubelet's stays below what its 50 pooled connections carry: above that, its
    requests wait for a connection inside their 30 s timeout, and a status patch that
    times out ends the pod's task (the pod then never completes)."""
    manager = [f"--kube-api-qps={manager_qps}", f"--kube-api-burst={2 * manager_qps}",
               "--concurrent-job-syncs=50"] if manager_qps > 0 else []
    kubelet = ["--qps", str(kubelet_qps), "--burst", str(kubelet_qps)] \
        if kubelet_qps > 0 else []
    return manager, kubelet


@contextlib.asynccontextmanager
async def local_stack(root: Path, pg: PostgresServer | None,
                      args: argparse.Namespace) -> AsyncIterator[Stack]:
    """A fresh control plane, Redis, CRDs and namespace; the operator is started later."""
    manager, kubelet = platform_args(args.platform_qps, args.kubelet_qps)
    cluster = LocalCluster(root / "cluster", controller_manager_args=manager,
                           kubelet_args=kubelet)
    redis = RedisServer(root / "redis")
    try:
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(redis.start)
        database_url = None
        if pg is not None:
            database_url = await asyncio.to_thread(create_database, pg,
                                                   f"scale_{uuid.uuid4().hex[:8]}")
        # The benchmark's own client must not be the bottleneck of a burst of creates.
        async with KubeClient(load_connection(cluster.admin_kubeconfig), qps=10_000,
                              burst=10_000) as kube:
            await install_crds(kube)
            # As the chart installs them: the API server stamps who did what and puts the
            # operator's finalizer on at create (policies/).
            await install_policies(kube)
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NAMESPACE}})
            watches = Watches()
            await watches.start(kube)
            stack = Stack(root, cluster, redis, kube, watches, database_url,
                          args.global_limit, args.type_limit, operator_extra(args))
            try:
                yield stack
            finally:
                await watches.stop()
                if stack.operator is not None:
                    await asyncio.to_thread(stack.operator.process.stop)
    finally:
        await asyncio.to_thread(redis.stop)
        await asyncio.to_thread(cluster.stop)


def operator_settings(stack: Stack, metrics_port: int) -> dict[str, str]:
    limits = json.dumps(dict.fromkeys(JOB_TYPES, stack.type_limit))
    settings = {
        "namespace": NAMESPACE,
        "lease_namespace": NAMESPACE,
        "redis_url": stack.redis.url,
        "runner_image": SIM_IMAGE,
        "metrics_port": str(metrics_port),
        "health_port": str(free_port()),
        "global_limit": str(stack.global_limit),
        "type_limits": limits,
    }
    if stack.database_url:
        settings["database_url"] = stack.database_url
    return {**settings, **stack.operator_settings}


def operator_extra(args: argparse.Namespace) -> dict[str, str]:
    """Settings given on the command line (api_qps, api_burst, workers); the rest default."""
    extra = {}
    if args.api_qps:
        extra["api_qps"] = str(args.api_qps)
    if args.api_burst:
        extra["api_burst"] = str(args.api_burst)
    if args.workers:
        extra["workers"] = str(args.workers)
    return extra


async def start_operator(stack: Stack) -> Operator:
    """The operator as a real process; returns once it leads and has run a pass."""
    port = free_port()
    process = OperatorProcess(stack.cluster.admin_kubeconfig, stack.root / "operator.log",
                              operator_settings(stack, port))
    process.start()
    op = Operator(process, port)
    await wait_until_leading(process, port, time.monotonic() + 90)
    stack.operator = op
    return op


# -- the workload generator ---------------------------------------------------------------


def syncjob_body(name: str, n: int, work: dict[str, Any], priority: int = 5) -> dict[str, Any]:
    return syncjob(name, JOB_TYPES[n % len(JOB_TYPES)], priority=priority, params=work)


def plain_job_body(name: str, n: int, work: dict[str, Any]) -> dict[str, Any]:
    """The Job the operator would build for such a SyncJob, owned by nobody, so only the
    Job controller and the kubelet act on it (the operator watches its own label only).

    Its type is that of the SyncJob with the same `n` (`syncjob_body`), in a label the
    client-side queue reads to apply the per-type limit."""
    job_type = JOB_TYPES[n % len(JOB_TYPES)]
    fake = {"metadata": {"name": name, "namespace": NAMESPACE, "uid": str(uuid.uuid4())},
            "spec": {"jobType": job_type, "params": work}}
    job = build_job(fake, JobSettings(image=SIM_IMAGE, redis_url="redis://unused"))
    job["metadata"] = {"name": name,
                       "labels": {PLAIN_LABEL: "true", PLAIN_TYPE_LABEL: job_type}}
    job["spec"]["template"]["metadata"]["labels"] = {PLAIN_LABEL: "true"}
    return job


def with_redis(job: dict[str, Any], redis_url: str) -> dict[str, Any]:
    for env in job["spec"]["template"]["spec"]["containers"][0]["env"]:
        if env.get("value") == "redis://unused":
            env["value"] = redis_url
    return job


async def create_all(stack: Stack, bodies: list[tuple[str, dict[str, Any]]], *,
                     pace: float = 0.0) -> dict[str, tuple[float, str]]:
    """Create every body (kind decided by its apiVersion); name -> (time, uid).

    pace 0 creates all at once (CREATE_CONCURRENCY requests in flight); otherwise one
    every `pace` seconds.
    """
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)
    created: dict[str, tuple[float, str]] = {}

    async def one(name: str, body: dict[str, Any]) -> None:
        async with gate:
            created[name] = await create_one(stack, body)

    if pace:
        pending = []
        for name, body in bodies:
            pending.append(asyncio.create_task(one(name, body)))
            await asyncio.sleep(pace)
        await asyncio.gather(*pending)
    else:
        await asyncio.gather(*(one(name, body) for name, body in bodies))
    return created


async def create_one(stack: Stack, body: dict[str, Any]) -> tuple[float, str]:
    """Create one body (kind decided by its apiVersion); (time just before the request,
    uid). Every create -> X figure is measured from this time, the object's own create."""
    res = JOBS if body["apiVersion"] == "batch/v1" else SYNCJOBS
    at = time.monotonic()
    made = await until_served(lambda: stack.kube.create(res, body, NAMESPACE))
    return at, str(made["metadata"]["uid"])


class ClientQueue:
    """A perfect client-side queue for plain Jobs: the SyncJobs' admission rule, applied
    by the benchmark with nothing in between.

    The bodies wait in their list order (the SyncJobs' priority/creation order: one
    priority, created in the same order). At most `global_limit` Jobs are unfinished
    (created, or being created, and not yet Complete/Failed) and at most `type_limit` of
    each type (label PLAIN_TYPE_LABEL; a body without it counts only globally). Like
    the operator's admission it is work-conserving per type: a job held back only by its
    type's limit blocks nobody behind it. Watch-driven: the Job watch's first
    Complete/Failed of a Job (Milestones listener) frees its slot and the next waiting
    Job is created at once; nothing sleeps or polls."""

    def __init__(self, stack: Stack, bodies: list[tuple[str, dict[str, Any]]],
                 global_limit: int, type_limit: int) -> None:
        self.stack = stack
        self.global_limit = global_limit
        self.type_limit = type_limit
        self.type_of: dict[str, str | None] = {}
        self.waiting: dict[str | None, deque[tuple[int, str, dict[str, Any]]]] = {}
        for index, (name, body) in enumerate(bodies):
            job_type = (body["metadata"].get("labels") or {}).get(PLAIN_TYPE_LABEL)
            self.type_of[name] = job_type
            self.waiting.setdefault(job_type, deque()).append((index, name, body))
        self.unfinished: Counter[str | None] = Counter()
        self.finished: set[str] = set()
        self.created: dict[str, tuple[float, str]] = {}
        self.max_unfinished = 0
        self.max_unfinished_by_type: Counter[str | None] = Counter()
        self._done: asyncio.Queue[str] = asyncio.Queue()
        self._gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    def _on_state(self, key: str, state: str, _t: float) -> None:
        if state in JOB_DONE and key in self.type_of:
            self._done.put_nowait(key)

    def _has_room(self, job_type: str | None) -> bool:
        return job_type is None or self.unfinished[job_type] < self.type_limit

    def _next(self) -> tuple[int, str, dict[str, Any]] | None:
        """The first waiting body (list order) whose type has room; None if none has."""
        heads = [q[0] for t, q in self.waiting.items() if q and self._has_room(t)]
        if not heads:
            return None
        head = min(heads, key=lambda h: h[0])
        self.waiting[self.type_of[head[1]]].popleft()
        return head

    def _fill(self, group: asyncio.TaskGroup) -> None:
        while sum(self.unfinished.values()) < self.global_limit:
            picked = self._next()
            if picked is None:
                return
            _, name, body = picked
            job_type = self.type_of[name]
            self.unfinished[job_type] += 1
            total = sum(self.unfinished.values())
            self.max_unfinished = max(self.max_unfinished, total)
            self.max_unfinished_by_type[job_type] = max(
                self.max_unfinished_by_type[job_type], self.unfinished[job_type])
            group.create_task(self._create(name, body))

    async def _create(self, name: str, body: dict[str, Any]) -> None:
        async with self._gate:
            self.created[name] = await create_one(self.stack, body)

    async def run(self) -> None:
        """Create every body under the limits; returns once the last one is created."""
        jobs = self.stack.watches.jobs
        jobs.listeners.append(self._on_state)
        try:
            # Jobs of these names that finished before the listener existed (none, with
            # fresh names; kept so the count is right whatever the caller did).
            for name in self.type_of:
                if any(s in jobs.first.get(name, {}) for s in JOB_DONE):
                    self._done.put_nowait(name)
            async with asyncio.TaskGroup() as group:
                self._fill(group)
                while any(self.waiting.values()):
                    name = await self._done.get()
                    if name in self.finished:
                        continue
                    self.finished.add(name)
                    self.unfinished[self.type_of[name]] -= 1
                    self._fill(group)
        finally:
            jobs.listeners.remove(self._on_state)


async def wait_done(stack: Stack, done: Callable[[], int], total: int, what: str,
                    stall: float = STALL_SECONDS,
                    alongside: asyncio.Task[None] | None = None) -> None:
    """Until done() == total; fails when nothing finishes for `stall` seconds, or when
    the `alongside` task (e.g. the client queue creating the jobs) fails.

    The 0.5 s poll only watches for the end and for a stall: every time it reports
    comes from the watches."""
    last_count, last_change, last_print = -1, time.monotonic(), time.monotonic()
    while True:
        count = done()
        now = time.monotonic()
        if alongside is not None and alongside.done() and not alongside.cancelled():
            alongside.result()  # raises what the task raised
        if count >= total:
            return
        if count != last_count:
            last_count, last_change = count, now
        if stack.operator is not None:
            assert stack.operator.process.process is not None
            stack.operator.process.process.check_alive()
        if now - last_change > stall:
            raise RuntimeError(f"{what}: stalled at {count}/{total} for {stall:.0f}s")
        if now - last_print >= 20:
            print(f"    {what}: {count}/{total} finished, loadavg {loadavg()[0]:.1f}",
                  flush=True)
            last_print = now
        await asyncio.sleep(0.5)


def spread(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": len(ordered), "p50": percentile(ordered, 0.5),
            "p99": percentile(ordered, 0.99), "max": ordered[-1]}


# -- one workload each -------------------------------------------------------------------


def baseline_mode(pace: float, limit: int | None, type_limit: int | None) -> str:
    if pace:
        return f"plain Jobs, one created every {pace:g} s (free capacity)"
    if limit is None:
        return "plain Jobs, all created at once"
    per_type = f", at most {type_limit} per type" if type_limit is not None else ""
    return f"plain Jobs, at most {limit} unfinished{per_type} (client-side queue)"


async def run_plain(stack: Stack, count: int, prefix: str, work: dict[str, Any],
                    pace: float = 0.0, limit: int | None = None,
                    type_limit: int | None = None) -> dict[str, Any]:
    """N plain batch/v1 Jobs of the sim image: drain and create -> pod Running.

    With `limit`, a ClientQueue creates them (at most `limit` unfinished, `type_limit`
    per type); otherwise all at once (pace 0) or one every `pace` seconds."""
    names = [f"{prefix}-{n:05d}" for n in range(count)]
    bodies = [(name, with_redis(plain_job_body(name, n, work), stack.redis.url))
              for n, name in enumerate(names)]
    jobs = stack.watches.jobs

    def finished() -> int:
        return sum(len(jobs.reached(state, names)) for state in JOB_DONE)

    before = await snapshot(stack.cluster, None)
    queue: ClientQueue | None = None
    enqueued = time.monotonic()  # every job handed to the client queue at this moment
    if limit is not None and not pace:
        queue = ClientQueue(stack, bodies, limit,
                            type_limit if type_limit is not None else count)
        submit = asyncio.create_task(queue.run(), name="client-queue")
        try:
            await wait_done(stack, finished, count, f"{count} plain Jobs", alongside=submit)
            await submit
        finally:
            submit.cancel()
            await asyncio.gather(submit, return_exceptions=True)
        created = queue.created
    else:
        created = await create_all(stack, bodies, pace=pace)
        await wait_done(stack, finished, count, f"{count} plain Jobs")
    after = await snapshot(stack.cluster, None)
    first = min(t for t, _ in created.values())
    complete = jobs.reached("Complete", names)
    running = stack.watches.pods.reached("Running", names)
    drain = max(complete.values(), default=first) - first
    delta = api_delta(before, after)
    result: dict[str, Any] = {
        "baseline": baseline_mode(pace, limit, type_limit),
        "jobs": count, "failed": count - len(complete), "drain_seconds": drain,
        "jobs_per_minute": len(complete) / drain * 60 if drain else None,
        # From each Job's own create request (after its wait in the client queue).
        "create_to_pod_running": spread([running[n] - created[n][0] for n in running]),
        "api_writes_per_job": per_job(by_resource(delta, WRITE_VERBS), count),
        "api_reads_per_job": per_job(by_resource(delta, READ_VERBS), count),
    }
    if queue is not None:
        # From the moment all were handed to the queue: the wait a SyncJob's
        # create -> pod Running includes (its queue wait behind the limits).
        result["enqueued_to_pod_running"] = spread([running[n] - enqueued
                                                     for n in running])
        result["max_unfinished"] = queue.max_unfinished
        result["max_unfinished_per_type"] = max(queue.max_unfinished_by_type.values(),
                                                default=0)
    return result


def per_job(counts: dict[str, int], jobs: int) -> dict[str, float]:
    return {k: v / jobs for k, v in counts.items()}


async def operator_events(stack: Stack) -> int:
    """Events the operator recorded about SyncJobs (each with its repeat count)."""
    listed = await stack.kube.list(EVENTS, NAMESPACE,
                                   field_selector="involvedObject.kind=SyncJob")
    return sum(int(dict(e).get("count") or 1) for e in listed["items"])


def operator_writes(delta: Counter[RequestKey], progress: float, events: int,
                    created: int) -> dict[str, float]:
    """The operator's own writes: every non-create SyncJob write, its Job writes (not the
    Job controller's status), its Events; progress writes apart."""
    sj_status = sum(c for (v, r, s), c in delta.items()
                    if r == "syncjobs" and s == "status" and v in WRITE_VERBS)
    sj_other = sum(c for (v, r, s), c in delta.items()
                   if r == "syncjobs" and s != "status" and v in WRITE_VERBS) - created
    jobs = sum(c for (v, r, s), c in delta.items()
               if r == "jobs" and s != "status" and v in WRITE_VERBS)
    leases = sum(c for (v, r, _s), c in delta.items() if r == "leases" and v in WRITE_VERBS)
    return {"syncjob_status_transitions": sj_status - progress, "syncjob_progress": progress,
            "syncjob_metadata": sj_other, "jobs": jobs, "events": events,
            "leases_all_components": leases,
            "lifecycle_total": sj_status - progress + sj_other + jobs + events}


async def run_syncjobs(stack: Stack, count: int, prefix: str, work: dict[str, Any],
                       pace: float = 0.0, profile: Path | None = None) -> dict[str, Any]:
    """N SyncJobs over the five types: drain, admission, operator cost."""
    op = stack.operator
    assert op is not None
    names = [f"{prefix}-{n:05d}" for n in range(count)]
    bodies = [(name, syncjob_body(name, n, work)) for n, name in enumerate(names)]
    log_from = op.log_size()
    before = await snapshot(stack.cluster, op)
    sampler = CpuSampler(op.pid)
    sampler.start()
    spy = Profiler(op.pid, profile) if profile else None
    if spy is not None:
        print(f"    profiling the operator (pid {op.pid}) with py-spy", flush=True)
    created = await create_all(stack, bodies, pace=pace)
    first = min(t for t, _ in created.values())
    sjs = stack.watches.syncjobs
    terminal = ("Succeeded", "Failed", "Cancelled")
    try:
        await wait_done(stack, lambda: sum(len(sjs.reached(p, names)) for p in terminal),
                        count, f"{count} SyncJobs")
    finally:
        if spy is not None:
            spy.stop()
    after = await snapshot(stack.cluster, op)
    peak_cpu = await sampler.stop()
    succeeded = sjs.reached("Succeeded", names)
    running = sjs.reached("Running", names)
    pods = stack.watches.pods.reached("Running", [job_name(n, created[n][1]) for n in names])
    pod_running = {n: pods[job_name(n, created[n][1])] for n in names
                   if job_name(n, created[n][1]) in pods}
    drain = max(succeeded.values(), default=first) - first
    wall = after.t - before.t
    delta = api_delta(before, after)
    writes = operator_writes(delta, after.progress_writes - before.progress_writes,
                             await operator_events(stack), count)
    return {
        "jobs": count, "not_succeeded": count - len(succeeded), "drain_seconds": drain,
        "jobs_per_minute": len(succeeded) / drain * 60 if drain else None,
        "admitted_per_second": len(running) / (max(running.values()) - first)
        if running else None,
        "create_to_running": spread([running[n] - created[n][0] for n in running]),
        "create_to_pod_running": spread([pod_running[n] - created[n][0]
                                         for n in pod_running]),
        "operator_cpu_cores": (after.cpu - before.cpu) / wall,
        "operator_cpu_peak_5s_cores": peak_cpu,
        "operator_peak_rss_mib": memory_mib(op.pid)[1],
        "operator_writes_per_job": per_job_f(writes, count),
        "reconciles_per_job": (after.reconciles - before.reconciles) / count,
        "admission_passes": after.passes - before.passes,
        "api_writes_per_job": per_job(by_resource(delta, WRITE_VERBS), count),
        "api_reads_per_job": per_job(by_resource(delta, READ_VERBS), count),
        "requests_by_verb_resource": {f"{v} {r}{'/' + s if s else ''}": c
                                      for (v, r, s), c in sorted(delta.items())
                                      if r in RESOURCES},
        "watch_events_seen_by_benchmark": sjs.events,
        **log_summary(op, log_from),
    }


def log_summary(op: Operator, since: int) -> dict[str, Any]:
    problems = op.log_problems(since)
    return {"operator_log_problem_lines": len(problems),
            "operator_log_problems": problems[:20]}


def per_job_f(counts: dict[str, float], jobs: int) -> dict[str, float]:
    return {k: v / jobs for k, v in counts.items()}


async def run_queued(stack: Stack, count: int) -> dict[str, Any]:
    """Fill every slot with long jobs, queue `count` behind them, measure while they wait."""
    op = stack.operator
    assert op is not None
    holders = [f"hold-{n:03d}" for n in range(stack.global_limit)]
    await create_all(stack, [(h, syncjob_body(h, n, HOLDER_WORK))
                             for n, h in enumerate(holders)])
    sjs = stack.watches.syncjobs
    await wait_done(stack, lambda: len(sjs.reached("Running", holders)), len(holders),
                    "holders Running")
    names = [f"q-{n:05d}" for n in range(count)]
    log_from = op.log_size()
    before = await snapshot(stack.cluster, op)
    started = time.monotonic()
    await create_all(stack, [(n, syncjob_body(n, i, SHORT_WORK)) for i, n in enumerate(names)])
    created_in = time.monotonic() - started
    try:
        await wait_done(stack, lambda: len(sjs.reached("Queued", names)), count,
                        f"{count} SyncJobs Queued", stall=QUEUED_DEADLINE_SECONDS)
    except RuntimeError as err:
        print(f"    {err}", flush=True)
    queued_at = time.monotonic()
    queued = sjs.reached("Queued", names)
    settled = await snapshot(stack.cluster, op)
    await asyncio.sleep(IDLE_WINDOW_SECONDS)
    idle_end = await snapshot(stack.cluster, op)
    probe = await probe_admission(stack, holders[0])
    done = await snapshot(stack.cluster, op)
    intake = api_delta(before, settled)
    idle = api_delta(settled, idle_end)
    window = idle_end.t - settled.t
    return {
        "jobs": count, "holders": len(holders), "created_in_seconds": created_in,
        "queued_seen": len(queued),
        "create_to_all_queued_seconds": (max(queued.values()) - started) if queued else None,
        "intake_operator_cpu_cores": (settled.cpu - before.cpu) / (settled.t - before.t),
        "intake_reconciles_per_job": (settled.reconciles - before.reconciles) / count,
        "intake_api_writes_per_job": per_job(by_resource(intake, WRITE_VERBS), count),
        "intake_api_reads_per_job": per_job(by_resource(intake, READ_VERBS), count),
        "waiting_window_seconds": window,
        "waiting_operator_cpu_cores": (idle_end.cpu - settled.cpu) / window,
        "waiting_reconciles_per_second": (idle_end.reconciles - settled.reconciles) / window,
        "waiting_admission_passes_per_second": (idle_end.passes - settled.passes) / window,
        "waiting_api_writes_per_second": {k: v / window for k, v in
                                          by_resource(idle, WRITE_VERBS).items()},
        "waiting_api_reads_per_second": {k: v / window for k, v in
                                         by_resource(idle, READ_VERBS).items()},
        "waiting_progress_writes_per_second":
            (idle_end.progress_writes - settled.progress_writes) / window,
        **probe,
        "probe_admission_passes": done.passes - idle_end.passes,
        "operator_peak_rss_mib": memory_mib(op.pid)[1],
        "seconds_until_all_queued_or_deadline": queued_at - started,
        **log_summary(op, log_from),
    }


async def probe_admission(stack: Stack, holder: str) -> dict[str, float | None]:
    """One urgent job behind 10k waiting; cancel a holder of its type; time its admission."""
    sjs = stack.watches.syncjobs
    await create_all(stack, [("probe", syncjob("probe", JOB_TYPES[0], priority=1,
                                               params=SHORT_WORK))])
    await wait_done(stack, lambda: len(sjs.reached("Queued", ["probe"])), 1, "probe Queued",
                    stall=60)
    cancelled_at = time.monotonic()
    await stack.kube.patch(SYNCJOBS, holder, {"spec": {"cancel": True}}, NAMESPACE)
    await wait_done(stack, lambda: len(sjs.reached("Running", ["probe"])), 1, "probe Running",
                    stall=120)
    freed = sjs.reached("Cancelled", [holder]).get(holder)
    admitted = sjs.first["probe"]["Running"]
    return {"probe_cancel_to_running_seconds": admitted - cancelled_at,
            "probe_slot_freed_to_running_seconds": admitted - freed if freed else None}


# -- profiling -------------------------------------------------------------------------------


class Profiler:
    """py-spy on the operator: a flame graph (SVG) and collapsed stacks for the summary."""

    RATE = 25

    def __init__(self, pid: int, svg: Path) -> None:
        svg.parent.mkdir(parents=True, exist_ok=True)
        spy = str(Path(sys.executable).parent / "py-spy")
        self.svg = svg
        self.collapsed = svg.with_suffix(".collapsed")
        common = ["--pid", str(pid), "--rate", str(self.RATE), "--nonblocking"]
        self.procs = [
            subprocess.Popen([spy, "record", "-o", str(svg), "--format", "flamegraph",
                              *common], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
            subprocess.Popen([spy, "record", "-o", str(self.collapsed), "--format", "raw",
                              *common], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
        ]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                continue
            if proc.returncode not in (0, None) and err:
                print(f"    py-spy: {err.decode(errors='replace')[-500:]}", flush=True)
        if self.collapsed.exists():
            summary = summarize_profile(self.collapsed.read_text(), self.RATE)
            self.svg.with_suffix(".txt").write_text(summary)


def frame_function(frame: str) -> str:
    """`handle (sync_operator/x.py:12)` -> `handle (sync_operator/x.py)`."""
    return re.sub(r":\d+\)$", ")", frame.strip())


def summarize_profile(collapsed: str, rate: int, top: int = 30) -> str:
    """Top functions by own and by total samples, from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    stacks: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_function(f) for f in stack.split(";")
                  if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
        stacks[" <- ".join(reversed(frames[-4:]))] += count
    lines = [f"py-spy record --rate {rate} --nonblocking on the operator during the drain",
             f"{samples} samples ({samples / rate:.0f} s of non-idle Python threads)", "",
             f"top {top} by own samples (the function itself on CPU)"]
    lines += [f"{c:>7} {c / samples:6.1%}  {name}" for name, c in own.most_common(top)]
    lines += ["", f"top {top} by total samples (the function or what it calls)"]
    lines += [f"{c:>7} {c / samples:6.1%}  {name}" for name, c in total.most_common(top)]
    lines += ["", "top 15 leaf paths (innermost 4 frames, innermost first)"]
    lines += [f"{c:>7} {c / samples:6.1%}  {name}" for name, c in stacks.most_common(15)]
    return "\n".join(lines) + "\n" if samples else "no samples\n"


# -- orchestration ---------------------------------------------------------------------------


async def latency_case(root: Path, pg: PostgresServer | None, args: argparse.Namespace
                       ) -> dict[str, Any]:
    """Free capacity: paced creates, create -> Running, plain Jobs then SyncJobs."""
    async with local_stack(root, pg, args) as stack:
        plain = await run_plain(stack, LATENCY_JOBS, "lat-plain", SHORT_WORK,
                                pace=LATENCY_PACE_SECONDS)
        await start_operator(stack)
        sync = await run_syncjobs(stack, LATENCY_JOBS, "lat-sj", SHORT_WORK,
                                  pace=LATENCY_PACE_SECONDS)
        return {"plain": plain, "syncjobs": sync}


async def drain_case(root: Path, pg: PostgresServer | None, args: argparse.Namespace,
                     size: int) -> dict[str, Any]:
    """N plain Jobs (baseline, operator not yet running), then N SyncJobs at once.

    The baseline runs the same jobs under the same concurrency: a client-side queue with
    the operator's global and per-type limits (all at once with --baseline-at-once)."""
    async with local_stack(root, pg, args) as stack:
        plain = None
        if not args.no_baseline:
            limits = (None, None) if args.baseline_at_once \
                else (args.global_limit, args.type_limit)
            plain = await run_plain(stack, size, "plain", SHORT_WORK, limit=limits[0],
                                    type_limit=limits[1])
            print(f"    baseline ({plain['baseline']}): {size} drained in "
                  f"{plain['drain_seconds']:.1f}s", flush=True)
        await start_operator(stack)
        profile = RESULTS / f"profile-{size}.svg" if size == args.profile_size else None
        sync = await run_syncjobs(stack, size, "sj", SHORT_WORK, profile=profile)
        return {"plain": plain, "syncjobs": sync, "loadavg_end": loadavg()}


async def queued_case(root: Path, pg: PostgresServer | None, args: argparse.Namespace,
                      size: int) -> dict[str, Any]:
    async with local_stack(root, pg, args) as stack:
        await start_operator(stack)
        result = await run_queued(stack, size)
        result["loadavg_end"] = loadavg()
        return result


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def add_ratios(case: dict[str, Any]) -> None:
    """Each SyncJob figure over the plain-Job baseline's, where both exist."""
    sync, plain = case["syncjobs"], case["plain"]
    if plain is None:
        case["ratios"] = {}
        return
    case["ratios"] = {
        "drain_seconds": ratio(sync["drain_seconds"], plain["drain_seconds"]),
        "jobs_per_minute": ratio(sync["jobs_per_minute"], plain["jobs_per_minute"]),
        "create_to_pod_running_p50": ratio(sync["create_to_pod_running"]["p50"],
                                           plain["create_to_pod_running"]["p50"]),
        "create_to_pod_running_p99": ratio(sync["create_to_pod_running"]["p99"],
                                           plain["create_to_pod_running"]["p99"]),
        "create_to_running_p99": ratio(sync["create_to_running"]["p99"],
                                       plain["create_to_pod_running"]["p99"]),
        # Drains with the client queue: the SyncJob's create -> pod Running (its queue
        # wait included) over the plain Job's wait from being queued to pod Running.
        "queued_to_pod_running_p50": ratio(
            sync["create_to_pod_running"]["p50"],
            dig(plain, "enqueued_to_pod_running.p50")),
        "queued_to_pod_running_p99": ratio(
            sync["create_to_pod_running"]["p99"],
            dig(plain, "enqueued_to_pod_running.p99")),
        "api_writes_per_job": ratio(sync["api_writes_per_job"]["total"],
                                    plain["api_writes_per_job"]["total"]),
        "api_reads_per_job": ratio(sync["api_reads_per_job"]["total"],
                                   plain["api_reads_per_job"]["total"]),
    }


# -- targets and the table -----------------------------------------------------------------


@dataclass
class Target:
    text: str
    value: float | None
    limit: float
    higher_is_better: bool = False

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "PASS" if ok else "MISS"


def targets(result: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    drains: dict[str, Any] = result["drain"]
    if "5000" in drains:
        out.append(Target("5,000 queued drained (s)", drains["5000"]["syncjobs"]
                          ["drain_seconds"], TARGET_DRAIN_5000_SECONDS))
    cases = [(f"{k} drain", v["syncjobs"]) for k, v in drains.items()]
    cases += [(f"{k} queued", v) for k, v in result["queued"].items()]
    for label, case in cases:
        cpu = case.get("operator_cpu_cores", case.get("intake_operator_cpu_cores"))
        out.append(Target(f"{label}: operator CPU (cores)", cpu, TARGET_CPU_CORES))
        out.append(Target(f"{label}: operator peak RSS (MB)",
                          case["operator_peak_rss_mib"] * 1.048576, TARGET_RSS_MB))
    for key, case in drains.items():
        sync = case["syncjobs"]
        out.append(Target(f"{key} drain: operator API writes/job (progress aside)",
                          sync["operator_writes_per_job"]["lifecycle_total"],
                          TARGET_WRITES_PER_JOB))
        out.append(Target(f"{key} drain: reconciles/job", sync["reconciles_per_job"],
                          TARGET_RECONCILES_PER_JOB))
    latency = result.get("latency")
    if latency:
        out.append(Target("free capacity: SyncJob create->pod Running p99 / plain Job's",
                          latency["ratios"]["create_to_pod_running_p99"], TARGET_P99_RATIO))
    sizes = sorted(int(k) for k in drains)
    if len(sizes) >= 2:
        small = drains[str(sizes[0])]["syncjobs"]["jobs_per_minute"]
        large = drains[str(sizes[-1])]["syncjobs"]["jobs_per_minute"]
        out.append(Target(f"drain jobs/min at {sizes[-1]} / at {sizes[0]} (does not fall)",
                          ratio(large, small), TARGET_RATE_KEPT, higher_is_better=True))
    return out


# (label, unit, path in a drain case); None path starts a section.
DRAIN_ROWS: list[Row] = [
    ("SyncJobs (queued behind the limits)", "", None),
    ("drain: first create -> last Succeeded", "s", "syncjobs.drain_seconds"),
    ("drain throughput", "jobs/min", "syncjobs.jobs_per_minute"),
    ("admission throughput (Running transitions)", "jobs/s", "syncjobs.admitted_per_second"),
    ("create -> phase Running p50 (queue wait)", "s", "syncjobs.create_to_running.p50"),
    ("create -> phase Running p99 (queue wait)", "s", "syncjobs.create_to_running.p99"),
    ("create -> pod Running p50", "s", "syncjobs.create_to_pod_running.p50"),
    ("create -> pod Running p99", "s", "syncjobs.create_to_pod_running.p99"),
    ("jobs not Succeeded", "", "syncjobs.not_succeeded"),
    ("operator", "", None),
    ("CPU (utime+stime)/wall over the drain", "cores", "syncjobs.operator_cpu_cores"),
    ("CPU, busiest 5 s", "cores", "syncjobs.operator_cpu_peak_5s_cores"),
    ("peak RSS (VmHWM)", "MiB", "syncjobs.operator_peak_rss_mib"),
    ("reconciles per job", "", "syncjobs.reconciles_per_job"),
    ("admission passes (whole drain)", "", "syncjobs.admission_passes"),
    ("WARNING/ERROR/Traceback lines in its log during the drain", "",
     "syncjobs.operator_log_problem_lines"),
    ("operator API writes per job (progress aside)", "", None),
    ("SyncJob status transitions", "", "syncjobs.operator_writes_per_job."
     "syncjob_status_transitions"),
    ("SyncJob metadata/spec (finalizer)", "", "syncjobs.operator_writes_per_job."
     "syncjob_metadata"),
    ("Job writes (create, suspend)", "", "syncjobs.operator_writes_per_job.jobs"),
    ("Events about SyncJobs", "", "syncjobs.operator_writes_per_job.events"),
    ("lifecycle total", "", "syncjobs.operator_writes_per_job.lifecycle_total"),
    ("SyncJob progress writes (apart)", "", "syncjobs.operator_writes_per_job."
     "syncjob_progress"),
    ("all components' API requests per job (apiserver_request_total)", "", None),
    ("writes: total", "", "syncjobs.api_writes_per_job.total"),
    ("writes: syncjobs / jobs / pods", "", "@writes3"),
    ("writes: events / leases", "", "@writes2"),
    ("reads (GET/LIST/WATCH): total", "", "syncjobs.api_reads_per_job.total"),
    ("reads: syncjobs / jobs / pods", "", "@reads3"),
    ("baseline: the same jobs as plain batch/v1 Jobs (its mode: below the table)", "", None),
    ("drain: first create -> last Complete", "s", "plain.drain_seconds"),
    ("drain throughput", "jobs/min", "plain.jobs_per_minute"),
    ("most unfinished at once (limit: --global-limit)", "", "plain.max_unfinished"),
    ("most unfinished of one type (limit: --type-limit)", "", "plain.max_unfinished_per_type"),
    ("queued (first create) -> pod Running p50", "s", "plain.enqueued_to_pod_running.p50"),
    ("queued (first create) -> pod Running p99", "s", "plain.enqueued_to_pod_running.p99"),
    ("own create -> pod Running p50 (no queue wait)", "s", "plain.create_to_pod_running.p50"),
    ("own create -> pod Running p99 (no queue wait)", "s", "plain.create_to_pod_running.p99"),
    ("API writes per job (Job controller, kubelet)", "", "plain.api_writes_per_job.total"),
    ("API reads per job", "", "plain.api_reads_per_job.total"),
    ("SyncJobs / baseline", "", None),
    ("drain time", "x", "ratios.drain_seconds"),
    ("drain throughput", "x", "ratios.jobs_per_minute"),
    ("create -> pod Running p50 / plain queued -> pod Running", "x",
     "ratios.queued_to_pod_running_p50"),
    ("create -> pod Running p99 / plain queued -> pod Running", "x",
     "ratios.queued_to_pod_running_p99"),
    ("create -> pod Running p50 / plain own create -> pod Running", "x",
     "ratios.create_to_pod_running_p50"),
    ("create -> pod Running p99 / plain own create -> pod Running", "x",
     "ratios.create_to_pod_running_p99"),
    ("API writes per job, all components", "x", "ratios.api_writes_per_job"),
    ("API reads per job, all components", "x", "ratios.api_reads_per_job"),
]

QUEUED_ROWS: list[Row] = [
    ("jobs created behind full limits / holders", "", "@jobs"),
    ("creates took", "s", "created_in_seconds"),
    ("first create -> all Queued (operator intake)", "s", "create_to_all_queued_seconds"),
    ("intake: operator CPU", "cores", "intake_operator_cpu_cores"),
    ("intake: reconciles per job", "", "intake_reconciles_per_job"),
    ("intake: API writes / reads per job", "", "@intake"),
    ("waiting: operator CPU", "cores", "waiting_operator_cpu_cores"),
    ("waiting: reconciles per second", "1/s", "waiting_reconciles_per_second"),
    ("waiting: admission passes per second", "1/s", "waiting_admission_passes_per_second"),
    ("waiting: API writes/s, syncjobs (progress of holders)", "1/s",
     "waiting_api_writes_per_second.syncjobs"),
    ("waiting: API reads/s, total", "1/s", "waiting_api_reads_per_second.total"),
    ("urgent job: holder cancel -> it Running", "s", "probe_cancel_to_running_seconds"),
    ("urgent job: slot freed (Cancelled) -> it Running", "s",
     "probe_slot_freed_to_running_seconds"),
    ("operator peak RSS (VmHWM)", "MiB", "operator_peak_rss_mib"),
    ("WARNING/ERROR/Traceback lines in its log", "", "operator_log_problem_lines"),
]


def special(case: dict[str, Any], key: str) -> str:
    def trio(prefix: str, parts: tuple[str, ...]) -> str:
        return " / ".join(fmt(dig(case, f"{prefix}.{p}"), 1) for p in parts)

    if key == "@writes3":
        return trio("syncjobs.api_writes_per_job", ("syncjobs", "jobs", "pods"))
    if key == "@writes2":
        return trio("syncjobs.api_writes_per_job", ("events", "leases"))
    if key == "@reads3":
        return trio("syncjobs.api_reads_per_job", ("syncjobs", "jobs", "pods"))
    if key == "@jobs":
        return f"{case['jobs']} / {case['holders']}"
    if key == "@intake":
        return (f"{fmt(dig(case, 'intake_api_writes_per_job.total'))} / "
                f"{fmt(dig(case, 'intake_api_reads_per_job.total'))}")
    return "?"


def cell(case: dict[str, Any], path: str) -> str:
    return special(case, path) if path.startswith("@") else fmt(dig(case, path))


def cases_table(rows: list[Row], cases: dict[str, dict[str, Any]], title: str) -> list[str]:
    return table(rows, cases, cell, title=title, label_width=60, unit_width=8)


def latency_lines(latency: dict[str, Any]) -> list[str]:
    plain, sync, r = latency["plain"], latency["syncjobs"], latency["ratios"]
    return [
        f"free capacity: {LATENCY_JOBS} jobs, one every {LATENCY_PACE_SECONDS}s, nothing queues",
        f"  plain Job create -> pod Running      p50 "
        f"{fmt(plain['create_to_pod_running']['p50'], 3)} s  p99 "
        f"{fmt(plain['create_to_pod_running']['p99'], 3)} s",
        f"  SyncJob create -> phase Running      p50 {fmt(sync['create_to_running']['p50'], 3)}"
        f" s  p99 {fmt(sync['create_to_running']['p99'], 3)} s"
        f"  (p99 {fmt(r['create_to_running_p99'])}x plain pod Running)",
        f"  SyncJob create -> pod Running        p50 "
        f"{fmt(sync['create_to_pod_running']['p50'], 3)} s  p99 "
        f"{fmt(sync['create_to_pod_running']['p99'], 3)} s  "
        f"(p50 {fmt(r['create_to_pod_running_p50'])}x, p99 "
        f"{fmt(r['create_to_pod_running_p99'])}x plain)",
    ]


def drain_verdicts(drains: dict[str, dict[str, Any]]) -> list[str]:
    """One line per drain: the SyncJobs beside the baseline (which mode it was)."""
    lines = []
    for size, case in drains.items():
        plain, sync = case["plain"], case["syncjobs"]
        if plain is None:
            lines.append(f"  {size}: no baseline (--no-baseline)")
            continue
        lines.append(
            f"  {size}: SyncJobs drained in {fmt(sync['drain_seconds'], 1)} s, "
            f"{fmt(dig(case, 'ratios.drain_seconds'))}x the {fmt(plain['drain_seconds'], 1)}"
            f" s of the baseline ({plain['baseline']}): the operator's cost over the same "
            f"jobs at the same concurrency")
    return lines


def render(result: dict[str, Any]) -> str:
    lines: list[str] = []
    if result.get("latency"):
        lines += [*latency_lines(result["latency"]), ""]
    if result["drain"]:
        lines += [*cases_table(DRAIN_ROWS, result["drain"], "drain (N created at once)"),
                  *drain_verdicts(result["drain"]), ""]
    if result["queued"]:
        lines += [*cases_table(QUEUED_ROWS, result["queued"], "queued (N waiting)"), ""]
    lines += target_lines(((t.verdict, t.text, t.value, ">=" if t.higher_is_better else "<=",
                            t.limit) for t in result["targets"]), text_width=66, digits=2)
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> dict[str, Any]:
    redis = version_of([shutil.which("redis-server") or "redis-server", "--version"])
    return {
        **run_header(),
        "stack": f"Kubernetes {KUBE_VERSION} testenv + process kubelet (sim pods in-process); "
                 f"Redis {redis}; mirror {'PostgreSQL' if args.mirror else 'off'}",
        "operator": {"global_limit": args.global_limit, "type_limits": args.type_limit,
                     "runner_image": SIM_IMAGE, **operator_extra(args),
                     "other settings": "defaults"},
        "platform_qps": {"controller_manager": args.platform_qps or "default 20",
                         "kubelet": args.kubelet_qps or "default 50"},
        "drain_baseline": "none" if args.no_baseline else baseline_mode(
            0.0, None if args.baseline_at_once else args.global_limit,
            None if args.baseline_at_once else args.type_limit),
        "git": git_state(),
        "work": {"short": SHORT_WORK, "holders": HOLDER_WORK},
        "loadavg_start": loadavg(), "other_stacks_running": concurrent_work(),
    }


async def run_all(args: argparse.Namespace, root: Path, pg: PostgresServer | None,
                  result: dict[str, Any]) -> None:
    cases: list[tuple[str, Callable[[Path], Any]]] = []
    if not args.no_latency:
        cases.append(("latency", lambda r: latency_case(r, pg, args)))
    for size in args.sizes:
        kind = "queued" if size in args.queued else "drain"
        if kind == "queued":
            cases.append((f"queued {size}",
                          lambda r, s=size: queued_case(r, pg, args, s)))
        else:
            cases.append((f"drain {size}", lambda r, s=size: drain_case(r, pg, args, s)))
    for name, run in cases:
        began = time.monotonic()
        print(f"-- {name} (loadavg {loadavg()[0]:.1f})", flush=True)
        try:
            case = await run(root / name.replace(" ", "-"))
        except Exception:
            print(f"   FAILED: {traceback.format_exc()}", flush=True)
            result["failures"].append({"case": name, "error": traceback.format_exc()})
            args.keep = True
            continue
        case["seconds"] = time.monotonic() - began
        kind, _, size = name.partition(" ")
        if kind == "latency":
            add_ratios(case)
            result["latency"] = case
        elif kind == "queued":
            result["queued"][size] = case
        else:
            add_ratios(case)
            result["drain"][size] = case
        print(f"   {name}: {case['seconds']:.0f}s", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000,10000",
                        help="workload sizes, comma-separated (100,1000,5000,10000)")
    parser.add_argument("--queued", default="10000",
                        help="which sizes are measured while waiting instead of drained")
    parser.add_argument("--global-limit", type=int, default=200)
    parser.add_argument("--type-limit", type=int, default=40, help="each of the five types")
    parser.add_argument("--profile-size", type=int, default=5000,
                        help="py-spy the operator during this drain size (0: never)")
    parser.add_argument("--api-qps", type=float, default=0,
                        help="operator api_qps (default: the operator's own default)")
    parser.add_argument("--api-burst", type=int, default=0,
                        help="operator api_burst (default: the operator's own default)")
    parser.add_argument("--workers", type=int, default=0,
                        help="operator workers (default: the operator's own default)")
    parser.add_argument("--platform-qps", type=int, default=300,
                        help="client QPS of the controller-manager (default 300; "
                             "0: the harness default, 20)")
    parser.add_argument("--kubelet-qps", type=int, default=100,
                        help="client QPS of the process kubelet (default 100; "
                             "0: the harness default, 50)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="drain cases without the plain-Job baseline")
    parser.add_argument("--baseline-at-once", action="store_true",
                        help="create the drain baseline's plain Jobs all at once (the old "
                             "baseline) instead of through the client-side queue that keeps "
                             "at most --global-limit / --type-limit unfinished")
    parser.add_argument("--no-latency", action="store_true",
                        help="skip the free-capacity latency workload")
    parser.add_argument("--mirror", action="store_true",
                        help="run the operator with the PostgreSQL mirror")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.queued = {int(s) for s in args.queued.split(",") if s}
    return args


def main() -> int:
    args = parse_args()
    result: dict[str, Any] = {**header(args), "latency": None, "drain": {}, "queued": {},
                              "failures": []}
    print(json.dumps({k: result[k] for k in ("command", "stack", "operator", "platform_qps",
                                              "work", "loadavg_start",
                                              "other_stacks_running")}), flush=True)
    root = Path(tempfile.mkdtemp(prefix="sync-scale-"))
    pg: PostgresServer | None = None
    began = time.monotonic()
    try:
        if args.mirror:
            pg = PostgresServer(root / "postgres")
            pg.start()
        asyncio.run(run_all(args, root, pg, result))
    finally:
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    close(result, began)
    result["targets"] = [{"text": t.text, "value": t.value, "limit": t.limit,
                          "verdict": t.verdict} for t in targets(result)]
    path = write_result(result, "scale", latest=True)
    print_report(result, render({**result, "targets": targets(result)}),
                 f"{path} and {RESULTS / 'scale-latest.json'}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
