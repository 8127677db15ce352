"""Console benchmark: first paint with 1,000 SyncJobs, runner progress -> browser
latency, and 100 live streams at once, on the real local stack.

One stack for the whole run: LocalCluster (etcd, kube-apiserver, controller-manager,
the process kubelet, whose `sync-sim` pods run the real runner as asyncio tasks), Redis,
the CRDs and policies, namespace `bench`, the operator as a real process
(`runner_image=local/sync-sim:dev`, global limit 200, 40 per type but `audio` 1), and
the console as a process of its own (`python -m sync_operator.console`, under a
ServiceAccount with testkit.console.CONSOLE_RULES), so its CPU and RSS are its own
and the benchmark's event loop (watches, Redis, 100 stream readers) is not the
console's. The user is alice (static token; edit rights on SyncJobs in `bench`).

1. First paint. One `audio` job holds the only audio slot (an hour of work) and 1,000
   `audio` SyncJobs are created behind it (50 requests in flight): they stay `Queued`
   with a real status. A headless Chromium (testkit.browser) logs in once with the
   login form; then each of --paint-runs navigations to `/?namespace=bench` is timed
   by a script injected before any page script (CDP
   `Page.addScriptToEvaluateOnNewDocument`): a MutationObserver records
   `performance.now()` (milliseconds since navigation start, the Navigation Timing
   origin) when `#jobs tbody` first holds all 1,001 rows ("in the DOM"), and again in a
   task queued from the next `requestAnimationFrame` callback, which runs once that
   frame's style, layout and paint are done ("painted": the figure the target is on).
   The same script wraps `EventSource` to time the stream's open and its `snapshot`
   event, and keeps the Long Animation Frame entries (how much of each frame over 50 ms
   was style, layout and paint); the Navigation and Resource Timing entries give the
   HTML, console.js, /whoami and /access. Also
   timed from Python (aiohttp, alice's bearer token): GET
   /api/v1/namespaces/bench/syncjobs (size, time), the SSE snapshot, and the baseline:
   the API server's own LIST of the same SyncJobs.
2. Progress -> browser. With the page still open, --progress-jobs demo jobs run
   (free capacity). Each runner's report carries `heartbeat_at` (time.time() when it
   publishes to Redis, syncjob:{uid}:events); the benchmark subscribes and keeps the
   first publish of each `done` value. It watches the SyncJobs itself (the baseline: a
   raw watch on the API server, the floor any console can reach) and keeps when each
   `status.progress.done` first showed while Running. In the page, the injected
   script keeps the Date.now() at which each done value first arrived in a `changes`
   event, first stood in the row's `td.progress[data-done]` (MutationObserver, i.e.
   after the console's render) and was painted (as above). Same machine, same clock.
   Per value that reached the page: runner publish -> painted (total), publish -> API
   watch (the operator's relay, one write per job per second at most), watch -> SSE
   arrival (the console's watch, its 250 ms batch), arrival -> DOM (render), DOM ->
   painted (style, layout, paint).
3. 100 streams. The browser is closed; --load-jobs jobs progress. The console's CPU
   (utime+stime from /proc/<pid>/stat) and RSS are measured over a window with no
   client (the baseline: its own watch only), then --clients aiohttp clients each log
   in (POST /api/v1/session, cookie) and hold GET .../watch/syncjobs, and the same is
   measured over --window seconds; per client and per done value, the delivery latency
   from the runner's publish and from the raw watch.

    .venv/bin/python benchmarks/console.py [--jobs 1000] [--clients 100]

Prints a table and writes benchmarks/results/console-<UTC date-time>.json. Targets
are printed as PASS / MISS, never asserted; the exit code is 1 only if a part failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import ssl
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from control_plane import (
    JOB_TYPES,
    concurrent_work,
    memory_mib,
    percentile,
    version_of,
    wait_until_leading,
)
from report import (
    RESULTS,
    Row,
    close,
    dig,
    git_state,
    loadavg,
    print_report,
    run_header,
    table,
    target_lines,
    write_result,
)
from report import fmt as fmt_digits
from scale import cpu_seconds

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import NAMESPACES
from sync_runner.contract import EVENTS_PATTERN, Keys, RunnerStatus
from testkit.browser import chromium, log_in, until
from testkit.build import KUBE_VERSION
from testkit.cluster import LocalCluster
from testkit.console import CONSOLE_ACCOUNT, ConsoleProcess, install_console_account
from testkit.operator import OperatorProcess
from testkit.policies import install_policies
from testkit.ports import free_port
from testkit.servers import RedisServer
from testkit.syncjobs import grant_users, install_crds, syncjob

STATIC = RESULTS.parent.parent / "operator" / "sync_operator" / "console" / "static"
NAMESPACE = "bench"
USER = "alice"
SIM_IMAGE = "local/sync-sim:dev"
QUEUE_TYPE = "audio"  # its limit is 1: the holder runs, the 1,000 wait
HOLDER = "holder"
HOLDER_WORK = {"task": "demo", "items": 3600, "unitSeconds": 1.0}
QUEUED_WORK = {"task": "demo", "items": 1, "unitSeconds": 0.1}
PROGRESS_WORK = {"task": "demo", "items": 400, "unitSeconds": 0.1}  # 40 s, a report per 0.2 s
LOAD_WORK = {"task": "demo", "items": 100_000, "unitSeconds": 0.1}  # outlives the run
RUN_TYPES = [t for t in JOB_TYPES if t != QUEUE_TYPE]
CREATE_CONCURRENCY = 50
IDLE_WINDOW_SECONDS = 20.0

TARGET_PAINT_SECONDS = 1.0
TARGET_PROGRESS_P95_SECONDS = 0.5

# Injected before any page script: times the first paint and every progress value.
PAGE_SCRIPT = """
(() => {
  const b = window.__bench = {rowsAt: null, frameAt: null, streamAt: null, openAt: null,
    snapshotAt: null, snapshotBytes: null, arrived: {}, shown: {}, painted: {}};
  const WANT = %(want)d, TRACK = new Set(%(track)s);
  // After the next frame's rendering (style, layout, paint): a task queued from a
  // requestAnimationFrame callback runs once that frame is done.
  const afterFrame = (then) => requestAnimationFrame(() => setTimeout(then, 0));
  // Long animation frames (> 50 ms): how much of each was style, layout and paint.
  b.frames = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const end = e.startTime + e.duration;
        b.frames.push({start: e.startTime, duration: e.duration,
                       rendering: e.renderStart ? end - e.renderStart : 0,
                       layout: e.styleAndLayoutStart ? end - e.styleAndLayoutStart : 0});
      }
    }).observe({type: "long-animation-frame", buffered: true});
  } catch (err) { b.frames = null; }
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      b.streamAt = performance.now();
      this.addEventListener("open", () => { b.openAt = performance.now(); });
      this.addEventListener("snapshot", (e) => {
        if (b.snapshotAt !== null) return;
        b.snapshotAt = performance.now();
        b.snapshotBytes = e.data.length;
      });
      this.addEventListener("changes", (e) => {
        const now = Date.now();
        for (const c of JSON.parse(e.data).changes) {
          const name = c.job.metadata.name, st = c.job.status || {}, p = st.progress || {};
          if (!TRACK.has(name) || st.phase !== "Running" || p.done == null) continue;
          const seen = b.arrived[name] || (b.arrived[name] = {});
          if (!(p.done in seen)) seen[p.done] = now;
        }
      });
    }
  };
  const check = () => {
    const body = document.querySelector("#jobs tbody");
    if (!body) return;
    if (b.rowsAt === null && body.rows.length >= WANT) {
      b.rowsAt = performance.now();
      afterFrame(() => { b.frameAt = performance.now(); });
    }
    const now = Date.now(), fresh = [];
    for (const name of TRACK) {
      const row = body.querySelector(`tr[data-name="${name}"]`);
      if (!row || row.dataset.phase !== "Running") continue;
      const done = row.querySelector("td.progress").dataset.done;
      if (done === "") continue;
      const seen = b.shown[name] || (b.shown[name] = {});
      if (!(done in seen)) { seen[done] = now; fresh.push([name, done]); }
    }
    if (fresh.length) afterFrame(() => {
      const t = Date.now();
      for (const [name, done] of fresh) (b.painted[name] || (b.painted[name] = {}))[done] = t;
    });
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true});
})();
"""

NAV_SCRIPT = """
const nav = performance.getEntriesByType("navigation")[0];
const res = performance.getEntriesByType("resource").map(
  (e) => ({name: e.name, start: e.startTime, end: e.responseEnd, bytes: e.transferSize}));
