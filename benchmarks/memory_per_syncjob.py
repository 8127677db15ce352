"""Memory per SyncJob: the bytes each in-process holder keeps for one SyncJob.

Issue 11: the 5,000 drain peaked at 374 MiB RSS, 110 MiB at 100 jobs, so ~55 KiB per
SyncJob. This builds the operator's own structures (a Runtime, no API server) and
drives kopf's real queueing and processing (its watcher, per-object workers and
handler calls, with our handlers, fed raw events instead of a watch stream) with N
SyncJobs, and counts what each holder keeps with tracemalloc (Python's allocations,
without the allocator's slack; `--rss` measures the process's RSS instead).

The bodies are real: memory_bodies.json holds a Queued, a Running and a Succeeded
SyncJob and a finished batch Job as a local API server returned them (managedFields
included), from a run of the operator with the sim runner. Each of the N copies gets
its own name, uids and resourceVersion and is parsed from its own JSON, as a watch
event or a LIST page is.

    .venv/bin/python benchmarks/memory_per_syncjob.py [--jobs 5000] [--phase succeeded]
    .venv/bin/python benchmarks/memory_per_syncjob.py --rss   # RSS, no tracemalloc

It measures the code it imports, so PYTHONPATH=<an older tree>/operator:... measures
that tree (kopf is then set up as that tree's handlers set it up). Prints bytes per
SyncJob per holder and writes benchmarks/results/memory-per-syncjob-latest.json
(or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import logging
import re
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODIES = json.loads((HERE / "memory_bodies.json").read_text())
RESULTS = HERE / "results"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def copies(template: dict[str, Any], n: int, *, first_version: int = 1000
           ) -> Iterator[dict[str, Any]]:
    """n parsed copies of one body, each with its own uids, name and resourceVersion."""
    text = json.dumps(template)
    meta = template["metadata"]
    name = (meta.get("ownerReferences") or [meta])[0]["name"]  # a Job's is its owner's
    uids = set(UUID.findall(text))
    for i in range(n):
        mine = text.replace(name, f"sj-{i:05d}")
        for uid in uids:
            mine = mine.replace(uid, str(uuid.uuid4()))
        body = json.loads(mine)
        body["metadata"]["resourceVersion"] = str(first_version + i)
        yield body


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def retained(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes that what `build` returns keeps alive (its temporaries gone)."""
    base = traced()
    kept = build()
    return traced() - base, kept


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def runtime() -> Any:
    from sync_operator.app.runtime import Runtime
    from sync_operator.app.settings import OperatorSettings

    return Runtime(OperatorSettings(namespace="bench"), client=object())  # type: ignore[arg-type]


# -- the Runtime's holders ---------------------------------------------------------------


def measure_holders(n: int, phase: str) -> dict[str, float]:
    """What each Runtime holder keeps once its inputs (the events) are gone."""
    from sync_operator.kube.keys import ObjectKey

    rt = runtime()
    rt.own_writes._on_record = lambda _: None  # the store's row counts what it feeds
    out: dict[str, int] = {}
    out["reference: the body as JSON text"], _ = retained(
        lambda: [json.dumps(b) for b in copies(BODIES[phase], n)])
    out["reference: the body parsed (managedFields included)"], _ = retained(
        lambda: list(copies(BODIES[phase], n)))
    del _

    def fed(feed: Callable[[dict[str, Any]], object], template: str = phase) -> None:
        for body in copies(BODIES[template], n):
            feed(body)

    holders: dict[str, Callable[[], None]] = {
        "Runtime.syncjobs (ObjectStore)": lambda: fed(rt.syncjobs.put),
        "Runtime.own_writes (OwnWrites)": lambda: fed(rt.own_writes.record),
        "Runtime.jobs (JobCache)": lambda: fed(rt.jobs.observe),
        "Runtime.job_views (JobObservation per batch Job)":
            lambda: fed(rt.job_views.put, "job"),
        "Runtime.queue (WorkQueue, every key queued)":
            lambda: fed(lambda b: rt.queue.add(ObjectKey.of(b))),
    }
    for name, build in holders.items():
        out[name], _ = retained(build)
    return {k: v / n for k, v in out.items()}


# -- the Runtime's full LIST (relist_seconds, and every new leader) ----------------------


