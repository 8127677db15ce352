"""ProgressRelay: Redis runner reports into status.progress at a bounded rate.

The relay runs as a real task against a fake client that records every
status.progress patch. Verdicts are decided by what the fake client saw (awaited
until N writes arrived, with a timeout), never by how long a test slept.

Two times are kept per patch, both on the loop's clock (the relay's
time.monotonic() is what the default loop's time() returns):
- `at`, when the patch reached the fake client;
- `sent_at`, the relay's own stamp for the write (its track's last_write, read
  as the patch arrives), taken in the same step right before it calls patch.
The rate limit is asserted exactly on `sent_at`. Arrival times carry scheduling
jitter (under load the process can be descheduled for tens of milliseconds
between the stamp and the call), so on `at` only a bound that tolerates a
late arrival is asserted.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import ApiError, Resource
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.syncjob.progress_relay import ProgressRelay
from sync_runner.contract import Progress, RunnerState, RunnerStatus

INTERVAL = 0.1
WAIT = 5.0


@dataclass
class Patch:
    at: float
    sent_at: float
    resource: Resource
    name: str
    namespace: str | None
    ops: list[dict[str, Any]]
    subresource: str | None
    patch_type: str

    @property
    def progress(self) -> dict[str, Any]:
        adds = [op for op in self.ops if op["path"] == "/status/progress"]
        assert len(adds) == 1, self.ops
        value: dict[str, Any] = adds[0]["value"]
        return value


@dataclass
class FakeStatusClient:
    """Records every patch call (failed ones too); raises queued errors in order."""

    calls: list[Patch] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    # The relay's stamp for a write to (namespace, name); the harness wires it up.
    stamp: Callable[[str | None, str], float] | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, subresource: str | None = None, patch_type: str = "merge",
                    **_: Any) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        sent_at = now if self.stamp is None else self.stamp(namespace, name)
        self.calls.append(Patch(now, sent_at, res, name, namespace, patch, subresource,
                                patch_type))
        async with self._changed:
            self._changed.notify_all()
        if self.errors:
            raise self.errors.pop(0)
        return {}

    def calls_for(self, name: str) -> list[Patch]:
        return [c for c in self.calls if c.name == name]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Until `predicate` holds, re-checked on every patch call; fails after WAIT."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), WAIT)

    async def wait_calls(self, n: int, name: str | None = None) -> list[Patch]:
        """Until at least n patch calls (for `name`, if given) were seen."""
        def seen() -> list[Patch]:
            return self.calls if name is None else self.calls_for(name)

        await self.wait_until(lambda: len(seen()) >= n)
        return list(seen())


@dataclass
class Harness:
    relay: ProgressRelay
    client: FakeStatusClient
    state_changes: list[ObjectKey]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    client = FakeStatusClient()
    changes: list[ObjectKey] = []
    relay = ProgressRelay(client=client, interval=INTERVAL,  # type: ignore[arg-type]
                          on_state_change=changes.append, own_writes=OwnWrites())

    def stamp(namespace: str | None, name: str) -> float:
        (track,) = (t for t in relay.tracks.values() if t.key == (namespace, name))
        return track.last_write

    client.stamp = stamp
    task = asyncio.create_task(relay.run())
    try:
        yield Harness(relay, client, changes)
    finally:
        crashed = task.done() and not task.cancelled() and task.exception() is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not crashed, f"the relay loop died: {task.exception()!r}"


def report(done: int, total: int | None = 100, *, state: RunnerState = RunnerState.RUNNING,
           at: float | None = None, message: str = "") -> RunnerStatus:
    progress = Progress(done=done, total=total, message=message or f"{done} done",
                        **({} if at is None else {"updated_at": at}))
    return RunnerStatus(state=state, progress=progress)


KEY = ObjectKey("ns-a", "job-a")
OTHER = ObjectKey("ns-b", "job-b")


async def test_a_burst_of_reports_is_one_write_per_interval_and_each_carries_the_latest(
        harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    relay.register("uid-a", KEY, "Running")

    # Reports fed without yielding: the relay cannot write between them.
    for done in range(1, 21):
        await relay.on_status("uid-a", report(done))
    first = await client.wait_calls(1)
    assert [c.progress["done"] for c in first] == [20]  # the last of the burst

    # A second burst right after the write lands inside the interval: it is held,
    # and written when the interval ends although no further report arrives.
    for done in range(21, 41):
        await relay.on_status("uid-a", report(done))
    calls = await client.wait_calls(2)
    assert [c.progress["done"] for c in calls] == [20, 40]
    assert calls[1].sent_at - calls[0].sent_at >= INTERVAL
    assert calls[1].at > calls[0].at
    assert relay.writes == 2


async def test_reports_streaming_faster_than_the_interval_are_written_at_most_once_per_interval(
        harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    relay.register("uid-a", KEY, "Running")
    relay.register("uid-b", OTHER, "Running")
    last = 60

    async def feed() -> None:
        for done in range(1, last + 1):
            await relay.on_status("uid-a", report(done))
            await relay.on_status("uid-b", report(done))
            await asyncio.sleep(INTERVAL / 20)  # pacing only: ~3 intervals of reports

    feeder = asyncio.create_task(feed())
    await asyncio.wait_for(feeder, WAIT)

    def latest_landed(key: ObjectKey) -> bool:
        writes = client.calls_for(key.name)
        return bool(writes) and writes[-1].progress["done"] == last

    await client.wait_until(lambda: latest_landed(KEY) and latest_landed(OTHER))
    for key in (KEY, OTHER):
        writes = client.calls_for(key.name)
        gaps = [b.sent_at - a.sent_at for a, b in itertools.pairwise(writes)]
        assert all(gap >= INTERVAL for gap in gaps), (key, gaps)
        # As the API server saw them: n writes span n - 1 intervals, less only by how
        # late the first one arrived (tolerated here up to two intervals).
        assert writes[-1].at - writes[0].at > (len(writes) - 3) * INTERVAL, key
        assert len(writes) < last  # coalesced, not one write per report
        done_values = [w.progress["done"] for w in writes]
        assert done_values == sorted(done_values)  # never an older value after a newer one
        assert done_values[-1] == last  # the latest value landed


async def test_the_patch_is_a_json_patch_testing_the_registered_phase(harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    relay.register("uid-a", KEY, "Pausing")
    await relay.on_status("uid-a", report(5, 10, message="halfway"))
    (call,) = await client.wait_calls(1)

    assert (call.resource, call.namespace, call.name) == (SYNCJOBS, "ns-a", "job-a")
    assert call.subresource == "status"
    assert call.patch_type == "json"
    assert call.ops[0] == {"op": "test", "path": "/status/phase", "value": "Pausing"}
    assert call.ops[1]["op"] == "add"
    assert call.progress["done"] == 5
    assert call.progress["total"] == 10
    assert call.progress["percent"] == 50
    assert call.progress["message"] == "halfway"
    assert "updatedAt" in call.progress
    assert "etaSeconds" not in call.progress  # one report: no rate yet, so no ETA

    # Registering again (the job moved on to another pod-holding phase) changes the test.
    relay.register("uid-a", KEY, "Running")
    await relay.on_status("uid-a", report(6, 10))
    calls = await client.wait_calls(2)
    assert calls[1].ops[0] == {"op": "test", "path": "/status/phase", "value": "Running"}


async def _let_a_retry_fall_due(after: float) -> None:
    """Let the loop clock pass `after` + one interval, so a retry, if any, is due."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, after + INTERVAL + 0.05 - loop.time()))