const b = window.__bench;
return {bench: Object.assign({}, b, {arrived: null, shown: null, painted: null,
                                     frames: null}), frames: b.frames || [],
        nav: {responseEnd: nav.responseEnd, domContentLoaded: nav.domContentLoadedEventEnd,
              load: nav.loadEventEnd}, resources: res};
"""


def static_digest() -> dict[str, str]:
    """The UI measured: the console serves its static files from the working tree."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
            for p in sorted(STATIC.iterdir()) if p.is_file()}


# -- numbers ------------------------------------------------------------------------------


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(ordered), "p50": percentile(ordered, 0.5),
            "p95": percentile(ordered, 0.95), "max": ordered[-1], "min": ordered[0]}


def fmt(value: Any, digits: int = 3) -> str:
    return fmt_digits(value, digits)


# -- what the benchmark sees itself: Redis reports and a raw watch -------------------------


@dataclass
class Observed:
    """Wall-clock (time.time()) firsts: each done value published, each shown in status."""

    names: dict[str, str] = field(default_factory=dict)  # uid -> name
    published: dict[str, dict[int, float]] = field(default_factory=dict)  # name -> done -> t
    watched: dict[str, dict[int, float]] = field(default_factory=dict)  # name -> done -> t
    phases: dict[str, str] = field(default_factory=dict)
    watch_events: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, uid: str, done: int, at: float) -> None:
        name = self.names.get(uid)
        if name is not None:
            self.published.setdefault(name, {}).setdefault(done, at)

    def saw(self, obj: dict[str, Any], at: float) -> None:
        self.watch_events += 1
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        phase = status.get("phase")
        if phase:
            self.phases[name] = phase
        done = (status.get("progress") or {}).get("done")
        if phase == "Running" and done is not None:
            self.watched.setdefault(name, {}).setdefault(int(done), at)
        self.changed.set()

    async def until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


