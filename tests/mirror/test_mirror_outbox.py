"""status.mirror bookkeeping and reading resources into snapshots (pure, no server)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mirror_helpers import job_body, schedule_body
from pydantic import ValidationError

from sync_operator.audit.outbox import (
    DROPPED_ACTION,
    MAX_PENDING_BYTES,
    AuditEntry,
    append_entry,
    bump_seq,
    drained,
    dropped_count,
    mirror_seq,
    pending_bytes,
    pending_entries,
)
from sync_operator.mirror import JobSnapshot, ScheduleSnapshot

AT = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def test_append_entry_numbers_entries_and_leaves_its_input_untouched() -> None:
    first = append_entry(None, "create", "alice", "Pending", {"priority": 5}, AT)
    frozen = copy.deepcopy(first)
    second = append_entry(first, "pause", "bob", "Running", None, AT + timedelta(seconds=1))

    assert first == frozen
    assert mirror_seq(second) == 2
    assert second["pending"] == [
        {"seq": 1, "action": "create", "performedBy": "alice",
         "at": "2026-01-01T03:00:00.000000Z", "phase": "Pending", "details": {"priority": 5}},
        {"seq": 2, "action": "pause", "performedBy": "bob",
         "at": "2026-01-01T03:00:01.000000Z", "phase": "Running", "details": {}},
    ]


def test_pending_entries_read_back_what_append_entry_wrote() -> None:
    mirror = append_entry(None, "cancel", "carol", "Running", {"reason": "x"}, AT)

    assert pending_entries(mirror) == [AuditEntry(
        seq=1, action="cancel", performed_by="carol", at=AT, phase="Running",
        details={"reason": "x"})]


def test_drained_removes_only_entries_the_mirror_has_stored() -> None:
    mirror = None
    for action in ("create", "admitted", "started"):
        mirror = append_entry(mirror, action, "system", None, None, AT)

    assert [e["seq"] for e in drained(mirror, 2)["pending"]] == [3]
    assert drained(mirror, 2)["seq"] == 3
    assert drained(mirror, 0) == mirror
    assert drained(drained(mirror, 3), 1)["pending"] == []


def test_bump_seq_versions_a_status_change_without_an_audit_entry() -> None:
    mirror = append_entry(None, "started", "system", "Running", None, AT)

    bumped = bump_seq(mirror)

    assert mirror_seq(bumped) == 2
    assert bumped["pending"] == mirror["pending"]


def test_overflowing_entries_are_dropped_oldest_first_and_counted() -> None:
    mirror: dict[str, Any] | None = None
    for n in range(1, 8):
        mirror = append_entry(mirror, "priority_change", "bob", None, {"n": n}, AT, limit=5)
    assert mirror is not None

    assert [e["seq"] for e in mirror["pending"]] == [3, 4, 5, 6, 7]
    assert dropped_count(mirror) == 2
    marker = pending_entries(mirror)[0]
    assert (marker.action, marker.details) == (DROPPED_ACTION, {"count": 2, "lastSeq": 2})
    assert marker.idempotency_key("uid") == "uid:dropped:2"


def test_the_outbox_is_bounded_in_bytes_and_the_oldest_are_counted_as_dropped() -> None:
    mirror: dict[str, Any] | None = None
    for n in range(1, 21):  # about 600 bytes each: 20 of them cannot fit in 4 KiB
        mirror = append_entry(mirror, "schedule_update", "bob", None,
                              {"n": n, "params": "p" * 500}, AT, max_bytes=4096)
        assert pending_bytes(mirror) <= 4096
    assert mirror is not None

    seqs = [e["seq"] for e in mirror["pending"]]
    assert seqs == list(range(seqs[0], 21))  # the newest kept, in order, none skipped
    assert len(seqs) < 20
    # Every entry is accounted for: kept, or counted in the marker up to its seq.
    assert dropped_count(mirror) == seqs[0] - 1
    marker = pending_entries(mirror)[0]
    assert (marker.action, marker.details) == (
        DROPPED_ACTION, {"count": seqs[0] - 1, "lastSeq": seqs[0] - 1})


def test_huge_details_are_summarised_so_the_default_bound_holds() -> None:
    params = {f"key{i}": "v" * 1000 for i in range(100)}  # about 100 KiB per edit
    mirror: dict[str, Any] | None = None
    for _ in range(40):
        mirror = append_entry(mirror, "schedule_update", "alice", None,
                              {"jobTemplate": {"params": params}}, AT)
    assert mirror is not None

    assert pending_bytes(mirror) <= MAX_PENDING_BYTES
    details = mirror["pending"][-1]["details"]
    assert details["truncated"] is True
    assert details["bytes"] > 100_000
    assert details["keys"] == ["jobTemplate"]
    assert len(mirror["pending"]) == 40  # small once summarised: nothing dropped
    assert dropped_count(mirror) == 0


def test_many_mid_sized_entries_overflow_the_default_byte_bound_not_silently() -> None:
    mirror: dict[str, Any] | None = None
    for n in range(1, 101):  # about 20 KiB each, under the per-entry cap: 2 MiB in all
        mirror = append_entry(mirror, "schedule_update", "alice", None,
                              {"n": n, "params": "x" * 20_000}, AT)
    assert mirror is not None

    assert pending_bytes(mirror) <= MAX_PENDING_BYTES
    kept = len(mirror["pending"])
    assert 0 < kept < 100
    assert dropped_count(mirror) + kept == 100
    assert mirror["pending"][-1]["details"]["n"] == 100


def test_action_and_actor_are_clipped_to_the_schema() -> None:
    mirror = append_entry(None, "a" * 100, "u" * 1000, None, None, AT)

    [entry] = mirror["pending"]
    assert len(entry["action"]) == 64
    assert len(entry["performedBy"]) == 512
    assert entry["performedBy"].endswith("…")


def test_append_entry_refuses_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone"):
        append_entry(None, "create", "alice", None, None, datetime(2026, 1, 1))


def test_job_snapshot_reads_a_syncjob_body() -> None:
    mirror = append_entry(None, "started", "system", "Running", None, AT)
    body = job_body("uid-1", "quran-nightly", priority=2, status={
        "phase": "Running", "progress": {"percent": 42.5, "done": 17, "total": 40, "unit": "surah"},
        "startedAt": "2026-01-01T03:00:05Z", "pausedAt": "", "attempts": 1,
        "error": {"message": "retrying after timeout"}, "jobRef": "quran-nightly-1",
        "mirror": mirror,
    })
    body["spec"]["scheduleRef"] = "quran"

    snapshot = JobSnapshot.from_body(body)

    assert snapshot.job_id == "content/quran-nightly"
    assert (snapshot.uid, snapshot.job_type, snapshot.phase, snapshot.priority) == (
        "uid-1", "quran", "Running", 2)
    assert snapshot.progress_percentage == 42.5
    assert snapshot.started_at == AT + timedelta(seconds=5)
    assert snapshot.paused_at is None
    assert (snapshot.attempts, snapshot.error_message, snapshot.seq) == (
        1, "retrying after timeout", 1)
    assert snapshot.metadata == {"scheduleRef": "quran", "jobRef": "quran-nightly-1",
                                 "progress": {"done": 17, "total": 40, "unit": "surah"}}


def test_job_snapshot_of_a_new_syncjob_is_pending_at_seq_zero() -> None:
    snapshot = JobSnapshot.from_body(job_body("uid-2", "prayer-now", job_type="prayer"))

    assert (snapshot.phase, snapshot.seq, snapshot.progress_percentage) == ("Pending", 0, 0.0)


def test_job_snapshot_needs_a_uid() -> None:
    body = job_body("", "nameless")

    with pytest.raises(ValidationError):
        JobSnapshot.from_body(body)


def test_schedule_snapshot_reads_a_syncschedule_body() -> None:
    body = schedule_body("sched-1", "quran", generation=3, resource_version=1234, status={
        "lastScheduleTime": "2026-01-01T03:00:00Z", "nextScheduleTime": "2026-01-02T03:00:00Z",
        "active": [{"name": "quran-29468820"}],
    })

    snapshot = ScheduleSnapshot.from_body(body)

    assert (snapshot.cron_expression, snapshot.time_zone, snapshot.concurrency_policy) == (
        "0 3 * * *", "Asia/Riyadh", "Forbid")
    assert (snapshot.priority, snapshot.max_concurrency, snapshot.suspended) == (1, 1, False)
    assert (snapshot.timeout_minutes, snapshot.retry_attempts) == (120, 3)
    assert (snapshot.generation, snapshot.resource_version) == (3, 1234)
    assert snapshot.last_schedule_time == AT
    assert snapshot.last_successful_time is None
    assert snapshot.metadata == {"active": ["quran-29468820"]}
