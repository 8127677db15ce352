"""Pure parts of the operator's runtime: the work queue, per-type limits, the ETA."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sync_operator.api.common import JobType
from sync_operator.kube.workqueue import WorkQueue
from sync_operator.syncjob.progress_relay import ETA_MAX_SECONDS, estimate_eta
from sync_operator.syncjob.queue.admitter import type_limits
from testkit.waiting import eventually


async def _stop(worker: asyncio.Task[None]) -> None:
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)


async def _until(predicate: Callable[[], bool], what: str) -> None:
    async def probe() -> bool:
        return predicate()

    await eventually(probe, timeout=5, interval=0.01, what=what)


async def test_a_key_added_many_times_is_worked_on_once_and_again_if_added_meanwhile() -> None:
    queue: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    first_started, release, second_started = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def work(key: str) -> float | None:
        seen.append(key)
        await asyncio.sleep(0)  # yield, so a key worked on in a loop cannot starve the test
        if len(seen) == 1:
            first_started.set()
            await release.wait()
        else:
            second_started.set()
        return None

    for _ in range(5):
        queue.add("a")
    assert len(queue) == 1  # five adds, one queued key
    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: 0.0))
    try:
        await asyncio.wait_for(first_started.wait(), 5)
        assert seen == ["a"]
        assert len(queue) == 0  # the other four adds did not queue it again
        queue.add("a")  # while it is being worked on: once more afterwards ...
        queue.add("a")  # ... however often it is added meanwhile
        assert len(queue) == 0  # not queued beside the running work: one worker per key
        assert not second_started.is_set()
        release.set()
        await asyncio.wait_for(second_started.wait(), 5)
        # Idle means the second work returned and nothing put the key back.
        await _until(lambda: queue.idle, "the queue to go idle after the second work")
        assert seen == ["a", "a"]
        # A key added now is the next one worked on: no third "a" was waiting before it.
        queue.add("sentinel")
        await _until(lambda: len(seen) == 3, "the sentinel to be worked on")
        assert seen == ["a", "a", "sentinel"]
    finally:
        await _stop(worker)


async def test_a_failed_key_comes_back_after_the_error_delay() -> None:
    queue: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    attempts: list[float] = []
    errors: list[tuple[str, BaseException, float]] = []
    retried = asyncio.Event()
    delay = 0.2

    async def work(key: str) -> float | None:
        attempts.append(loop.time())
        if len(attempts) == 1:
            raise RuntimeError("API server hiccup")
        retried.set()
        return None

    def on_error(key: str, err: BaseException) -> float:
        errors.append((key, err, loop.time()))
        return delay

    queue.add("b")
    worker = asyncio.create_task(queue.run_worker(work, on_error))
    try:
        await asyncio.wait_for(retried.wait(), 5)
        await _until(lambda: queue.idle, "the queue to go idle after the retry")
    finally:
        await _stop(worker)
    assert len(attempts) == 2
    [(key, err, failed_at)] = errors
    assert key == "b"
    assert isinstance(err, RuntimeError)
    assert str(err) == "API server hiccup"
    # The retry is timed by the delay on_error returned: never sooner (a lower bound,
    # so a slow machine cannot fail it).
    assert attempts[1] - failed_at >= delay - 0.001


async def test_add_after_keeps_the_earliest_request_for_a_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    arrived: dict[str, asyncio.Event] = {k: asyncio.Event() for k in ("soon", "later", "last")}

    async def work(key: str) -> float | None:
        seen.append(key)
        arrived[key].set()
        return None

    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: 0.0))
    try:
        # A later request does not postpone an earlier one ...
        queue.add_after("soon", 0.0)
        queue.add_after("soon", 3600)
        await asyncio.wait_for(arrived["soon"].wait(), 5)
        assert seen == ["soon"]

        # ... and an earlier request replaces a later one, which then never fires:
        # "last" is due after the replaced request was, and timers fire in order,
        # so a second "later" would be worked on before it.
        queue.add_after("later", 0.2)
        queue.add_after("later", 0.0)
        await asyncio.wait_for(arrived["later"].wait(), 5)
        assert seen == ["soon", "later"]
        queue.add_after("last", 0.4)
        await asyncio.wait_for(arrived["last"].wait(), 5)
        assert seen == ["soon", "later", "last"]
    finally:
        await _stop(worker)


def test_a_schedules_max_concurrency_sets_its_types_limit() -> None:
    defaults = {JobType.QURAN: 1, JobType.PRAYER: 2, JobType.AUDIO: 1}
    schedules = [{"spec": {"jobType": "audio", "maxConcurrency": 3}},
                 {"spec": {"jobType": "audio", "maxConcurrency": 2}},
                 {"spec": {"jobType": "not-a-type", "maxConcurrency": 9}}]
    limits = type_limits(schedules, defaults)
    assert limits == {JobType.QURAN: 1, JobType.PRAYER: 2, JobType.AUDIO: 3}


def test_eta_comes_from_the_rate_of_this_run() -> None:
    assert estimate_eta(None, 10.0, 5, 100) is None
    assert estimate_eta((0.0, 0), 10.0, 0, 100) is None  # no progress yet: no rate
    assert estimate_eta((0.0, 20), 10.0, 40, 100) == 30  # 2 units/s, 60 left
    assert estimate_eta((0.0, 0), 10.0, 10, None) is None  # total unknown
    # A crawl towards a huge total: capped, not a number the schema's int64 refuses.
    assert estimate_eta((0.0, 0), 1e9, 1, 2**62) == ETA_MAX_SECONDS