async def follow_syncjobs(kube: KubeClient, seen: Observed) -> None:
    listed = await kube.list(SYNCJOBS, NAMESPACE)
    version = str(listed["metadata"]["resourceVersion"])
    while True:
        async for kind, obj in kube.watch(SYNCJOBS, NAMESPACE, resource_version=version):
            at = time.time()
            if kind == "ERROR":
                raise RuntimeError(f"SyncJob watch failed: {obj}")
            version = str(obj["metadata"]["resourceVersion"])
            if kind in ("ADDED", "MODIFIED"):
                seen.saw(dict(obj), at)


async def follow_reports(url: str, seen: Observed) -> None:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(EVENTS_PATTERN)
    try:
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            status = RunnerStatus.model_validate_json(message["data"])
            channel = message["channel"]
            uid = Keys.uid_from_channel(channel.decode() if isinstance(channel, bytes)
                                        else channel)
            seen.publish(uid, status.progress.done, status.heartbeat_at)
    finally:
        await pubsub.aclose()
        await client.aclose()


# -- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    root: Path
    cluster: LocalCluster
    redis: RedisServer
    kube: KubeClient
    console: ConsoleProcess
    operator: OperatorProcess
    seen: Observed
    token: str


@contextlib.asynccontextmanager
async def local_stack(root: Path, args: argparse.Namespace) -> AsyncIterator[Stack]:
    cluster = LocalCluster(root / "cluster")
    redis = RedisServer(root / "redis")
    operator: OperatorProcess | None = None
    console: ConsoleProcess | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(redis.start)
        async with KubeClient(load_connection(cluster.admin_kubeconfig), qps=10_000,
                              burst=10_000) as kube:
            await install_crds(kube)
            await install_policies(kube)
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NAMESPACE}})
            await grant_users(kube, NAMESPACE)
            await install_console_account(kube, NAMESPACE)
            seen = Observed()
            tasks = [asyncio.create_task(follow_syncjobs(kube, seen), name="watch"),
                     asyncio.create_task(follow_reports(redis.url, seen), name="redis")]
            metrics = free_port()
            limits = {t: (1 if t == QUEUE_TYPE else 40) for t in JOB_TYPES}
            operator = OperatorProcess(cluster.admin_kubeconfig, root / "operator.log", {
                "namespace": NAMESPACE, "lease_namespace": NAMESPACE,
                "redis_url": redis.url, "runner_image": SIM_IMAGE,
                "metrics_port": str(metrics), "health_port": str(free_port()),
                "global_limit": "200", "type_limits": json.dumps(limits)})
            operator.start()
            await wait_until_leading(operator, metrics, time.monotonic() + 90)
            kubeconfig = await asyncio.to_thread(cluster.service_account_kubeconfig,
                                                 NAMESPACE, CONSOLE_ACCOUNT)
            console = ConsoleProcess(kubeconfig, root / "console.log", {
                "batch_seconds": str(args.batch_seconds)} if args.batch_seconds else {})
            console.start()
            await asyncio.to_thread(console.wait_ready)
            yield Stack(root, cluster, redis, kube, console, operator, seen,
                        cluster.tokens[USER])
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if console is not None:
            await asyncio.to_thread(console.stop)
        if operator is not None:
            await asyncio.to_thread(operator.stop)
        await asyncio.to_thread(redis.stop)
        await asyncio.to_thread(cluster.stop)


async def create_many(kube: KubeClient, bodies: list[dict[str, Any]],
                      seen: Observed) -> float:
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)
    began = time.monotonic()

    async def one(body: dict[str, Any]) -> None:
        async with gate:
            made = await kube.create(SYNCJOBS, body, NAMESPACE)
            seen.names[made["metadata"]["uid"]] = made["metadata"]["name"]

    await asyncio.gather(*(one(b) for b in bodies))
    return time.monotonic() - began


# -- 1. first paint -----------------------------------------------------------------------


async def timed_get(session: aiohttp.ClientSession, url: str, **kwargs: Any
                    ) -> tuple[float, int]:
    began = time.monotonic()
    async with session.get(url, **kwargs) as resp:
        body = await resp.read()
        resp.raise_for_status()
    return time.monotonic() - began, len(body)


async def sse_snapshot(url: str, token: str) -> tuple[float, int]:
    """Seconds from the request to the whole `snapshot` event, and its size."""
    began = time.monotonic()
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"Authorization": f"Bearer {token}"}) as resp:
        resp.raise_for_status()
        buffer = b""
        async for chunk in resp.content.iter_any():
            buffer += chunk
            if b"\n\n" in buffer:
                event = buffer.split(b"\n\n", 1)[0]
                return time.monotonic() - began, len(event)
    raise RuntimeError("the stream ended before its snapshot")


async def api_sizes(stack: Stack, runs: int) -> dict[str, Any]:
    ns_path = f"/api/v1/namespaces/{NAMESPACE}"
    console_times, console_bytes, sse_times, sse_bytes = [], 0, [], 0
    list_times, list_bytes = [], 0
    auth = {"Authorization": f"Bearer {stack.token}"}
    context = ssl.create_default_context(cafile=str(stack.cluster.pki.ca_cert))
    admin = {"Authorization": f"Bearer {stack.cluster.tokens['admin']}"}
    raw = (f"{stack.cluster.server}/apis/{SYNCJOBS.group}/{SYNCJOBS.version}/namespaces/"
           f"{NAMESPACE}/syncjobs")
    async with aiohttp.ClientSession() as http:
        for _ in range(runs):
            seconds, console_bytes = await timed_get(
                http, f"{stack.console.url}{ns_path}/syncjobs", headers=auth)
            console_times.append(seconds)
            seconds, sse_bytes = await sse_snapshot(
                f"{stack.console.url}{ns_path}/watch/syncjobs", stack.token)
            sse_times.append(seconds)
            seconds, list_bytes = await timed_get(http, raw, headers=admin, ssl=context)
            list_times.append(seconds)
    return {"console_get": {"bytes": console_bytes, "seconds": stats(console_times)},
            "console_sse_snapshot": {"bytes": sse_bytes, "seconds": stats(sse_times)},
            "apiserver_list": {"bytes": list_bytes, "seconds": stats(list_times),
                               "note": "baseline: the API server's own LIST (admin, JSON)"}}


