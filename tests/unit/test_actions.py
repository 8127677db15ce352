"""Who did what: actions derived from changes, stamped once, moved once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync_operator.audit.actions import (
    STAMP_PREFIX,
    schedule_actions,
    stamp_patch,
    syncjob_actions,
    unseen_actions,
)
from sync_operator.audit.recording import audit_unattributed, move_actions
from sync_operator.syncjob.validation import syncjob_update_error
from sync_operator.syncschedule.validation import schedule_error

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def job(spec: dict[str, Any], status: dict[str, Any] | None = None,
        actions: dict[int, str] | None = None) -> dict[str, Any]:
    """A SyncJob body with stamps {n: "action|details|user"}."""
    annotations = {f"{STAMP_PREFIX}{n}": v for n, v in (actions or {}).items()}
    return {"metadata": {"name": "j", "annotations": annotations},
            "spec": {"jobType": "quran", **spec}, "status": status or {}}


def test_pause_resume_cancel_and_priority_are_recognised() -> None:
    assert syncjob_actions("UPDATE", job({}), job({"paused": True})) == [
        {"action": "pause", "details": {}}]
    assert syncjob_actions("UPDATE", job({"paused": True}), job({})) == [
        {"action": "resume", "details": {}}]
    both = syncjob_actions("UPDATE", job({"priority": 5}), job({"priority": 1, "cancel": True}))
    assert [a["action"] for a in both] == ["cancel", "priority_change"]
    assert both[1]["details"] == {"from": 5, "to": 1}
    assert syncjob_actions("UPDATE", job({}), job({})) == []


def test_schedule_toggle_and_update_are_told_apart() -> None:
    old = {"spec": {"schedule": "0 3 * * *", "suspend": False}}
    new = {"spec": {"schedule": "30 2 * * *", "suspend": True}}
    actions = schedule_actions("UPDATE", old, new)
    assert [a["action"] for a in actions] == ["schedule_toggle", "schedule_update"]
    assert actions[1]["details"]["fields"] == ["schedule"]


def test_stamps_number_actions_after_everything_already_seen() -> None:
    body = job({}, status={"actionsSeen": 7}, actions={7: "pause||alice"})
    patch = stamp_patch(body, body, [{"action": "resume"}], "bob")
    # 7 is audited already: dropped; 8 is the next number.
    assert patch == {f"{STAMP_PREFIX}7": None, f"{STAMP_PREFIX}8": "resume||bob"}


def test_entries_a_request_brings_itself_are_not_kept() -> None:
    stored = job({}, actions={1: "create|jobType=quran,priority=5|alice"})
    forged = job({}, actions={1: "create|jobType=quran,priority=5|mallory",
                              9: "cancel||alice"})
    patch = stamp_patch(stored, forged, [{"action": "pause"}], "mallory")
    assert patch == {f"{STAMP_PREFIX}1": "create|jobType=quran,priority=5|alice",
                     f"{STAMP_PREFIX}9": None, f"{STAMP_PREFIX}2": "pause||mallory"}


def test_a_request_that_is_already_stamped_needs_no_patch() -> None:
    """What the policy stored is what the webhook would write: it then writes nothing."""
    stored = job({}, actions={1: "create|jobType=quran,priority=5|alice"})
    stamped = job({"priority": 2}, actions={1: "create|jobType=quran,priority=5|alice",
                                            2: "priority_change|from=5,to=2|bob"})
    actions = syncjob_actions("UPDATE", stored, stamped)
    assert stamp_patch(stored, stamped, actions, "bob") == {}


def test_malformed_recorded_actions_are_skipped_not_fatal() -> None:
    body = job({}, actions={1: "|x|alice", 2: "pause", 3: "pause||alice"})
    body["metadata"]["annotations"][f"{STAMP_PREFIX}x"] = "pause||bob"
    status = move_actions(body, {}, "Running", NOW)
    [entry] = status["mirror"]["pending"]
    assert (entry["action"], entry["performedBy"]) == ("pause", "alice")
    assert status["actionsSeen"] == 3


def test_actions_are_moved_into_the_outbox_exactly_once() -> None:
    recorded = {1: "pause||alice", 2: "resume||bob"}
    body = job({}, actions=recorded)
    status = move_actions(body, {}, "Running", NOW)
    assert [(e["action"], e["performedBy"]) for e in status["mirror"]["pending"]] == [
        ("pause", "alice"), ("resume", "bob")]
    assert status["actionsSeen"] == 2
    again = move_actions(job({}, status=status, actions=recorded), status, "Running", NOW)
    assert again == status
    assert unseen_actions(job({}, status=status, actions=recorded)) == []


def test_a_change_without_a_stamp_is_audited_as_unknown() -> None:
    before = audit_unattributed(job({"priority": 5}), {}, "Running", NOW)
    assert "mirror" not in before  # first look: nothing to compare with
    after = audit_unattributed(job({"priority": 2}, status=before), before, "Running", NOW)
    [entry] = after["mirror"]["pending"]
    assert (entry["action"], entry["performedBy"]) == ("priority_change", "unknown")
    stamped = job({"priority": 2}, status=before,
                  actions={1: "priority_change|from=5,to=2|alice"})
    assert "mirror" not in audit_unattributed(stamped, before, "Running", NOW)


def test_illegal_updates_are_explained() -> None:
    old = job({"params": {"x": 1}}, status={"phase": "Succeeded"})
    assert syncjob_update_error(old, job({"params": {"y": 1}})) == "spec.params is immutable"
    assert "is Succeeded: changing spec.paused has no effect" in str(
        syncjob_update_error(old, job({"params": {"x": 1}, "paused": True})))
    running = job({}, status={"phase": "Running"})
    assert syncjob_update_error(running, job({"paused": True})) is None


def test_schedule_errors_name_the_bad_part() -> None:
    assert schedule_error({"schedule": "0 3 * * *", "timeZone": "Europe/Berlin"}) is None
    assert "Mars/Olympus" in str(schedule_error({"schedule": "0 3 * * *",
                                                 "timeZone": "Mars/Olympus"}))
    assert schedule_error({"schedule": "61 * * * *"}) is not None


def test_an_unstamped_change_after_a_stamped_one_of_the_same_field_is_still_audited() -> None:
    before = audit_unattributed(job({"priority": 5}), {}, "Running", NOW)
    stamped_then_not = job({"priority": 1}, status=before,
                           actions={1: "priority_change|from=5,to=3|alice"})
    after = audit_unattributed(stamped_then_not, before, "Running", NOW)
    [entry] = after["mirror"]["pending"]
    assert (entry["action"], entry["performedBy"]) == ("priority_change", "unknown")
    assert (entry["details"]["from"], entry["details"]["to"]) == (3, 1)
