"""Client discipline: per-key backoff in the work queue, a global budget for progress
writes, a QPS limiter on the API client, and our own writes' echoes recognised."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.config import Connection
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.kube.resources import JOBS
from sync_operator.kube.workqueue import WorkQueue
from sync_operator.syncjob.progress_relay import ProgressRelay


def test_a_failing_key_backs_off_exponentially_up_to_the_cap() -> None:
    queue: WorkQueue[str] = WorkQueue(backoff_base=0.5, backoff_max=4.0)
    assert [queue.backoff("a") for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert queue.backoff("b") == 0.5  # per key


async def test_a_success_resets_the_backoff_and_on_error_none_uses_it() -> None:
    queue: WorkQueue[str] = WorkQueue(backoff_base=0.01, backoff_max=1.0)
    outcomes = iter([False, False, True, False])
    attempts: list[float] = []
    done = asyncio.Event()

    async def work(key: str) -> float | None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 4:
            done.set()
        if not next(outcomes):
            raise RuntimeError("boom")
        queue.add(key)  # succeed, then come back at once for the fourth attempt
        return None

    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: None))
    queue.add("k")
    await asyncio.wait_for(done.wait(), 10)
    worker.cancel()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.01  # the 1st failure waits the base
    assert gaps[1] >= 0.02  # the 2nd, twice that
    # After the success the count starts again: the next failure would wait the base.
    assert queue.backoff("k") == 0.01 * 2  # one failure (the 4th attempt) counted since


async def test_a_failing_key_made_dirty_meanwhile_still_waits_its_backoff() -> None:
    """Events during a failed try (often the try's own writes' echoes) must not turn the
    backoff into a tight loop."""
    queue: WorkQueue[str] = WorkQueue(backoff_base=0.2, backoff_max=1.0)
    attempts: list[float] = []
    done = asyncio.Event()

    async def work(key: str) -> float | None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 3:
            done.set()
            return None
        queue.add(key)  # an event arrives while the key is being worked on
        raise RuntimeError("boom")

    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: None))
    queue.add("k")
    await asyncio.wait_for(done.wait(), 10)
    worker.cancel()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.2, gaps
    assert gaps[1] >= 0.4, gaps


async def test_a_key_made_dirty_during_a_successful_try_runs_again_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    done = asyncio.Event()

    async def work(key: str) -> float | None:
        seen.append(key)
        if len(seen) == 1:
            queue.add(key)
        else:
            done.set()
        return 30.0  # a far requeue, beaten by the dirty mark

    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: None))
    queue.add("k")
    await asyncio.wait_for(done.wait(), 5)
    worker.cancel()
    assert seen == ["k", "k"]


def test_the_progress_budget_stretches_every_jobs_interval_evenly() -> None:
    relay = ProgressRelay(client=None, interval=1.0,  # type: ignore[arg-type]
                          on_state_change=lambda key: None, writes_per_second=50,
                          own_writes=OwnWrites())
    for n in range(10):
        relay.register(f"u{n}", ObjectKey("ns", f"j{n}"), "Running")
    assert relay.effective_interval == 1.0  # 10 jobs at 1/s fit a budget of 50/s
    for n in range(10, 1000):
        relay.register(f"u{n}", ObjectKey("ns", f"j{n}"), "Running")
    assert relay.effective_interval == pytest.approx(20.0)  # 1,000 jobs share 50/s


def test_only_the_exact_version_we_wrote_is_an_echo() -> None:
    own = OwnWrites()
    written = {"metadata": {"uid": "u1", "resourceVersion": "42"}}
    own.record(written)
    assert own.is_echo(written)
    assert not own.is_echo({"metadata": {"uid": "u1", "resourceVersion": "43"}})
    assert not own.is_echo({"metadata": {"uid": "u2", "resourceVersion": "42"}})
    own.forget("u1")
    assert not own.is_echo(written)


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[float]]]:
    """A tiny HTTP server standing in for the API server: it answers GETs of a Job and
    records when each request arrived; /broken answers a plain-text 502."""
    arrivals: list[float] = []

    async def job(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.json_response({"metadata": {"name": request.match_info["name"]}})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=502, text="Bad Gateway")

    app = web.Application()
    app.router.add_get("/apis/batch/v1/namespaces/ns/jobs/{name}", job)
    app.router.add_get("/apis/batch/v1/namespaces/broken/jobs/{name}", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", arrivals
    await runner.cleanup()


async def test_requests_beyond_the_burst_are_paced_at_the_qps(
        api: tuple[str, list[float]]) -> None:
    url, arrivals = api
    async with KubeClient(Connection(server=url), qps=20, burst=2) as client:
        start = time.monotonic()
        await asyncio.gather(*(client.get(JOBS, f"j{n}", "ns") for n in range(8)))
    assert client.requests == 8
    # 2 at once, then 6 more at 20/s: the last cannot arrive before 0.3 s (a lower
    # bound: a slow machine makes it later, never earlier).
    assert max(arrivals) - start >= 0.25


async def test_a_plain_text_error_page_is_an_api_error(api: tuple[str, Any]) -> None:
    url, _ = api
    async with KubeClient(Connection(server=url)) as client:
        with pytest.raises(ApiError) as caught:
            await client.get(JOBS, "x", "broken")
    assert (caught.value.status, caught.value.message) == (502, "Bad Gateway")