def paint_runs(driver: Any, url: str, runs: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(runs):
        driver.get(f"{url}/?namespace={NAMESPACE}")
        until(driver, "all rows painted", lambda d: d.execute_script(
            "return window.__bench && window.__bench.frameAt !== null"), timeout=120)
        page = driver.execute_script(NAV_SCRIPT)
        bench, resources = page["bench"], page["resources"]
        # The long frames' time between the snapshot's arrival and the paint (clipped).
        low, high = bench["snapshotAt"] or 0, bench["frameAt"]

        def within(a: float, b: float, low: float = low, high: float = high) -> float:
            return max(0.0, min(b, high) - max(a, low))

        frames = page["frames"]
        long_ms = sum(within(f["start"], f["start"] + f["duration"]) for f in frames)
        layout_ms = sum(within(f["start"] + f["duration"] - f["layout"],
                               f["start"] + f["duration"]) for f in frames)

        def ended(part: str, resources: list[dict[str, Any]] = resources) -> float | None:
            hits = [r["end"] for r in resources if part in r["name"]]
            return hits[0] / 1000 if hits else None

        out.append({
            "rows_in_dom_seconds": bench["rowsAt"] / 1000,
            "painted_frame_seconds": bench["frameAt"] / 1000,
            "html_seconds": page["nav"]["responseEnd"] / 1000,
            "console_js_seconds": ended("console.js"),
            "whoami_seconds": ended("/whoami"),
            "access_seconds": ended("/access"),
            "dom_content_loaded_seconds": page["nav"]["domContentLoaded"] / 1000,
            "stream_opened_seconds": (bench["openAt"] or 0) / 1000,
            "snapshot_seconds": (bench["snapshotAt"] or 0) / 1000,
            "snapshot_bytes": bench["snapshotBytes"],
            "render_seconds": (bench["rowsAt"] - (bench["snapshotAt"] or 0)) / 1000,
            "dom_to_painted_seconds": (bench["frameAt"] - bench["rowsAt"]) / 1000,
            "long_frames_seconds": long_ms / 1000,
            "long_frames_style_layout_paint_seconds": layout_ms / 1000,
        })
    return out


async def first_paint(stack: Stack, args: argparse.Namespace, driver: Any,
                      track: list[str]) -> dict[str, Any]:
    kube, seen = stack.kube, stack.seen
    holder = await kube.create(SYNCJOBS, syncjob(HOLDER, QUEUE_TYPE, params=HOLDER_WORK),
                               NAMESPACE)
    seen.names[holder["metadata"]["uid"]] = HOLDER
    await seen.until(lambda: seen.phases.get(HOLDER) == "Running", 90, "the holder Running")
    names = [f"q-{i:04d}" for i in range(args.jobs)]
    created = await create_many(kube, [syncjob(n, QUEUE_TYPE, params=QUEUED_WORK)
                                       for n in names], seen)
    began = time.monotonic()
    await seen.until(lambda: all(seen.phases.get(n) == "Queued" for n in names),
                     300, f"all {args.jobs} Queued")
    print(f"   {args.jobs} created in {created:.1f}s, all Queued "
          f"{time.monotonic() - began:.1f}s later", flush=True)
    want = args.jobs + 1
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": PAGE_SCRIPT % {"want": want, "track": json.dumps(track)}})
    await asyncio.to_thread(log_in, driver, stack.console.url, NAMESPACE, USER, stack.token)
    runs = await asyncio.to_thread(paint_runs, driver, stack.console.url, args.paint_runs)
    sizes = await api_sizes(stack, args.paint_runs)
    keys = [k for k in runs[0] if k != "snapshot_bytes"]
    return {"jobs": args.jobs, "rows": want, "created_in_seconds": created,
            "runs": runs,
            "summary": {k: stats([r[k] for r in runs if r[k] is not None]) for k in keys},
            "snapshot_bytes": runs[-1]["snapshot_bytes"], **sizes}


# -- 2. progress -> browser ----------------------------------------------------------------


def breakdown(seen: Observed, names: list[str], page: dict[str, dict[str, dict[str, float]]]
              ) -> dict[str, Any]:
    """Per done value in the page: publish -> painted (total) and its parts."""
    parts: dict[str, list[float]] = {k: [] for k in (
        "total", "dom", "relay", "console", "wire", "render", "frame")}
    counts = {"published": 0, "in_status": 0, "in_page": 0, "unmatched": 0}
    for name in names:
        published = seen.published.get(name, {})
        watched = seen.watched.get(name, {})
        counts["published"] += len([d for d in published if d > 0])
        counts["in_status"] += len([d for d in watched if d > 0])
        arrived = page["arrived"].get(name) or {}
        painted = page["painted"].get(name) or {}
        for key, dom_ms in (page["shown"].get(name) or {}).items():
            done = int(key)
            if done <= 0:
                continue
            pub, watch, frame_ms = published.get(done), watched.get(done), painted.get(key)
            if pub is None or watch is None or frame_ms is None:
                counts["unmatched"] += 1
                continue
            counts["in_page"] += 1
            dom, frame = dom_ms / 1000, frame_ms / 1000
            parts["total"].append(frame - pub)
            parts["dom"].append(dom - pub)
            parts["relay"].append(watch - pub)
            parts["console"].append(frame - watch)
            parts["frame"].append(frame - dom)
            if key in arrived:
                parts["wire"].append(arrived[key] / 1000 - watch)
                parts["render"].append(dom - arrived[key] / 1000)
    return {"counts": counts,
            "publish_to_painted": stats(parts["total"]),
            "publish_to_dom": stats(parts["dom"]),
            "publish_to_apiserver_watch": stats(parts["relay"]),
            "apiserver_watch_to_painted": stats(parts["console"]),
            "apiserver_watch_to_sse_arrival": stats(parts["wire"]),
            "sse_arrival_to_dom": stats(parts["render"]),
            "dom_to_painted": stats(parts["frame"])}


async def progress(stack: Stack, args: argparse.Namespace, driver: Any,
                   names: list[str]) -> dict[str, Any]:
    seen = stack.seen
    page_began = await asyncio.to_thread(driver.execute_script, "return performance.now()")
    await create_many(stack.kube, [syncjob(n, RUN_TYPES[i % len(RUN_TYPES)],
                                           params=PROGRESS_WORK)
                                   for i, n in enumerate(names)], seen)
    began = time.monotonic()
    await seen.until(lambda: all(seen.phases.get(n) in ("Succeeded", "Failed")
                                 for n in names), 300, "the progress jobs finished")
    failed = [n for n in names if seen.phases.get(n) != "Succeeded"]
    if failed:
        raise RuntimeError(f"progress jobs did not succeed: {failed}")
    page = await asyncio.to_thread(driver.execute_script,
                                   "return {arrived: window.__bench.arrived, "
                                   "shown: window.__bench.shown, painted: window.__bench.painted,"
                                   "frames: window.__bench.frames || [], "
                                   "now: performance.now()}")
    result = breakdown(seen, names, page)
    frames = [f for f in page["frames"] if f["start"] >= page_began]
    span = (page["now"] - page_began) / 1000
    result["long_frames"] = {
        "per_second": len(frames) / span, "busy_fraction": sum(
            f["duration"] for f in frames) / 1000 / span,
        "duration_seconds": stats([f["duration"] / 1000 for f in frames]),
        "style_layout_paint_seconds": stats([f["layout"] / 1000 for f in frames])}
    result.update({"jobs": len(names), "work": PROGRESS_WORK,
                   "seconds": time.monotonic() - began,
                   "rows_in_page": args.jobs + 1 + len(names)})
    return result


# -- 3. many streams -----------------------------------------------------------------------


@dataclass
class Client:
    index: int
    names: set[str]
    connected_in: float | None = None
    received: dict[tuple[str, int], float] = field(default_factory=dict)
    messages: int = 0
    bytes: int = 0
    error: str | None = None


async def run_client(client: Client, url: str, token: str, ready: asyncio.Event) -> None:
    began = time.monotonic()
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    try:
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=30)) as http:
            async with http.post(f"{url}/api/v1/session", json={"token": token}) as resp:
                resp.raise_for_status()
            async with http.get(
                    f"{url}/api/v1/namespaces/{NAMESPACE}/watch/syncjobs") as resp:
                resp.raise_for_status()
                buffer = b""
                async for chunk in resp.content.iter_any():
                    at = time.time()
                    client.bytes += len(chunk)
                    buffer += chunk
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        client.messages += 1
                        handle(client, event, at, began, ready)
    except asyncio.CancelledError:
        raise
    except Exception as err:  # recorded, shown in the results
        client.error = repr(err)