async def test_a_422_phase_moved_on_is_not_retried(harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    client.errors.append(ApiError(422, "Invalid", "the test operation failed"))
    relay.register("uid-a", KEY, "Running")
    relay.register("uid-b", OTHER, "Running")
    await relay.on_status("uid-a", report(7))
    (failed,) = await client.wait_calls(1)

    # A retry of job a would be due now. A report of job b is the witness: the relay
    # writes every due job in one pass (a before b), and a dirty a would even wake
    # it earlier, so by the time b's write is seen, a's retry would have been too.
    await _let_a_retry_fall_due(failed.at)
    await relay.on_status("uid-b", report(1))
    await client.wait_calls(1, OTHER.name)
    assert len(client.calls_for(KEY.name)) == 1
    assert "uid-a" in relay.tracks  # not unregistered: a later report is still relayed
    await relay.on_status("uid-a", report(8))
    assert [c.progress["done"] for c in await client.wait_calls(2, KEY.name)] == [7, 8]


async def test_a_report_refused_because_the_phase_moved_lands_in_the_new_phase(
        harness: Harness) -> None:
    """Held, not dropped: once the reconciler registers the job's new phase (Running ->
    Pausing), the refused report is written again, testing that phase."""
    relay, client = harness.relay, harness.client
    client.errors.append(ApiError(422, "Invalid", "the test operation failed"))
    relay.register("uid-a", KEY, "Running")
    await relay.on_status("uid-a", report(7))
    await client.wait_calls(1)
    relay.register("uid-a", KEY, "Pausing")
    refused, landed = await client.wait_calls(2)
    assert refused.ops[0] == {"op": "test", "path": "/status/phase", "value": "Running"}
    assert landed.ops[0] == {"op": "test", "path": "/status/phase", "value": "Pausing"}
    assert landed.progress["done"] == 7
    assert relay.writes == 1


@pytest.mark.parametrize("error", [
    ApiError(500, "InternalError", "etcd leader changed"),
    ApiError(429, "TooManyRequests", "slow down"),
    aiohttp.ServerDisconnectedError(),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
], ids=["500", "429", "server-disconnected", "connection-refused", "timeout"])
async def test_a_server_or_connection_error_is_retried_at_the_next_interval(
        harness: Harness, error: BaseException) -> None:
    relay, client = harness.relay, harness.client
    client.errors.append(error)
    relay.register("uid-a", KEY, "Running")
    await relay.on_status("uid-a", report(7))
    failed, retried = await client.wait_calls(2)
    assert retried.progress == failed.progress  # the same value, without a new report
    assert retried.sent_at - failed.sent_at >= INTERVAL  # not a hot retry loop
    assert relay.writes == 1


async def test_a_404_unregisters_the_job_and_its_later_reports_are_dropped(
        harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    client.errors.append(ApiError(404, "NotFound", "syncjobs.sync.jobcontrol.io not found"))
    relay.register("uid-a", KEY, "Running")
    relay.register("uid-b", OTHER, "Running")
    await relay.on_status("uid-a", report(7))
    (failed,) = await client.wait_calls(1)
    assert "uid-a" not in relay.tracks

    await _let_a_retry_fall_due(failed.at)
    await relay.on_status("uid-a", report(9, state=RunnerState.FAILED))
    await relay.on_status("uid-b", report(1))  # the witness, written in the same pass
    await client.wait_calls(1, OTHER.name)
    assert len(client.calls_for(KEY.name)) == 1
    assert harness.state_changes == []  # a dropped job's state change is not reported


async def test_reports_of_an_unregistered_uid_are_ignored(harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    relay.register("uid-gone", ObjectKey("ns-a", "job-gone"), "Running")
    relay.unregister("uid-gone")
    relay.register("uid-b", OTHER, "Running")

    for uid in ("uid-never", "uid-gone"):
        await relay.on_status(uid, report(3))
        await relay.on_status(uid, report(4, state=RunnerState.SUCCEEDED))
    await relay.on_status("uid-b", report(1))
    await client.wait_calls(1)
    assert [c.name for c in client.calls] == [OTHER.name]
    assert set(relay.tracks) == {"uid-b"}
    assert harness.state_changes == []


async def test_a_change_to_a_non_running_state_calls_on_state_change_once_with_the_key(
        harness: Harness) -> None:
    relay = harness.relay
    relay.register("uid-a", KEY, "Running")

    await relay.on_status("uid-a", report(0, state=RunnerState.STARTING))
    await relay.on_status("uid-a", report(1, state=RunnerState.RUNNING))
    assert harness.state_changes == []  # starting and running need no reconcile

    await relay.on_status("uid-a", report(1, state=RunnerState.PAUSED))
    await relay.on_status("uid-a", report(1, state=RunnerState.PAUSED))  # no change
    assert harness.state_changes == [KEY]

    await relay.on_status("uid-a", report(2, state=RunnerState.RUNNING))
    await relay.on_status("uid-a", report(2, state=RunnerState.SUCCEEDED))
    assert harness.state_changes == [KEY, KEY]


@pytest.mark.parametrize("state", [s for s in RunnerState
                                   if s not in (RunnerState.RUNNING, RunnerState.STARTING)])
async def test_every_stopped_state_is_reported(harness: Harness, state: RunnerState) -> None:
    harness.relay.register("uid-a", KEY, "Running")
    await harness.relay.on_status("uid-a", report(1, state=RunnerState.RUNNING))
    await harness.relay.on_status("uid-a", report(1, state=state))
    assert harness.state_changes == [KEY]


async def test_the_eta_appears_once_there_is_a_rate_and_restarts_with_a_new_run(
        harness: Harness) -> None:
    relay, client = harness.relay, harness.client
    relay.register("uid-a", KEY, "Running")

    async def written(n: int, rep: RunnerStatus) -> dict[str, Any]:
        await relay.on_status("uid-a", rep)
        return (await client.wait_calls(n))[-1].progress

    # The rate comes from the runner's own timestamps, not from when reports arrive.
    assert "etaSeconds" not in await written(1, report(20, 100, at=1000.0))
    eta = (await written(2, report(70, 100, at=1010.0)))["etaSeconds"]
    assert eta == 6  # 50 units in 10 s = 5/s; 30 left
    # Progress below the run's first report is a new run (a retry starting over).
    assert "etaSeconds" not in await written(3, report(10, 100, at=2000.0))
    assert (await written(4, report(20, 100, at=2001.0)))["etaSeconds"] == 8  # 10/s, 80 left
    # Without a total there is nothing to estimate, and the stale ETA is not kept.
    assert "etaSeconds" not in await written(5, report(30, None, at=2002.0))


async def test_a_new_job_is_seeded_with_the_report_redis_holds(harness: Harness) -> None:
    """After an operator restart the relay is the one writer of status.progress, so the
    progress made while nobody listened must reach the status through it."""
    relay, client = harness.relay, harness.client
    relay.register("uid-a", KEY, "Running", latest=report(37))
    (write,) = await client.wait_calls(1)
    assert write.progress["done"] == 37
    # Registering again (every reconcile does) never re-seeds an older report.
    relay.register("uid-a", KEY, "Running", latest=report(5))
    await relay.on_status("uid-a", report(38))
    calls = await client.wait_calls(2)
    assert [c.progress["done"] for c in calls] == [37, 38]
