"""Idempotent mirror writes against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mirror_helpers import fetch, job_body, schedule_body
from sqlalchemy.engine import make_url

from sync_operator.audit.outbox import append_entry, pending_entries
from sync_operator.mirror import JobSnapshot, MirrorStore, ScheduleSnapshot
from sync_operator.mirror.store import is_connection_error
from testkit.ports import free_port

AT = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def _job(mirror: dict[str, Any] | None, phase: str, **status: Any) -> dict[str, Any]:
    return job_body("uid-1", "quran-nightly", status={"phase": phase, "mirror": mirror, **status})


async def _audit(url: str) -> list[dict[str, Any]]:
    return await fetch(url, "SELECT idempotency_key, action, performed_by, phase, metadata "
                            "FROM sync_job_audit_logs ORDER BY performed_at, id")


async def _control(url: str) -> list[dict[str, Any]]:
    return await fetch(url, "SELECT * FROM sync_job_control")


async def test_replayed_entries_write_no_duplicate_rows(store: MirrorStore,
                                                        migrated_url: str) -> None:
    mirror = append_entry(None, "create", "alice", "Pending", None, AT)
    mirror = append_entry(mirror, "admitted", "system", "Queued", None, AT + timedelta(1))
    body = _job(mirror, "Queued")

    for _ in range(3):
        applied = await store.apply_job(JobSnapshot.from_body(body), pending_entries(mirror))
    # A later body still carrying an already-stored entry (not yet drained) adds only the new one.
    later = append_entry(mirror, "started", "system", "Running", None, AT + timedelta(2))
    await store.apply_job(JobSnapshot.from_body(_job(later, "Running")), pending_entries(later))

    assert applied == 2
    assert [row["idempotency_key"] for row in await _audit(migrated_url)] == [
        "uid-1:1", "uid-1:2", "uid-1:3"]
    assert len(await _control(migrated_url)) == 1


async def test_older_snapshot_does_not_overwrite_newer_control_row(
    store: MirrorStore, migrated_url: str,
) -> None:
    older = append_entry(None, "started", "system", "Running", None, AT)
    newer = append_entry(older, "succeeded", "system", "Succeeded", None, AT + timedelta(1))
    newer_body = _job(newer, "Succeeded", progress={"percent": 100},
                      completedAt="2026-01-02T03:00:00Z")

    await store.apply_job(JobSnapshot.from_body(newer_body), pending_entries(newer))
    before = await _control(migrated_url)
    # The older body arrives late (a slow handler, a replay after restart).
    await store.apply_job(JobSnapshot.from_body(_job(older, "Running", progress={"percent": 10})),
                          pending_entries(older))

    after = await _control(migrated_url)
    assert after == before
    assert (after[0]["status"], after[0]["progress_percentage"], after[0]["last_seq"]) == (
        "Succeeded", 100.0, 2)
    assert after[0]["completed_at"] == AT + timedelta(days=1)
    # The older body's entry was stored anyway, once.
    assert [row["action"] for row in await _audit(migrated_url)] == ["started", "succeeded"]


async def test_newer_snapshot_updates_the_control_row(store: MirrorStore,
                                                      migrated_url: str) -> None:
    first = append_entry(None, "started", "system", "Running", None, AT)
    await store.apply_job(JobSnapshot.from_body(_job(first, "Running")), pending_entries(first))
    paused = append_entry(first, "paused", "bob", "Paused", None, AT + timedelta(1))
    body = _job(paused, "Paused", pausedAt="2026-01-02T03:00:00Z", progress={"percent": 55})
    body["spec"]["priority"] = 1

    await store.apply_job(JobSnapshot.from_body(body), pending_entries(paused))

    [row] = await _control(migrated_url)
    assert (row["status"], row["priority"], row["progress_percentage"], row["last_seq"]) == (
        "Paused", 1, 55.0, 2)
    assert row["paused_at"] == AT + timedelta(days=1)
    assert row["job_id"] == "content/quran-nightly"
    assert row["updated_at"] >= row["created_at"]


async def test_status_change_without_audit_entry_applies_by_newer_resource_version(
    store: MirrorStore, migrated_url: str,
) -> None:
    mirror = append_entry(None, "started", "system", "Running", None, AT)

    def at_version(version: int, percent: float) -> JobSnapshot:
        body = _job(mirror, "Running", progress={"percent": percent})
        body["metadata"]["resourceVersion"] = str(version)
        return JobSnapshot.from_body(body)

    for version, percent in ((10, 5.0), (12, 30.0), (11, 20.0), (12, 99.0)):
        await store.apply_job(at_version(version, percent), pending_entries(mirror))

    [row] = await _control(migrated_url)
    # 11 came late and 12 twice: the first body at resourceVersion 12 stands.
    assert (row["progress_percentage"], row["last_seq"], row["resource_version"]) == (
        30.0, 1, 12)


async def test_audit_rows_keep_performed_by(store: MirrorStore, migrated_url: str) -> None:
    mirror = None
    for action, who in (("pause", "alice"), ("resume", "bob"),
                        ("priority_change", "system:serviceaccount:gitops:argocd"),
                        ("cancel", "carol")):
        mirror = append_entry(mirror, action, who, "Running", {"by": who}, AT)

    await store.apply_job(JobSnapshot.from_body(_job(mirror, "Cancelling")),
                          pending_entries(mirror))

    rows = await _audit(migrated_url)
    assert [(r["action"], r["performed_by"]) for r in rows] == [
        ("pause", "alice"), ("resume", "bob"),
        ("priority_change", "system:serviceaccount:gitops:argocd"), ("cancel", "carol")]
    assert rows[2]["metadata"] == {"by": "system:serviceaccount:gitops:argocd"}
    by_bob = await fetch(migrated_url, "SELECT action FROM sync_job_audit_logs "
                                       "WHERE performed_by = :who", who="bob")
    assert by_bob == [{"action": "resume"}]


async def test_deleting_a_job_is_recorded_once_and_its_first_time_kept(
    store: MirrorStore, migrated_url: str,
) -> None:
    mirror = append_entry(None, "cancel", "alice", "Cancelling", None, AT)
    mirror = append_entry(mirror, "cancelled", "system", "Cancelled", None, AT)
    snapshot = JobSnapshot.from_body(_job(mirror, "Cancelled"))

    await store.mark_job_deleted(snapshot, pending_entries(mirror), deleted_at=AT,
                                 performed_by="alice")
    # A retried finalizer, and then a late queued apply of the same body.
    await store.mark_job_deleted(snapshot, pending_entries(mirror),
                                 deleted_at=AT + timedelta(minutes=1), performed_by="alice")
    await store.apply_job(snapshot, pending_entries(mirror))

    assert [(r["action"], r["performed_by"], r["idempotency_key"])
            for r in await _audit(migrated_url)] == [
        ("cancel", "alice", "uid-1:1"), ("cancelled", "system", "uid-1:2"),
        ("delete", "alice", "uid-1:deleted")]
    [row] = await _control(migrated_url)
    assert (row["status"], row["deleted_at"]) == ("Cancelled", AT)


async def test_a_job_deleted_while_running_leaves_a_final_row_saying_deleted(
    store: MirrorStore, migrated_url: str,
) -> None:
    mirror = append_entry(None, "started", "system", "Running", None, AT)
    running = _job(mirror, "Running", startedAt="2026-01-01T03:00:00Z")
    await store.apply_job(JobSnapshot.from_body(running), pending_entries(mirror))
    gone_at = AT + timedelta(minutes=5)

    await store.mark_job_deleted(JobSnapshot.from_body(running), pending_entries(mirror),
                                 deleted_at=gone_at, performed_by="alice")
    # A retried finalizer, and a late queued apply of a newer Running body.
    await store.mark_job_deleted(JobSnapshot.from_body(running), pending_entries(mirror),
                                 deleted_at=gone_at + timedelta(minutes=1),
                                 performed_by="alice")
    later = _job(mirror, "Running", startedAt="2026-01-01T03:00:00Z")
    later["metadata"]["resourceVersion"] = "999999"
    await store.apply_job(JobSnapshot.from_body(later), pending_entries(mirror))

    [row] = await _control(migrated_url)
    assert (row["status"], row["deleted_at"], row["completed_at"]) == (
        "Deleted", gone_at, gone_at)
    assert row["started_at"] == AT
    assert row["updated_at"] >= row["created_at"]
    assert [(r["action"], r["phase"]) for r in await _audit(migrated_url)] == [
        ("started", "Running"), ("delete", "Running")]


async def test_dropped_entries_leave_one_marker_row(store: MirrorStore,
                                                    migrated_url: str) -> None:
    mirror = None
    for n in range(6):
        mirror = append_entry(mirror, "priority_change", "bob", None, {"n": n}, AT, limit=4)

    for _ in range(2):
        await store.apply_job(JobSnapshot.from_body(_job(mirror, "Pending")),
                              pending_entries(mirror))

    rows = await _audit(migrated_url)
    assert [r["idempotency_key"] for r in rows] == [
        "uid-1:dropped:2", "uid-1:3", "uid-1:4", "uid-1:5", "uid-1:6"]
    assert rows[0]["action"] == "mirror_entries_dropped"
    assert rows[0]["metadata"] == {"count": 2, "lastSeq": 2}


async def test_schedule_row_applies_only_newer_generation(store: MirrorStore,
                                                          migrated_url: str) -> None:
    async def row() -> dict[str, Any]:
        [found] = await fetch(migrated_url, "SELECT * FROM sync_job_schedules")
        return found

    await store.apply_schedule(ScheduleSnapshot.from_body(
        schedule_body("sched-1", "quran", generation=2, resource_version=200,
                      schedule="0 4 * * *")))
    # An older generation (a replayed event) changes nothing ...
    await store.apply_schedule(ScheduleSnapshot.from_body(
        schedule_body("sched-1", "quran", generation=1, resource_version=100,
                      schedule="0 3 * * *", suspend=True)))
    assert ((await row())["cron_expression"], (await row())["suspended"]) == ("0 4 * * *", False)

    # ... nor does the same version again ...
    await store.apply_schedule(ScheduleSnapshot.from_body(
        schedule_body("sched-1", "quran", generation=2, resource_version=200,
                      schedule="0 5 * * *")))
    assert (await row())["cron_expression"] == "0 4 * * *"

    # ... while a status-only change (same generation, newer resourceVersion) applies ...
    await store.apply_schedule(ScheduleSnapshot.from_body(
        schedule_body("sched-1", "quran", generation=2, resource_version=201,
                      schedule="0 4 * * *",
                      status={"lastScheduleTime": "2026-01-01T03:00:00Z"})))
    assert (await row())["last_schedule_time"] == AT

    # ... and so does a newer generation.
    await store.apply_schedule(ScheduleSnapshot.from_body(
        schedule_body("sched-1", "quran", generation=3, resource_version=300,
                      schedule="0 4 * * *", suspend=True)))
    latest = await row()
    assert (latest["suspended"], latest["generation"], latest["resource_version"]) == (
        True, 3, 300)
    assert latest["time_zone"] == "Asia/Riyadh"
    assert latest["concurrency_policy"] == "Forbid"


async def test_schedule_audit_entries_and_deletion_are_stored_once(
    store: MirrorStore, migrated_url: str,
) -> None:
    mirror = append_entry(None, "schedule_toggle", "alice", None, {"suspend": True}, AT)
    body = schedule_body("sched-1", "quran", generation=2, resource_version=20, suspend=True,
                         status={"mirror": mirror})
    snapshot = ScheduleSnapshot.from_body(body)

    await store.apply_schedule(snapshot, pending_entries(mirror))
    for _ in range(2):
        await store.mark_schedule_deleted(snapshot, pending_entries(mirror),
                                          deleted_at=AT, performed_by="bob")

    rows = await fetch(migrated_url, "SELECT job_uid, job_id, action, performed_by "
                                     "FROM sync_job_audit_logs ORDER BY id")
    assert rows == [
        {"job_uid": "sched-1", "job_id": "content/quran", "action": "schedule_toggle",
         "performed_by": "alice"},
        {"job_uid": "sched-1", "job_id": "content/quran", "action": "delete",
         "performed_by": "bob"},
    ]
    [schedule] = await fetch(migrated_url, "SELECT deleted_at FROM sync_job_schedules")
    assert schedule["deleted_at"] == AT


async def test_nul_characters_are_stored_as_replacement_characters(
    store: MirrorStore, migrated_url: str,
) -> None:
    mirror = append_entry(None, "failed", "system", "Failed", {"stderr": "bad\x00byte"}, AT)
    body = _job(mirror, "Failed", error="exit 3: \x00")

    await store.apply_job(JobSnapshot.from_body(body), pending_entries(mirror))

    [audit] = await _audit(migrated_url)
    assert audit["metadata"] == {"stderr": "bad\ufffdbyte"}
    assert (await _control(migrated_url))[0]["error_message"] == "exit 3: \ufffd"


async def test_ping_answers_when_the_database_is_up(store: MirrorStore, migrated_url: str) -> None:
    database = make_url(migrated_url).database

    async def store_sessions() -> int:
        [row] = await fetch(migrated_url, "SELECT count(*) AS n FROM pg_stat_activity "
                                          "WHERE datname = :db AND pid <> pg_backend_pid()",
                            db=database)
        return int(row["n"])

    assert await store_sessions() == 0  # the store connects lazily
    await store.ping()  # answers: returns without raising
    # The answer came from this database: the store's pooled session is still there.
    assert await store_sessions() == 1


async def test_ping_raises_a_connection_error_when_the_database_is_unreachable(
        migrated_url: str) -> None:
    closed = make_url(migrated_url).set(port=free_port())
    down = MirrorStore(closed.render_as_string(hide_password=False), connect_timeout=5)
    try:
        with pytest.raises(Exception) as failed:  # noqa: PT011 - the kind is checked below
            await down.ping()
    finally:
        await down.close()
    # What the writer's backoff and the readiness probe take as "the database is down".
    assert is_connection_error(failed.value), repr(failed.value)