def handle(client: Client, event: bytes, at: float, began: float,
           ready: asyncio.Event) -> None:
    kind, data = b"", b""
    for line in event.split(b"\n"):
        if line.startswith(b"event: "):
            kind = line[7:]
        elif line.startswith(b"data: "):
            data = line[6:]
    if kind == b"snapshot" and client.connected_in is None:
        client.connected_in = time.monotonic() - began
        ready.set()
    elif kind == b"changes":
        for change in json.loads(data)["changes"]:
            job = change["job"]
            name = job["metadata"]["name"]
            status = job.get("status") or {}
            done = (status.get("progress") or {}).get("done")
            if name in client.names and status.get("phase") == "Running" and done is not None:
                client.received.setdefault((name, int(done)), at)


class ProcessMeter:
    """CPU (cores) and RSS of a process over a window, RSS sampled once a second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.began, self.cpu = time.monotonic(), cpu_seconds(self.pid)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self.rss.append(memory_mib(self.pid)[0])
            await asyncio.sleep(1.0)

    async def stop(self) -> dict[str, Any]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        seconds = time.monotonic() - self.began
        rss, hwm = memory_mib(self.pid)
        return {"seconds": seconds,
                "cpu_cores": (cpu_seconds(self.pid) - self.cpu) / seconds,
                "rss_mib_mean": sum(self.rss) / max(1, len(self.rss)),
                "rss_mib_end": rss, "rss_mib_peak_ever": hwm}


def deliveries(seen: Observed, clients: list[Client], names: list[str], since: float,
               until_t: float) -> dict[str, Any]:
    """Per client, each done value the raw watch saw in the window (Running)."""
    from_publish, from_watch, per_client_p95 = [], [], []
    expected = missed = 0
    for client in clients:
        mine = []
        for name in names:
            published = seen.published.get(name, {})
            for done, watch in seen.watched.get(name, {}).items():
                if not since <= watch <= until_t or done <= 0:
                    continue
                expected += 1
                got = client.received.get((name, done))
                if got is None:
                    missed += 1
                    continue
                from_watch.append(got - watch)
                if done in published:
                    mine.append(got - published[done])
        from_publish.extend(mine)
        if mine:
            per_client_p95.append(percentile(sorted(mine), 0.95))
    return {"expected": expected, "missed": missed,
            "publish_to_client": stats(from_publish),
            "apiserver_watch_to_client": stats(from_watch),
            "per_client_p95_publish_to_client": stats(per_client_p95)}


async def streams(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    seen = stack.seen
    names = [f"load-{i:02d}" for i in range(args.load_jobs)]
    await create_many(stack.kube, [syncjob(n, RUN_TYPES[i % len(RUN_TYPES)],
                                           params=LOAD_WORK)
                                   for i, n in enumerate(names)], seen)
    await seen.until(lambda: all(seen.watched.get(n) for n in names), 180,
                     "every load job's first progress")
    await asyncio.sleep(3)
    own = ProcessMeter(os.getpid())
    idle = ProcessMeter(stack.console.pid)
    idle.start()
    own.start()
    await asyncio.sleep(IDLE_WINDOW_SECONDS)
    idle_result = await idle.stop()
    own_idle = await own.stop()
    watch_rate = sum(len([t for t in seen.watched.get(n, {}).values()
                          if t >= time.time() - IDLE_WINDOW_SECONDS]) for n in names)

    clients = [Client(i, set(names)) for i in range(args.clients)]
    ready = asyncio.Event()
    connect_began = time.monotonic()
    tasks = [asyncio.create_task(run_client(c, stack.console.url, stack.token, ready))
             for c in clients]
    try:
        deadline = time.monotonic() + 120
        while sum(c.connected_in is not None for c in clients) < len(clients):
            if time.monotonic() > deadline or all(t.done() for t in tasks):
                break
            await asyncio.sleep(0.2)
        all_connected = time.monotonic() - connect_began
        await asyncio.sleep(2)
        loaded = ProcessMeter(stack.console.pid)
        own = ProcessMeter(os.getpid())
        since = time.time()
        loaded.start()
        own.start()
        await asyncio.sleep(args.window)
        until_t = time.time()
        loaded_result = await loaded.stop()
        own_loaded = await own.stop()
        await asyncio.sleep(1.5)  # the last batch of the window reaches every client
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    connected = [c.connected_in for c in clients if c.connected_in is not None]
    return {
        "jobs_progressing": len(names), "work": LOAD_WORK, "clients": args.clients,
        "status_updates_per_second": watch_rate / IDLE_WINDOW_SECONDS,
        "no_clients": {"console": idle_result, "benchmark_process": own_idle},
        "connect": {"connected": len(connected), "all_connected_seconds": all_connected,
                    "session_and_snapshot_seconds": stats(connected),
                    "errors": [c.error for c in clients if c.error][:5]},
        "with_clients": {"console": loaded_result, "benchmark_process": own_loaded,
                         "messages_per_client": stats([float(c.messages) for c in clients]),
                         "bytes_per_client_per_second": (
                             sum(c.bytes for c in clients) / len(clients)
                             / (time.monotonic() - connect_began))},
        "delivery": deliveries(seen, clients, names, since, until_t),
    }


# -- report ----------------------------------------------------------------------------------


ROWS: list[Row] = [
    ("1. first paint, all rows of the namespace (browser, from navigation start)", "", None),
    ("rows in the DOM (all jobs + holder), median", "s", "paint.summary.rows_in_dom_seconds.p50"),
    ("rows in the DOM, max", "s", "paint.summary.rows_in_dom_seconds.max"),
    ("painted (the frame after it is rendered), median", "s",
     "paint.summary.painted_frame_seconds.p50"),
    ("painted, max", "s", "paint.summary.painted_frame_seconds.max"),
    ("  HTML received, median", "s", "paint.summary.html_seconds.p50"),
    ("  console.js received, median", "s", "paint.summary.console_js_seconds.p50"),
    ("  /whoami answered, median", "s", "paint.summary.whoami_seconds.p50"),
    ("  /access answered, median", "s", "paint.summary.access_seconds.p50"),
    ("  stream open, median", "s", "paint.summary.stream_opened_seconds.p50"),
    ("  snapshot event received, median", "s", "paint.summary.snapshot_seconds.p50"),
    ("  snapshot -> rows in the DOM (render), median", "s", "paint.summary.render_seconds.p50"),
    ("  rows in the DOM -> painted, median", "s", "paint.summary.dom_to_painted_seconds.p50"),
    ("  long frames meanwhile: total / style+layout+paint, median", "s", "@paintframes"),
    ("  snapshot event size", "bytes", "paint.snapshot_bytes"),
    ("GET /api/v1/namespaces/bench/syncjobs (console), median", "s",
     "paint.console_get.seconds.p50"),
    ("  its size", "bytes", "paint.console_get.bytes"),
    ("SSE snapshot from Python (request -> whole event), median", "s",
     "paint.console_sse_snapshot.seconds.p50"),
    ("baseline: API server LIST of the same SyncJobs, median", "s",
     "paint.apiserver_list.seconds.p50"),
    ("  its size", "bytes", "paint.apiserver_list.bytes"),
    ("2. runner progress -> browser (per done value that reached the page)", "", None),
    ("values measured (in the page) / in status / published", "", "@counts"),
    ("runner publish -> painted in the page p50", "s", "progress.publish_to_painted.p50"),
    ("runner publish -> painted in the page p95", "s", "progress.publish_to_painted.p95"),
    ("runner publish -> painted in the page max", "s", "progress.publish_to_painted.max"),
    ("  publish -> in the DOM p50 / p95", "s", "@dom"),
    ("  publish -> raw API watch (operator relay) p50 / p95", "s", "@relay"),
    ("  raw API watch -> SSE arrival in page p50 / p95", "s", "@wire"),
    ("  SSE arrival -> DOM (render of all rows) p50 / p95", "s", "@render"),
    ("  DOM -> painted (style, layout, paint of the frame) p50 / p95", "s", "@frame"),
    ("page main thread: long frames (>50 ms) per second / busy fraction", "", "@loaf"),
    ("  a long frame p50 / p95", "s", "@loafd"),
    ("  of it style+layout+paint p50 / p95", "s", "@loafl"),
    ("3. live streams (aiohttp clients, each with a session)", "", None),
    ("jobs progressing / status updates per second", "", "@load"),
    ("console CPU, no client (baseline: its own watch)", "cores",
     "streams.no_clients.console.cpu_cores"),
    ("console RSS, no client", "MiB", "streams.no_clients.console.rss_mib_mean"),
    ("clients connected / connect all (session + snapshot)", "", "@connect"),
    ("console CPU, with the clients", "cores", "streams.with_clients.console.cpu_cores"),
    ("console RSS, with the clients (mean / peak ever)", "MiB", "@rss"),
    ("per-client delivery, runner publish -> client p50", "s",
     "streams.delivery.publish_to_client.p50"),
    ("per-client delivery, runner publish -> client p95", "s",
     "streams.delivery.publish_to_client.p95"),
    ("per-client delivery, runner publish -> client max", "s",
     "streams.delivery.publish_to_client.max"),
    ("  raw API watch -> client p50 / p95 (the console's part)", "s", "@cwatch"),
    ("  values delivered / expected", "", "@delivered"),
    ("  the benchmark's own CPU while reading the streams", "cores",
     "streams.with_clients.benchmark_process.cpu_cores"),
]


def special(result: dict[str, Any], key: str) -> str:
    def pair(path: str) -> str:
        return f"{fmt(dig(result, path + '.p50'))} / {fmt(dig(result, path + '.p95'))}"

    if key == "@counts":
        c = dig(result, "progress.counts") or {}
        return f"{c.get('in_page')} / {c.get('in_status')} / {c.get('published')}"
    if key == "@paintframes":
        return (f"{fmt(dig(result, 'paint.summary.long_frames_seconds.p50'))} / "
                f"{fmt(dig(result, 'paint.summary.long_frames_style_layout_paint_seconds.p50'))}")
    if key == "@loaf":
        return (f"{fmt(dig(result, 'progress.long_frames.per_second'), 2)} / "
                f"{fmt(dig(result, 'progress.long_frames.busy_fraction'), 2)}")
    if key == "@loafd":
        return pair("progress.long_frames.duration_seconds")
    if key == "@loafl":
        return pair("progress.long_frames.style_layout_paint_seconds")
    if key == "@dom":
        return pair("progress.publish_to_dom")
    if key == "@frame":
        return pair("progress.dom_to_painted")
    if key == "@relay":
        return pair("progress.publish_to_apiserver_watch")
    if key == "@wire":
        return pair("progress.apiserver_watch_to_sse_arrival")
    if key == "@render":
        return pair("progress.sse_arrival_to_dom")
    if key == "@cwatch":
        return pair("streams.delivery.apiserver_watch_to_client")
    if key == "@load":
        return (f"{dig(result, 'streams.jobs_progressing')} / "
                f"{fmt(dig(result, 'streams.status_updates_per_second'), 1)}")
    if key == "@connect":
        return (f"{dig(result, 'streams.connect.connected')} / "
                f"{fmt(dig(result, 'streams.connect.all_connected_seconds'), 2)} s")
    if key == "@rss":
        return (f"{fmt(dig(result, 'streams.with_clients.console.rss_mib_mean'), 1)} / "
                f"{fmt(dig(result, 'streams.with_clients.console.rss_mib_peak_ever'), 1)}")
    if key == "@delivered":
        d = dig(result, "streams.delivery") or {}
        if not d:
            return "-"
        return f"{d['expected'] - d['missed']} / {d['expected']}"
    return "?"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for text, path, limit in (
            (f"first paint, {dig(result, 'paint.jobs')} jobs: painted, median",
             "paint.summary.painted_frame_seconds.p50", TARGET_PAINT_SECONDS),
            ("first paint: painted, max over the runs", "paint.summary.painted_frame_seconds.max",
             TARGET_PAINT_SECONDS),
            ("runner progress -> painted in the browser p95", "progress.publish_to_painted.p95",
             TARGET_PROGRESS_P95_SECONDS),
            (f"{dig(result, 'streams.clients')} streams: per-client delivery p95",
             "streams.delivery.publish_to_client.p95", TARGET_PROGRESS_P95_SECONDS)):
        value = dig(result, path)
        verdict = "-" if value is None else ("PASS" if value <= limit else "MISS")
        out.append({"text": text, "value": value, "limit": limit, "verdict": verdict})
    return out


def cell(result: dict[str, Any], path: str) -> str:
    return special(result, path) if path.startswith("@") else fmt(dig(result, path))


def render(result: dict[str, Any]) -> str:
    lines = table(ROWS, {"value": result}, cell, title="", label_width=64, unit_width=6,
                  gap=" ")
    lines += ["", *target_lines(((t["verdict"], t["text"], t["value"], "<=", t["limit"])
                                 for t in result["targets"]), text_width=60, digits=3)]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, root: Path, result: dict[str, Any]) -> None:
    tracked = [f"progress-{i}" for i in range(args.progress_jobs)]
    async with local_stack(root, args) as stack:
        print(f"-- stack up (loadavg {loadavg()[0]:.1f})", flush=True)
        driver = await asyncio.to_thread(chromium)
        try:
            parts: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
                ("paint", lambda: first_paint(stack, args, driver, tracked)),
                ("progress", lambda: progress(stack, args, driver, tracked))]
            for part, call in parts:
                began = time.monotonic()
                print(f"-- {part} (loadavg {loadavg()[0]:.1f})", flush=True)
                try:
                    result[part] = await call()
                except Exception:
                    print(f"   FAILED: {traceback.format_exc()}", flush=True)
                    result["failures"].append({"part": part, "error": traceback.format_exc()})
                    args.keep = True
                print(f"   {part}: {time.monotonic() - began:.0f}s", flush=True)
        finally:
            await asyncio.to_thread(driver.quit)
        began = time.monotonic()
        print(f"-- streams (loadavg {loadavg()[0]:.1f})", flush=True)
        try:
            result["streams"] = await streams(stack, args)
        except Exception:
            print(f"   FAILED: {traceback.format_exc()}", flush=True)
            result["failures"].append({"part": "streams", "error": traceback.format_exc()})
            args.keep = True
        print(f"   streams: {time.monotonic() - began:.0f}s", flush=True)
        result["console_log_problems"] = [
            line for line in stack.console.log().splitlines()
            if "Traceback" in line or " ERROR " in line or " WARNING " in line][:20]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="SyncJobs in the namespace")
    parser.add_argument("--paint-runs", type=int, default=5)
    parser.add_argument("--progress-jobs", type=int, default=5,
                        help="jobs whose progress the browser follows (40 s each)")
    parser.add_argument("--load-jobs", type=int, default=20,
                        help="jobs progressing while the streams are connected")
    parser.add_argument("--clients", type=int, default=100, help="SSE clients")
    parser.add_argument("--window", type=float, default=45.0,
                        help="seconds measured with the clients connected")
    parser.add_argument("--batch-seconds", type=float, default=0,
                        help="the console's batch_seconds (default: its own, 0.25)")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    redis = version_of([shutil.which("redis-server") or "redis-server", "--version"])
    chromium_version = version_of([shutil.which("chromium") or "chromium", "--version"])
    result: dict[str, Any] = {
        **run_header(),
        "stack": f"Kubernetes {KUBE_VERSION} testenv + process kubelet (sim pods); "
                 f"Redis {redis}; {chromium_version} headless; console and operator as "
                 f"processes of their own",
        "settings": {"jobs": args.jobs, "paint_runs": args.paint_runs,
                     "progress_jobs": args.progress_jobs, "load_jobs": args.load_jobs,
                     "clients": args.clients, "window_seconds": args.window,
                     "operator": {"global_limit": 200, "type_limits": f"40, {QUEUE_TYPE} 1",
                                  "runner_image": SIM_IMAGE, "other settings": "defaults"},
                     "console": {"batch_seconds": args.batch_seconds or "default 0.25",
                                 "other settings": "defaults, cookie_secure false"}},
        "git": git_state(), "loadavg_start": loadavg(),
        "other_stacks_running": concurrent_work(), "static_files": static_digest(),
        "paint": None, "progress": None, "streams": None, "failures": []}
    print(json.dumps({k: result[k] for k in ("command", "stack", "settings",
                                              "loadavg_start", "other_stacks_running")}),
          flush=True)
    root = Path(tempfile.mkdtemp(prefix="sync-console-bench-"))
    began = time.monotonic()
    try:
        asyncio.run(run(args, root, result))
    except Exception:
        print(f"FAILED: {traceback.format_exc()}", flush=True)
        result["failures"].append({"part": "stack", "error": traceback.format_exc()})
        args.keep = True
    finally:
        if args.keep:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    close(result, began)
    result["static_files_changed_during_run"] = static_digest() != result["static_files"]
    if result["static_files_changed_during_run"]:
        print("WARNING: the console's static files changed during the run (someone edited "
              "them): the parts measured different UIs", flush=True)
    result["targets"] = targets(result)
    print_report(result, render(result), str(write_result(result, "console")))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
