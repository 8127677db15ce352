"""Pure parts of the operator's runtime: the work queue, per-type limits, the ETA."""

from __future__ import annotations

import asyncio

from sync_operator.api.common import JobType
from sync_operator.kube.workqueue import WorkQueue
from sync_operator.syncjob.progress_relay import estimate_eta
from sync_operator.syncjob.queue.admitter import type_limits


async def test_a_key_added_many_times_is_worked_on_once_and_again_if_added_meanwhile() -> None:
    queue: WorkQueue[str] = WorkQueue()
    seen: list[str] = []
    release = asyncio.Event()

    async def work(key: str) -> float | None:
        seen.append(key)
        if len(seen) == 1:
            await release.wait()
        return None

    for _ in range(5):
        queue.add("a")
    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: 1.0))
    await asyncio.sleep(0.05)
    assert seen == ["a"]  # five adds, one reconcile
    queue.add("a")  # while it is being worked on: once more afterwards
    release.set()
    await asyncio.sleep(0.05)
    assert seen == ["a", "a"]
    assert queue.idle
    worker.cancel()


async def test_a_failed_key_comes_back_after_the_error_delay() -> None:
    queue: WorkQueue[str] = WorkQueue()
    attempts: list[float] = []

    async def work(key: str) -> float | None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise RuntimeError("API server hiccup")
        return None

    queue.add("b")
    worker = asyncio.create_task(queue.run_worker(work, lambda key, err: 0.1))
    await asyncio.sleep(0.3)
    worker.cancel()
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.09


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