def fake_api(n: int, phase: str) -> Any:
    """A KubeClient whose requests are answered with pages of fresh JSON, as the API
    server sends them: n SyncJobs, no SyncSchedules, n batch Jobs."""
    from sync_operator.kube.client import KubeClient

    lists = {"syncjobs": [json.dumps(b) for b in copies(BODIES[phase], n)],
             "syncschedules": [], "jobs": [json.dumps(j) for j in copies(BODIES["job"], n)]}

    async def request(method: str, path: str, *, params: dict[str, str] | None = None,
                      **_: Any) -> dict[str, Any]:
        params = params or {}
        items = lists[path.rsplit("/", 1)[-1]]
        start = int(params.get("continue") or 0)
        size = int(params.get("limit") or len(items) or 1)
        meta = {"resourceVersion": "999999"}
        if start + size < len(items):
            meta["continue"] = str(start + size)
        head = json.dumps({"apiVersion": "v1", "kind": "List", "metadata": meta})
        text = f'{head[:-1]},"items":[{",".join(items[start:start + size])}]}}'
        return dict(json.loads(text))

    client = KubeClient.__new__(KubeClient)
    client.request = request  # type: ignore[method-assign,assignment]
    return client


def measure_relist(n: int, phase: str) -> dict[str, float]:
    """The peak of Runtime._list_all over the stores it refreshes (already full)."""
    rt = runtime()
    rt.client = fake_api(n, phase)

    async def relist() -> None:
        await rt._list_all()  # as Runtime.relist: what it returns is dropped

    steady, _ = retained(lambda: asyncio.run(relist()))  # fills the stores
    base = traced()
    tracemalloc.reset_peak()
    asyncio.run(relist())
    peak = tracemalloc.get_traced_memory()[1] - base
    return {"Runtime after a LIST (every store and cache, SyncJob and its Job)": steady / n,
            "transient: Runtime._list_all, peak above that": peak / n}


# -- kopf ---------------------------------------------------------------------------------


