"""Relays runner progress from Redis into status.progress at a bounded rate.

At most one status write per job per interval, and the latest value always
lands: a report that arrives inside the interval is held and written when the
interval ends. All jobs together share a budget of writes per second: with more jobs
running than the budget allows at the per-job interval, every job's interval
stretches evenly (1,000 running jobs never become 1,000 writes a second). It also
computes the ETA from the rate seen in the current run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiolimiter import AsyncLimiter

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.syncjob.statemachine import progress_status
from sync_runner.contract import RunnerState, RunnerStatus

log = logging.getLogger(__name__)


@dataclass
class _Track:
    key: ObjectKey
    latest: RunnerStatus | None = None
    dirty: bool = False
    last_write: float = 0.0
    first: tuple[float, int] | None = None  # (time, done) at the first report of this run
    last_state: RunnerState | None = None
    phase: str = "Running"
    # The phase a write was refused in (422: the phase moved on): the held report waits
    # until something changes (the reconciler registers the job again, with its new
    # phase, or a new report comes), then it is tried again.
    refused_in: str | None = None


ETA_MAX_SECONDS = 100 * 365 * 24 * 3600  # a century: beyond it, "how long" says nothing


def estimate_eta(first: tuple[float, int] | None, now: float, done: int,
                 total: int | None) -> int | None:
    """Seconds left at the rate seen since `first`; None until there is a rate."""
    if first is None or total is None or done <= first[1]:
        return None
    rate = (done - first[1]) / max(now - first[0], 1e-6)
    # Capped: an extreme but valid report (a total near int64, a crawl of a rate) would
    # give a number the schema's int64 refuses, and that 422 would stop progress landing.
    return min(ETA_MAX_SECONDS, max(0, int((total - done) / rate)))


class ProgressRelay:
    def __init__(self, *, client: KubeClient, interval: float,
                 on_state_change: Callable[[ObjectKey], None],
                 writes_per_second: float = 20.0,
                 own_writes: OwnWrites) -> None:
        self.own_writes = own_writes  # required: a default would silently echo every write
        self.client = client
        self.interval = interval
        self.writes_per_second = writes_per_second
        # Paces the writes themselves (the interval stretch alone would send them in
        # waves), so progress never crowds out the reconcilers' and the Lease's requests.
        self._budget = AsyncLimiter(max(1.0, writes_per_second), 1.0)
        self.on_state_change = on_state_change
        self.tracks: dict[str, _Track] = {}
        self.writes = 0
        self._wake = asyncio.Event()

    def register(self, uid: str, key: ObjectKey, phase: str,
                 latest: RunnerStatus | None = None) -> None:
        """Relay this job's progress while it is in `phase` (a phase that holds a pod).
        `latest` (the runner's report as Redis holds it) seeds a job not tracked yet, so
        progress made while no operator listened lands too (after a restart)."""
        track = self.tracks.get(uid)
        if track is None:
            track = self.tracks[uid] = _Track(key)
            if latest is not None:
                self._take(track, latest)
        track.phase = phase
        if track.refused_in is not None:
            track.refused_in = None
            self._wake.set()

    def clear(self) -> None:
        """A new term of leadership: the reconcilers register what runs again."""
        self.tracks.clear()

    def unregister(self, uid: str) -> None:
        self.tracks.pop(uid, None)

    async def on_status(self, uid: str, status: RunnerStatus) -> None:
        track = self.tracks.get(uid)
        if track is not None:
            self._take(track, status)

    def _take(self, track: _Track, status: RunnerStatus) -> None:
        if track.first is None or status.progress.done < track.first[1]:
            track.first = (status.progress.updated_at, status.progress.done)
        if status.state != track.last_state:
            track.last_state = status.state
            if status.state not in (RunnerState.RUNNING, RunnerState.STARTING):
                self.on_state_change(track.key)
        if track.latest is None or status.progress != track.latest.progress:
            track.latest = status
            track.dirty = True
            track.refused_in = None
            self._wake.set()

    @property
    def effective_interval(self) -> float:
        """The per-job interval, stretched so that all jobs fit the global budget."""
        return max(self.interval, len(self.tracks) / self.writes_per_second)

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            interval = self.effective_interval
            due = [(uid, t) for uid, t in self.tracks.items()
                   if t.dirty and t.refused_in is None and now - t.last_write >= interval]
            await asyncio.gather(*(self._write(uid, t) for uid, t in due))
            waits = [interval - (now - t.last_write) for t in self.tracks.values()
                     if t.dirty and t.refused_in is None]
            self._wake.clear()
            timeout = max(0.01, min(waits)) if waits else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _write(self, uid: str, track: _Track) -> None:
        await self._budget.acquire()
        status = track.latest  # the latest report as of now, not as of the pass
        if status is None or self.tracks.get(uid) is not track:
            return
        track.dirty = False
        track.last_write = time.monotonic()
        progress = progress_status(status, None)
        eta = estimate_eta(track.first, status.progress.updated_at, status.progress.done,
                           status.progress.total)
        progress["etaSeconds"] = eta  # None removes a stale estimate (merge patch)
        namespace, name = track.key
        phase = track.phase
        try:
            # Only while the phase is the one the job was registered in: a late write
            # must never overwrite the final progress of a finished or paused job.
            written = await self.client.patch(SYNCJOBS, name, [
                {"op": "test", "path": "/status/phase", "value": phase},
                {"op": "add", "path": "/status/progress",
                 "value": {k: v for k, v in progress.items() if v is not None}},
            ], namespace, subresource="status", patch_type="json")
            self.own_writes.record(written)
            self.writes += 1
        except ApiError as err:
            if err.not_found:
                self.unregister(uid)
            elif err.status == 422:
                # The phase moved on (the test op failed). Held, not dropped: written in
                # the new phase once the reconciler registers it (Pausing, Cancelling),
                # gone with the track if the job stopped holding a pod.
                if track.latest is status:  # nothing newer came while it was out
                    track.dirty = True
                    track.refused_in = None if track.phase != phase else phase
            else:
                track.dirty = True
                log.warning("progress of %s/%s not written: %s", namespace, name, err)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            track.dirty = True  # the API server is unreachable: retry next interval
            log.warning("progress of %s/%s not written: %s", namespace, name, err)
