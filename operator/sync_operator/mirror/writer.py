"""The background writer that keeps PostgreSQL caught up with the resources.

Handlers hand it the latest body of a SyncJob or SyncSchedule and move on;
they never wait for PostgreSQL. The writer keeps only the newest body per
resource (a newer body carries every entry an older one did, except those
already stored and drained), writes one resource at a time in submission
order, and reports each stored seq to `on_applied` so the operator can drain
status.mirror.pending. Nothing is lost while PostgreSQL is down: the entries
stay in the resources' status, the writer retries with capped exponential
backoff, drops its dead pooled connections and resumes where it was. A body
that fails for its own sake backs off alone and does not hold up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

from sync_operator.audit.outbox import SYSTEM_ACTOR, AuditEntry, pending_entries
from sync_operator.kube.timestamps import parse_time
from sync_operator.mirror.snapshots import JobSnapshot, ScheduleSnapshot
from sync_operator.mirror.store import MirrorStore, is_connection_error

log = logging.getLogger(__name__)

Kind = Literal["SyncJob", "SyncSchedule"]


@dataclass(frozen=True)
class MirrorKey:
    """Which resource a piece of work belongs to."""

    kind: Kind
    uid: str


AppliedCallback = Callable[[MirrorKey, int], Awaitable[None]]


@dataclass(frozen=True)
class WriterStats:
    """Counters for /metrics and readiness; a copy, safe to keep."""

    pending: int = 0
    applied_total: int = 0
    failures_total: int = 0
    consecutive_failures: int = 0
    callback_failures_total: int = 0
    rejected_total: int = 0
    connected: bool = True
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None


@dataclass
class _Work:
    key: MirrorKey
    snapshot: JobSnapshot | ScheduleSnapshot
    entries: list[AuditEntry]
    attempts: int = 0
    not_before: float = 0.0
    order: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.order = _order(self.snapshot)


class MirrorWriter:
    """Applies the newest body per resource to a MirrorStore, retrying until it sticks."""

    def __init__(self, *, store: MirrorStore, on_applied: AppliedCallback | None = None,
                 backoff_initial: float = 0.2, backoff_max: float = 30.0,
                 callback_timeout: float = 10.0) -> None:
        self.store = store
        self._on_applied = on_applied
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._callback_timeout = callback_timeout
        self._queue: dict[MirrorKey, _Work] = {}
        self._inflight: _Work | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stats = WriterStats()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="mirror-writer")
            self._task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        """Stop writing; unwritten entries stay in the resources' status for next time."""
        if self._task is not None:
            self._task.cancel()
            # A crash was logged by _log_crash already; stopping must not raise it again.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def wait_idle(self) -> None:
        """Wait until everything submitted is stored (bound it with asyncio.timeout)."""
        await self._idle.wait()

    @property
    def running(self) -> bool:
        """False before start(), after stop(), or if the loop died (a bug: see the log)."""
        return self._task is not None and not self._task.done()

    @property
    def stats(self) -> WriterStats:
        pending = len(self._queue) + (self._inflight is not None
                                      and self._inflight.key not in self._queue)
        return replace(self._stats, pending=pending)

    # -- submitting ----------------------------------------------------------------------

    def submit_job(self, body: Mapping[str, Any]) -> MirrorKey:
        """Queue a SyncJob body (its snapshot and status.mirror.pending)."""
        snapshot = JobSnapshot.from_body(body)
        return self._offer(_Work(MirrorKey("SyncJob", snapshot.uid), snapshot,
                                 pending_entries(_mirror_of(body))))

    def submit_schedule(self, body: Mapping[str, Any]) -> MirrorKey:
        """Queue a SyncSchedule body."""
        snapshot = ScheduleSnapshot.from_body(body)
        return self._offer(_Work(MirrorKey("SyncSchedule", snapshot.uid), snapshot,
                                 pending_entries(_mirror_of(body))))

    async def delete_job(self, body: Mapping[str, Any], *, deleted_at: datetime,
                         performed_by: str = SYSTEM_ACTOR,
                         details: Mapping[str, Any] | None = None) -> int:
        """Record a deletion now, for a finalizer: raises if PostgreSQL is down, so the
        finalizer is retried and the object (with its pending entries) stays."""
        snapshot = JobSnapshot.from_body(body)
        seq = await self.store.mark_job_deleted(
            snapshot, pending_entries(_mirror_of(body)), deleted_at=deleted_at,
            performed_by=performed_by, details=details)
        self._forget(MirrorKey("SyncJob", snapshot.uid), _order(snapshot))
        return seq

    async def delete_schedule(self, body: Mapping[str, Any], *, deleted_at: datetime,
                              performed_by: str = SYSTEM_ACTOR,
                              details: Mapping[str, Any] | None = None) -> int:
        """Record a SyncSchedule's deletion now, like delete_job."""
        snapshot = ScheduleSnapshot.from_body(body)
        seq = await self.store.mark_schedule_deleted(
            snapshot, pending_entries(_mirror_of(body)), deleted_at=deleted_at,
            performed_by=performed_by, details=details)
        self._forget(MirrorKey("SyncSchedule", snapshot.uid), _order(snapshot))
        return seq

    def notify(self, body: Mapping[str, Any]) -> None:
        """Queue a SyncJob or SyncSchedule body by its kind (the reconciler's Mirror).

        Never raises: a body the mirror cannot read (a hand-edited status.mirror)
        is logged and counted in `rejected_total`, and reconciling goes on.
        """
        try:
            if body.get("kind") == "SyncSchedule":
                self.submit_schedule(body)
            else:
                self.submit_job(body)
        except ValueError as exc:  # pydantic's ValidationError is one
            self._stats = replace(self._stats, rejected_total=self._stats.rejected_total + 1)
            meta = body.get("metadata") or {}
            log.error("not mirroring %s/%s: %s", meta.get("namespace"), meta.get("name"), exc)

    async def record_deletion(self, body: Mapping[str, Any], performed_by: str) -> None:
        """Record a deletion at its deletionTimestamp (the reconciler's Mirror)."""
        deleted_at = _deletion_time(body)
        if body.get("kind") == "SyncSchedule":
            await self.delete_schedule(body, deleted_at=deleted_at, performed_by=performed_by)
        else:
            await self.delete_job(body, deleted_at=deleted_at, performed_by=performed_by)

    def _offer(self, work: _Work) -> MirrorKey:
        """Keep the newer of the queued and the offered body; keep the queue position."""
        queued = self._queue.get(work.key)
        if queued is not None:
            if work.order < queued.order:
                return work.key
            work.attempts, work.not_before = queued.attempts, queued.not_before
        self._queue[work.key] = work
        self._idle.clear()
        self._wake.set()
        return work.key

    def _forget(self, key: MirrorKey, order: tuple[int, ...]) -> None:
        queued = self._queue.get(key)
        if queued is not None and queued.order <= order:
            del self._queue[key]
        self._update_idle()

    def _update_idle(self) -> None:
        if not self._queue and self._inflight is None:
            self._idle.set()

    # -- the loop ------------------------------------------------------------------------

    def _next_ready(self) -> tuple[_Work | None, float | None]:
        """The first queued work due now, else how long until one is."""
        now = time.monotonic()
        soonest: float | None = None
        for work in self._queue.values():
            if work.not_before <= now:
                return work, None
            wait = work.not_before - now
            soonest = wait if soonest is None else min(soonest, wait)
        return None, soonest

    def _backoff(self, attempt: int) -> float:
        delay = min(self._backoff_max, self._backoff_initial * 2 ** max(attempt - 1, 0))
        return float(delay * random.uniform(0.5, 1.0))

    async def _run(self) -> None:
        while True:
            work, wait = self._next_ready()
            if work is None:
                self._update_idle()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            del self._queue[work.key]
            self._inflight = work
            try:
                seq = await self._apply(work)
            except asyncio.CancelledError:
                self._requeue(work)
                raise
            except Exception as exc:
                await self._failed(work, exc)
            else:
                await self._succeeded(work, seq)
            finally:
                self._inflight = None

    async def _apply(self, work: _Work) -> int:
        if isinstance(work.snapshot, JobSnapshot):
            return await self.store.apply_job(work.snapshot, work.entries)
        return await self.store.apply_schedule(work.snapshot, work.entries)

    def _requeue(self, work: _Work) -> None:
        """Put failed work back unless a newer body arrived meanwhile."""
        queued = self._queue.get(work.key)
        if queued is None or queued.order < work.order:
            self._queue[work.key] = work
        elif queued is not None:
            queued.attempts, queued.not_before = work.attempts, work.not_before

    async def _failed(self, work: _Work, exc: Exception) -> None:
        stats = self._stats
        self._stats = replace(stats, failures_total=stats.failures_total + 1,
                              last_error=f"{type(exc).__name__}: {exc}"[:500],
                              last_error_at=datetime.now(UTC))
        if is_connection_error(exc):
            # PostgreSQL itself is away: back off globally, then retry with fresh connections.
            failures = stats.consecutive_failures + 1
            self._stats = replace(self._stats, consecutive_failures=failures, connected=False)
            if stats.connected:
                log.warning("PostgreSQL mirror at %s unavailable, retrying: %s",
                            self.store.url, exc)
            self._requeue(work)
            with contextlib.suppress(Exception):
                await self.store.reset()
            await asyncio.sleep(self._backoff(failures))
            return
        work.attempts += 1
        work.not_before = time.monotonic() + self._backoff(work.attempts)
        log.error("mirror write for %s %s failed (attempt %d), retrying: %s",
                  work.key.kind, work.key.uid, work.attempts, exc)
        self._requeue(work)

    async def _succeeded(self, work: _Work, seq: int) -> None:
        stats = self._stats
        if not stats.connected:
            log.info("PostgreSQL mirror at %s reachable again", self.store.url)
        self._stats = replace(stats, applied_total=stats.applied_total + 1,
                              consecutive_failures=0, connected=True,
                              last_success_at=datetime.now(UTC))
        if self._on_applied is None:
            return
        try:
            async with asyncio.timeout(self._callback_timeout):
                await self._on_applied(work.key, seq)
        except Exception as exc:
            # Harmless: the entries stay pending and are written again (idempotently) later.
            self._stats = replace(self._stats,
                                  callback_failures_total=self._stats.callback_failures_total + 1)
            log.warning("draining status.mirror of %s %s up to %d failed: %s",
                        work.key.kind, work.key.uid, seq, exc)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("mirror writer stopped by a bug", exc_info=task.exception())


def _order(snapshot: JobSnapshot | ScheduleSnapshot) -> tuple[int, ...]:
    """The version the store compares, so the queue keeps the body the store would."""
    if isinstance(snapshot, ScheduleSnapshot):
        return (snapshot.generation, snapshot.resource_version, snapshot.seq)
    return (snapshot.seq, snapshot.resource_version)


def _deletion_time(body: Mapping[str, Any]) -> datetime:
    return parse_time((body.get("metadata") or {}).get("deletionTimestamp")) \
        or datetime.now(UTC)


def _mirror_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    status = body.get("status")
    mirror = status.get("mirror") if isinstance(status, Mapping) else None
    return mirror if isinstance(mirror, Mapping) else None