class Kopf:
    """kopf's watcher for SyncJobs with our handlers and settings, fed from a queue."""

    def __init__(self, idle_timeout: float | None) -> None:
        import kopf
        from kopf._cogs.clients import watching
        from kopf._cogs.structs import ephemera, references
        from kopf._core.actions import lifecycles
        from kopf._core.engines import indexing
        from kopf._core.intents import registries
        from kopf._core.reactor import inventory, processing

        import sync_operator.app.handlers as handlers
        from sync_operator.api.common import GROUP, VERSION

        self.settings = kopf.OperatorSettings()
        if hasattr(handlers, "configure"):
            handlers.configure(self.settings)
        else:  # an older tree: what its start() set
            self.settings.peering.standalone = True
            self.settings.posting.level = logging.WARNING
            logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        if idle_timeout is not None:
            self.settings.queueing.idle_timeout = idle_timeout
        self.memories = getattr(handlers, "EventOnlyMemories", inventory.ResourceMemories)()
        self.runtime = runtime()
        self.resource = references.Resource(GROUP, VERSION, "syncjobs", kind="SyncJob",
                                            singular="syncjob", namespaced=True)
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.processor = functools.partial(
            processing.process_resource_event, lifecycle=lifecycles.all_at_once,
            registry=registries.get_default_registry(), settings=self.settings,
            indexers=indexing.OperatorIndexers(), memories=self.memories,
            memobase=ephemera.AnyMemo(kopf.Memo(runtime=self.runtime)),
            event_queue=asyncio.Queue(), resource=self.resource)
        self._watching = watching

    async def __aenter__(self) -> Kopf:
        from kopf._core.reactor import queueing

        async def stream(**_: Any) -> AsyncIterator[Any]:
            yield self._watching.Bookmark.LISTED
            while (event := await self.events.get()) is not None:
                yield event

        self._infinite_watch = self._watching.infinite_watch
        self._watching.infinite_watch = stream
        self._task = asyncio.create_task(queueing.watcher(
            namespace=None, settings=self.settings, resource=self.resource,
            processor=self.processor))
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.events.put_nowait(None)
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self._watching.infinite_watch = self._infinite_watch

    @property
    def workers(self) -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("worker for"))

    def handled(self) -> int:
        return self.runtime.queue._queue.qsize()  # type: ignore[no-any-return]

    async def until(self, check: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError("not reached")
            await asyncio.sleep(0.02)

    async def exited(self) -> float:
        """Seconds until every worker exited."""
        started = time.monotonic()
        await self.until(lambda: self.workers == 0, self.settings.queueing.idle_timeout + 60)
        return time.monotonic() - started


def events(n: int, phase: str) -> Iterator[dict[str, Any]]:
    """Raw MODIFIED events, each parsed from its own JSON as it is fed."""
    for body in copies(BODIES[phase], n):
        yield json.loads(json.dumps({"type": "MODIFIED", "object": body}))


async def measure_kopf(n: int, phase: str) -> dict[str, float]:
    """All n objects' events at once, their workers kept alive: what kopf holds per
    live worker (it holds the object's last event too), and once the workers are gone
    (its ResourceMemories, kept until an object is deleted)."""
    out: dict[str, float] = {}
    async with Kopf(idle_timeout=3600) as k:
        base = traced()
        for event in events(n, phase):
            k.events.put_nowait(event)
        await k.until(lambda: k.handled() >= n)
        await asyncio.sleep(0.2)  # the last handlers return
        alive, live = traced() - base, k.workers
        k.events.put_nowait(None)  # the stream ends: kopf tells every worker to exit
        await asyncio.wait([k._task], timeout=30)
        after = traced() - base
        before = traced()
        remembered = len(list(k.memories.iter_all_memories()))
        k.memories._items.clear()
        memories = before - traced()
        out["kopf: a live worker (task, queue, the event it holds)"] = (alive - after) / live
        out["kopf: ResourceMemories (until the object is deleted)"] = memories / n
        out["kopf + Runtime, every worker alive"] = alive / n
        out["kopf + Runtime, the workers exited"] = after / n
        out["(count) objects kopf remembers after the workers exited"] = remembered
    return out


async def measure_kopf_rate(rate: float, seconds: float, phase: str,
                            idle_timeout: float | None) -> dict[str, float]:
    """Events of new objects at `rate` per second: how many workers live at once."""
    n = int(rate * seconds)
    async with Kopf(idle_timeout) as k:
        started, most = time.monotonic(), 0
        for i, event in enumerate(events(n, phase)):
            k.events.put_nowait(event)
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
            most = max(most, k.workers)
        await k.until(lambda: k.handled() >= n)
        await k.exited()
    return {f"(count) workers alive at once, new objects at {rate:g}/s": most}


# -- RSS ----------------------------------------------------------------------------------


async def measure_rss(n: int, phase: str, rate: float, idle_timeout: float | None
                      ) -> dict[str, float]:
    """The process's RSS (no tracemalloc): n objects' events through kopf at `rate`,
    then two full LISTs, as a drain's operator sees them."""
    out: dict[str, float] = {}
    async with Kopf(idle_timeout) as k:
        k.runtime.client = fake_api(n, phase)
        gc.collect()
        start = rss_kib()
        started = time.monotonic()
        for i, event in enumerate(events(n, phase)):
            k.events.put_nowait(event)
            if i % 50 == 49:
                await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        await k.until(lambda: k.handled() >= n)
        feed_peak = rss_kib("VmHWM")
        await k.exited()
        gc.collect()
        steady = rss_kib()
        await k.runtime._list_all()  # fills the Jobs' views too
        await k.runtime._list_all()
        gc.collect()
        out[f"RSS peak while fed at {rate:g}/s, per job"] = (feed_peak - start) * 1024 / n
        out["RSS after the workers exited, per job"] = (steady - start) * 1024 / n
        out["RSS after two LISTs, per job"] = (rss_kib() - start) * 1024 / n
        out["RSS peak over it all, per job"] = (rss_kib("VmHWM") - start) * 1024 / n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--phase", default="succeeded",
                        choices=["queued", "running", "succeeded"])
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="override kopf's settings.queueing.idle_timeout")
    parser.add_argument("--rate", type=float, default=250.0,
                        help="new objects' events per second (rate and RSS runs)")
    parser.add_argument("--rss", action="store_true", help="measure RSS, not tracemalloc")
    parser.add_argument("--out", type=Path, default=RESULTS / "memory-per-syncjob-latest.json")
    parser.add_argument("--note", default="", help="what code was measured, for the JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, float] = {}
    if args.rss:
        results.update(asyncio.run(measure_rss(args.jobs, args.phase, args.rate,
                                                args.idle_timeout)))
    else:
        tracemalloc.start()
        results.update(measure_holders(args.jobs, args.phase))
        results.update(measure_relist(args.jobs, args.phase))
        results.update(asyncio.run(measure_kopf(args.jobs, args.phase)))
        results.update(asyncio.run(measure_kopf_rate(args.rate, 10.0, args.phase,
                                                     args.idle_timeout)))
    results = {k: round(v) for k, v in results.items()}
    width = max(len(k) for k in results)
    unit = "RSS" if args.rss else "tracemalloc"
    print(f"bytes per SyncJob, {args.jobs} {args.phase} SyncJobs ({unit})")
    for key, value in results.items():
        print(f"  {key:<{width}}  {value:>8}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "jobs": args.jobs,
        "phase": args.phase, "measured_with": unit, "note": args.note,
        "bytes_per_syncjob": results,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
