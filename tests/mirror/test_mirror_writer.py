"""The background writer against a real PostgreSQL, including a server restart."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mirror_helpers import fetch, job_body, terminate_client_connections

from sync_operator.audit.outbox import append_entry, drained
from sync_operator.mirror import MirrorKey, MirrorStore, MirrorWriter
from sync_operator.mirror.store import is_connection_error
from testkit.servers import PostgresServer

AT = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
SYSTEM = "system:sync-operator"


class Resources:
    """SyncJob bodies as the API server keeps them: the operator's side of the mirror.

    Transitions append to status.mirror (as the operator's handlers will), and the
    writer's callback drains it, as the operator's status patch will.
    """

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.ticks = 0
        self.revision = 100
        self.drains: list[tuple[str, int]] = []

    def _now(self) -> datetime:
        self.ticks += 1
        return AT + timedelta(seconds=self.ticks)

    def record(self, uid: str, action: str | None, actor: str, phase: str,
               spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
        """Apply a transition; action None changes status without an audit entry."""
        body = copy.deepcopy(self.bodies.get(uid) or job_body(uid, f"job-{uid}"))
        body["spec"].update(spec or {})
        body["status"].update(status, phase=phase)
        if action is not None:
            body["status"]["mirror"] = append_entry(
                body["status"].get("mirror"), action, actor, phase, {"tick": self.ticks},
                self._now())
        self._written(body)
        return copy.deepcopy(body)

    def _written(self, body: dict[str, Any]) -> None:
        """Store a body as the API server does: with the next resourceVersion."""
        self.revision += 1
        body["metadata"]["resourceVersion"] = str(self.revision)
        self.bodies[body["metadata"]["uid"]] = body

    async def drain(self, key: MirrorKey, seq: int) -> None:
        body = self.bodies[key.uid]
        body["status"]["mirror"] = drained(body["status"]["mirror"], seq)
        self._written(body)
        self.drains.append((key.uid, seq))

    def pending(self) -> int:
        return sum(len(b["status"]["mirror"]["pending"]) for b in self.bodies.values())


JOBS = [f"uid-{n}" for n in range(6)]
LIFECYCLE: list[tuple[str | None, str, str, dict[str, Any], dict[str, Any]]] = [
    ("create", "alice", "Pending", {}, {}),
    ("admitted", SYSTEM, "Queued", {}, {}),
    ("started", SYSTEM, "Running", {}, {"startedAt": "2026-01-01T04:00:00Z", "attempts": 1}),
    (None, SYSTEM, "Running", {}, {"progress": {"percent": 40.0}}),
    ("pause", "bob", "Pausing", {"paused": True}, {}),
    ("paused", SYSTEM, "Paused", {}, {"pausedAt": "2026-01-01T05:00:00Z"}),
    ("resume", "bob", "Running", {"paused": False}, {"pausedAt": None}),
    ("priority_change", "carol", "Running", {"priority": 1}, {}),
    ("succeeded", SYSTEM, "Succeeded", {},
     {"completedAt": "2026-01-01T06:00:00Z", "progress": {"percent": 100.0}}),
]
AUDITED_PER_JOB = sum(1 for step in LIFECYCLE if step[0] is not None)

Hook = Callable[[int, MirrorWriter, Resources], Awaitable[None]]


async def _run_lifecycle(url: str, before_step: Hook | None = None) -> Resources:
    """Every job through LIFECYCLE, interleaved, each body handed to one writer."""
    resources = Resources()
    store = MirrorStore(url)
    try:
        async with MirrorWriter(store=store, on_applied=resources.drain, backoff_initial=0.05,
                                backoff_max=0.5) as writer:
            for index, (action, actor, phase, spec, status) in enumerate(LIFECYCLE):
                if before_step is not None:
                    await before_step(index, writer, resources)
                for uid in JOBS:
                    writer.submit_job(resources.record(uid, action, actor, phase, spec, **status))
                    await asyncio.sleep(0)
            async with asyncio.timeout(60):
                await writer.wait_idle()
    finally:
        await store.close()
    return resources


async def _mirror_rows(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    control = await fetch(url, "SELECT * FROM sync_job_control ORDER BY job_uid")
    audit = await fetch(url, "SELECT * FROM sync_job_audit_logs ORDER BY idempotency_key")
    for row in control:
        # resource_version depends on when the drains happened, so it differs between runs.
        for column in ("id", "created_at", "updated_at", "resource_version"):
            del row[column]
    for row in audit:
        del row["id"]
    return control, audit


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll a condition on the writer's progress (it has no event for each of them)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"after {seconds}s: {what}")


async def test_writer_catches_up_after_postgres_restart_with_exactly_the_rows_of_an_uninterrupted_run(  # noqa: E501
    postgres_server: PostgresServer, migrated_url: str, second_migrated_url: str,
) -> None:
    uninterrupted = await _run_lifecycle(second_migrated_url)
    seen: dict[str, Any] = {}

    async def outage(index: int, writer: MirrorWriter, resources: Resources) -> None:
        if index == 3:
            # The writer's pooled connections die with the server, as in a crash.
            await writer.wait_idle()
            terminate_client_connections(postgres_server)
            await asyncio.to_thread(postgres_server.stop)
        elif index == 7:
            await _until(lambda: writer.stats.failures_total > 0, 15, "writer never tried")
            stats = writer.stats
            seen.update(connected=stats.connected, pending=stats.pending,
                        error=stats.last_error, entries=resources.pending())
            await asyncio.to_thread(postgres_server.start)

    try:
        interrupted = await _run_lifecycle(migrated_url, outage)
    finally:
        if postgres_server.process is None or not postgres_server.process.running:
            postgres_server.start()

    # During the outage the entries waited in the resources' status, not in memory only.
    assert seen["connected"] is False
    assert seen["pending"] == len(JOBS)
    assert seen["entries"] == len(JOBS) * 3  # pause, paused, resume
    assert seen["error"]
    # Afterwards everything is stored and drained, exactly as without the outage.
    assert interrupted.pending() == uninterrupted.pending() == 0
    control, audit = await _mirror_rows(migrated_url)
    assert (control, audit) == await _mirror_rows(second_migrated_url)
    assert len(audit) == len(JOBS) * AUDITED_PER_JOB
    assert {(row["status"], row["progress_percentage"], row["priority"], row["last_seq"])
            for row in control} == {("Succeeded", 100.0, 1, AUDITED_PER_JOB)}


async def test_writer_coalesces_queued_bodies_without_losing_their_entries(
    migrated_url: str,
) -> None:
    resources = Resources()
    store = MirrorStore(migrated_url)
    writer = MirrorWriter(store=store, on_applied=resources.drain)
    for action in ("create", "admitted", "started", "pause", "paused"):
        writer.submit_job(resources.record("uid-1", action, "alice", "Running"))
    # An older body delivered late must not replace the newer one in the queue.
    writer.submit_job(job_body("uid-1", "job-uid-1", status={
        "phase": "Pending", "mirror": append_entry(None, "create", "alice", "Pending", {}, AT)}))

    async with writer:
        async with asyncio.timeout(30):
            await writer.wait_idle()
    await store.close()

    assert writer.stats.applied_total == 1
    assert resources.drains == [("uid-1", 5)]
    assert resources.pending() == 0
    rows = await fetch(migrated_url, "SELECT action FROM sync_job_audit_logs ORDER BY id")
    assert [row["action"] for row in rows] == ["create", "admitted", "started", "pause", "paused"]


async def test_a_body_the_database_rejects_backs_off_alone_and_others_are_written(
    migrated_url: str,
) -> None:
    resources = Resources()
    store = MirrorStore(migrated_url)
    # priority is an int4 column: the API's validation would refuse this, PostgreSQL does.
    poison = job_body("uid-bad", "bad", priority=2**40, status={"phase": "Pending"})
    async with MirrorWriter(store=store, on_applied=resources.drain,
                            backoff_initial=0.05) as writer:
        writer.submit_job(poison)
        for uid in ("uid-1", "uid-2"):
            writer.submit_job(resources.record(uid, "create", "alice", "Pending"))

        await _until(lambda: len(resources.drains) == 2 and writer.stats.failures_total >= 2,
                     15, "good bodies not written while the bad one retried")
        stats = writer.stats
    await store.close()

    assert sorted(uid for uid, _ in resources.drains) == ["uid-1", "uid-2"]
    assert stats.pending == 1
    assert stats.connected is True
    assert "int32" in (stats.last_error or "")
    rows = await fetch(migrated_url, "SELECT job_uid FROM sync_job_control ORDER BY job_uid")
    assert rows == [{"job_uid": "uid-1"}, {"job_uid": "uid-2"}]


async def test_writer_records_a_deletion_at_once_and_forgets_the_queued_body(
    migrated_url: str,
) -> None:
    resources = Resources()
    store = MirrorStore(migrated_url)
    writer = MirrorWriter(store=store, on_applied=resources.drain)
    body = resources.record("uid-1", "cancelled", "alice", "Cancelled")
    writer.notify(body)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T03:00:00Z"

    await writer.record_deletion(body, "alice")

    assert writer.stats.pending == 0
    await store.close()
    rows = await fetch(migrated_url,
                       "SELECT action, performed_by FROM sync_job_audit_logs ORDER BY id")
    assert rows == [{"action": "cancelled", "performed_by": "alice"},
                    {"action": "delete", "performed_by": "alice"}]
    [control] = await fetch(migrated_url, "SELECT status, deleted_at FROM sync_job_control")
    assert control == {"status": "Cancelled", "deleted_at": AT}


async def test_an_unreadable_body_is_counted_and_not_raised_into_the_reconciler(
    migrated_url: str,
) -> None:
    store = MirrorStore(migrated_url)
    writer = MirrorWriter(store=store)
    body = job_body("uid-1", "job", status={"mirror": {"seq": 1, "pending": [{"seq": 1}]}})

    writer.notify(body)

    await store.close()
    assert (writer.stats.rejected_total, writer.stats.pending) == (1, 0)


async def test_deleting_while_postgres_is_unreachable_raises_so_the_finalizer_retries(
    database_url: str,
) -> None:
    unreachable = database_url.rsplit(":", 1)[0] + ":1/nowhere"
    store = MirrorStore(unreachable, connect_timeout=1)
    writer = MirrorWriter(store=store)
    body = job_body("uid-1", "job", status={"phase": "Cancelled"})

    with pytest.raises(Exception) as failed:  # noqa: PT011 - checked just below
        await writer.delete_job(body, deleted_at=AT)
    await store.close()

    assert is_connection_error(failed.value)
