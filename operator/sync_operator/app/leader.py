"""Active/standby HA: one operator replica leads by holding a coordination.k8s.io/v1 Lease.

kopf's peering cannot elect a leader, so the operator does what kube-controller-manager,
Kueue and Argo do (client-go's leaderelection, ported):

* A candidate takes the Lease when it is free (no holder: released) or expired. Expiry is
  judged by the candidate's own clock from when it last saw the record change, never by
  comparing clocks with the holder; so a fresh standby waits one full lease duration.
* Every write is a PUT carrying the resourceVersion that was read: of two candidates,
  one gets 409 Conflict and stays standby. ``leaseTransitions`` counts changes of holder.
* The leader renews every retry period. If it cannot renew for ``renew_deadline`` (less
  than the lease duration) it steps down before anyone else may take over; if it sees
  another holder it steps down at once. Either way its leader work is cancelled first.
* On shutdown the leader releases: empty holder, 1 s duration, so a standby takes over
  on its next retry instead of waiting for expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from sync_operator.app.clock import Clock, SystemClock
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.resources import LEASES
from sync_operator.kube.timestamps import format_micro_time, parse_time

log = logging.getLogger(__name__)

Callback = Callable[[], Coroutine[Any, Any, None]]
# Extra random wait (fraction of retry_period) between acquire attempts, so candidates
# started together do not poll in lockstep. client-go uses 1.2; two replicas need less.
JITTER = 0.2
_TRANSIENT = (ApiError, aiohttp.ClientError, TimeoutError, OSError)


@dataclass(frozen=True)
class LeaderRecord:
    """The Lease spec fields leader election reads and writes."""

    holder_identity: str
    lease_duration_seconds: int
    acquire_time: datetime | None
    renew_time: datetime | None
    lease_transitions: int

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaderRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=parse_time(spec.get("acquireTime")),
            renew_time=parse_time(spec.get("renewTime")),
            lease_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": _format_time(self.acquire_time),
            "renewTime": _format_time(self.renew_time),
            "leaseTransitions": self.lease_transitions,
        }


def default_identity() -> str:
    """Host name (the pod name in a cluster) plus a random part, as client-go does."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    """Campaigns for one Lease; runs the leader work only while holding it."""

    def __init__(self, *, client: KubeClient, namespace: str, name: str, identity: str,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, clock: Clock | None = None,
                 release_on_cancel: bool = True) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock: Clock = clock or SystemClock()
        self._observed: LeaderRecord | None = None
        self._observed_at: datetime | None = None
        self.leading = asyncio.Event()  # set while this replica is the leader

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    @property
    def leader(self) -> str | None:
        """The holder as last observed ("" or None: nobody)."""
        return None if self._observed is None else self._observed.holder_identity

    async def run(self, on_started_leading: Callback | None = None,
                  on_stopped_leading: Callback | None = None) -> None:
        """Campaign, lead, and after losing the Lease campaign again, until cancelled.

        `on_started_leading` runs as a task while leading and is cancelled when leadership
        ends; `on_stopped_leading` is awaited after that (and after releasing, on shutdown).
        """
        while True:
            await self._acquire()
            await self._lead(on_started_leading, on_stopped_leading)

    @contextlib.asynccontextmanager
    async def running(self, on_started_leading: Callback | None = None,
                      on_stopped_leading: Callback | None = None) -> AsyncIterator[LeaderElector]:
        """Run the election in the background for the duration of the block."""
        task = asyncio.create_task(self.run(on_started_leading, on_stopped_leading),
                                   name=f"leader-election:{self.name}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease; True if we hold it afterwards."""
        now = self._clock.now()
        desired = LeaderRecord(self.identity, math.ceil(self.lease_duration), now, now, 0)
        lease = await self.client.get_or_none(LEASES, self.name, self.namespace)
        if lease is None:
            body = {"apiVersion": LEASES.api_version, "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": desired.to_spec()}
            try:
                await self.client.create(LEASES, body, self.namespace)
            except ApiError as err:
                if err.conflict:  # AlreadyExists: another candidate was first
                    return False
                raise
            self._observe(desired, now)
            return True

        old = LeaderRecord.from_lease(lease)
        if old != self._observed:
            self._observe(old, now)
        if old.holder_identity and old.holder_identity != self.identity and (
                self._observed_valid(now)):
            return False
        if old.holder_identity == self.identity:
            desired = replace(desired, acquire_time=old.acquire_time,
                              lease_transitions=old.lease_transitions)
        else:
            desired = replace(desired, lease_transitions=old.lease_transitions + 1)
        lease["spec"] = {**(lease.get("spec") or {}), **desired.to_spec()}
        try:  # the body carries the resourceVersion we read: a race gives 409
            await self.client.replace(LEASES, self.name, lease, self.namespace)
        except ApiError as err:
            if err.conflict:
                return False
            raise
        self._observe(desired, now)
        return True

    async def release(self) -> bool:
        """Give the Lease up if we hold it, so a standby need not wait for expiry."""
        lease = await self.client.get_or_none(LEASES, self.name, self.namespace)
        if lease is None or LeaderRecord.from_lease(lease).holder_identity != self.identity:
            return True
        now = self._clock.now()
        old = LeaderRecord.from_lease(lease)
        released = LeaderRecord("", 1, now, now, old.lease_transitions)
        lease["spec"] = {**(lease.get("spec") or {}), **released.to_spec()}
        try:
            await self.client.replace(LEASES, self.name, lease, self.namespace)
        except ApiError as err:
            if err.conflict:
                return False
            raise
        self._observe(released, now)
        return True

    # -- internals ----------------------------------------------------------------------

    def _observe(self, record: LeaderRecord, now: datetime) -> None:
        self._observed, self._observed_at = record, now

    def _observed_valid(self, now: datetime) -> bool:
        if self._observed is None or self._observed_at is None:
            return False
        expires = self._observed_at + timedelta(seconds=self._observed.lease_duration_seconds)
        return expires > now

    async def _attempt(self) -> bool:
        """try_acquire_or_renew, with API and network failures counted as "not now"."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                return await self.try_acquire_or_renew()
        except _TRANSIENT as err:
            log.warning("lease %s/%s: attempt failed: %s", self.namespace, self.name, err)
            return False

    async def _acquire(self) -> None:
        while True:
            if await self._attempt():
                break
            await asyncio.sleep(self.retry_period * (1 + random.random() * JITTER))
        log.info("lease %s/%s: %s is now the leader", self.namespace, self.name, self.identity)

    async def _lead(self, on_started: Callback | None, on_stopped: Callback | None) -> None:
        self.leading.set()
        work = asyncio.create_task(on_started(), name="leader-work") if on_started else None
        shutting_down = False
        try:
            await self._renew_until_lost()
        except asyncio.CancelledError:
            shutting_down = True
            raise
        finally:
            self.leading.clear()
            await _stop(work)
            if shutting_down and self.release_on_cancel:
                await self._release_quietly()
            log.info("lease %s/%s: %s stopped leading", self.namespace, self.name, self.identity)
            if on_stopped is not None:
                try:
                    await on_stopped()
                except Exception:
                    log.exception("on_stopped_leading failed")

    async def _renew_until_lost(self) -> None:
        last_renewed = self._clock.now()
        while True:
            await asyncio.sleep(self.retry_period)
            if await self._attempt():
                last_renewed = self._clock.now()
                continue
            if self.leader and self.leader != self.identity and self._observed_valid(
                    self._clock.now()):
                log.warning("lease %s/%s: taken by %s", self.namespace, self.name, self.leader)
                return
            if self._clock.now() - last_renewed >= timedelta(seconds=self.renew_deadline):
                log.warning("lease %s/%s: not renewed for %.1fs, stepping down",
                            self.namespace, self.name, self.renew_deadline)
                return

    async def _release_quietly(self) -> None:
        try:
            async with asyncio.timeout(self.renew_deadline):
                await self.release()
        except _TRANSIENT as err:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, err)


async def _stop(task: asyncio.Task[None] | None) -> None:
    """Cancel the leader work and wait for it, so it never overlaps the next leader."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("leader work failed")


def _format_time(value: datetime | None) -> str | None:
    return None if value is None else format_micro_time(value)
