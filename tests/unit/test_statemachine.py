"""Every transition of the SyncJob state machine, as pure logic (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync_operator.api.common import Phase
from sync_operator.api.syncjob import SyncJobSpec
from sync_operator.syncjob.statemachine import (
    CreateJob,
    Decision,
    JobObservation,
    Observation,
    SetControl,
    SuspendJob,
    Timeouts,
    decide,
)
from sync_runner.contract import Checkpoint, Progress, RunnerState, RunnerStatus

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TIMEOUTS = Timeouts(pause_grace_seconds=60, cancel_grace_seconds=30)


def job(*, suspended: bool = False, active: int = 1, failed: int = 0, complete: bool = False,
        failed_reason: str | None = None, failed_message: str | None = None) -> JobObservation:
    return JobObservation("sj-1234abcd", suspended, active, failed, 0 if not complete else 1,
                          complete, failed_reason, failed_message)


def runner(state: RunnerState, done: int = 10, acked: int = 0, **extra: Any) -> RunnerStatus:
    extra.setdefault("heartbeat_at", NOW.timestamp())
    extra.setdefault("started_at", NOW.timestamp() - 10)
    return RunnerStatus(state=state, progress=Progress(done=done, total=100, unit="items",
                                                       updated_at=NOW.timestamp()),
                        acked_generation=acked, **extra)


def observe(phase: str | None = None, *, spec: dict[str, Any] | None = None,
            status: dict[str, Any] | None = None, now: datetime = NOW,
            **kwargs: Any) -> Decision:
    full_status = dict(status or {})
    if phase:
        full_status["phase"] = phase
    return decide(Observation(
        generation=2, spec=SyncJobSpec.model_validate({"jobType": "quran", **(spec or {})}),
        status=full_status, now=now, **kwargs), TIMEOUTS)


def condition(decision: Decision, ctype: str) -> dict[str, Any]:
    return {c["type"]: c for c in decision.status["conditions"]}[ctype]


def control(decision: Decision) -> SetControl:
    [action] = [a for a in decision.actions if isinstance(a, SetControl)]
    return action


def requested(paused: bool = False, cancel: bool = False, generation: int = 1,
              seconds_ago: float = 0) -> dict[str, Any]:
    at = (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"paused": paused, "cancel": cancel, "generation": generation, "requestedAt": at}


def test_new_job_is_queued_and_waits_without_a_grant() -> None:
    decision = observe(None)
    assert decision.phase == Phase.QUEUED
    assert decision.actions == ()
    admitted = condition(decision, "Admitted")
    assert (admitted["status"], admitted["reason"], admitted["message"]) == (
        "False", "Queued", "waiting for capacity")
    assert decision.status["observedGeneration"] == 2
    assert [n.audit for n in decision.notes] == ["queued"]


def test_a_waiting_job_is_not_rewritten_while_it_waits() -> None:
    """Its place in line is computed on read: nothing in its status moves as others are
    admitted ahead of it, so a long queue costs no writes."""
    first = observe(None)
    again = observe("Queued", status=first.status)
    assert again.status == first.status
    assert again.notes == ()


def test_granted_job_creates_its_job_and_runs() -> None:
    decision = observe("Queued", granted=True, spec={"timeoutMinutes": 10})
    assert decision.phase == Phase.RUNNING
    assert decision.actions == (CreateJob(remaining_seconds=600),)
    assert decision.status["startedAt"] == "2026-11-25T12:00:00Z"
    assert condition(decision, "Admitted")["status"] == "True"
    assert [n.reason for n in decision.notes] == ["Admitted"]


def test_paused_pending_job_is_held_without_a_job() -> None:
    decision = observe(None, spec={"paused": True}, granted=True)
    assert decision.phase == Phase.PAUSED
    assert decision.actions == ()
    assert condition(decision, "Paused")["reason"] == "HeldWhilePaused"


def test_pause_of_a_running_job_asks_the_runner_first() -> None:
    decision = observe("Running", spec={"paused": True}, job=job(),
                       runner=runner(RunnerState.RUNNING))
    assert decision.phase == Phase.PAUSING
    assert control(decision).control.paused is True
    assert control(decision).control.generation == 1
    assert not any(isinstance(a, SuspendJob) for a in decision.actions)
    assert decision.requeue_after == 60


def test_acknowledged_pause_suspends_the_job_and_records_the_checkpoint() -> None:
    started = (NOW - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    decision = observe(
        "Pausing", spec={"paused": True}, job=job(),
        status={"control": requested(paused=True, seconds_ago=2), "runStartedAt": started,
                "runSeconds": 30},
        runner=runner(RunnerState.PAUSED, done=42, acked=1),
        checkpoint=Checkpoint(data={"next": 42}, progress=Progress(done=42),
                              saved_at=NOW.timestamp()))
    assert decision.phase == Phase.PAUSED
    assert SuspendJob() in decision.actions
    assert decision.status["runSeconds"] == 120.0  # 30 before + 90 of this run
    assert "runStartedAt" not in decision.status
    assert decision.status["progress"]["done"] == 42
    assert decision.status["checkpoint"]["done"] == 42
    assert condition(decision, "Paused")["reason"] == "PausedAtCheckpoint"


def test_an_ack_for_an_older_request_does_not_count() -> None:
    decision = observe("Pausing", spec={"paused": True}, job=job(),
                       status={"control": requested(paused=True, generation=3)},
                       runner=runner(RunnerState.PAUSED, acked=2))
    assert decision.phase == Phase.PAUSING


def test_pause_without_ack_within_the_grace_period_suspends_anyway() -> None:
    decision = observe("Pausing", spec={"paused": True}, job=job(),
                       status={"control": requested(paused=True, seconds_ago=61)},
                       runner=runner(RunnerState.RUNNING))
    assert decision.phase == Phase.PAUSED
    assert SuspendJob() in decision.actions
    assert condition(decision, "Paused")["reason"] == "Interrupted"
    assert any(n.warning for n in decision.notes)


def test_unpause_while_pausing_goes_back_to_running() -> None:
    decision = observe("Pausing", job=job(), status={"control": requested(paused=True)},
                       runner=runner(RunnerState.RUNNING))
    assert decision.phase == Phase.RUNNING
    assert (control(decision).control.paused, control(decision).control.generation) \
        == (False, 2)


def test_resume_of_a_paused_job_queues_it_and_restarts_with_the_remaining_deadline() -> None:
    paused = {"control": requested(paused=True), "runSeconds": 200}
    queued = observe("Paused", job=job(suspended=True, active=0), status=paused,
                     spec={"timeoutMinutes": 10})
    assert queued.phase == Phase.QUEUED
    assert control(queued).control.paused is False
    running = observe("Queued", job=job(suspended=True, active=0), status=queued.status,
                      spec={"timeoutMinutes": 10}, granted=True)
    assert running.phase == Phase.RUNNING
    assert CreateJob(remaining_seconds=400) in running.actions


def test_cancel_of_a_paused_job_ends_at_once() -> None:
    decision = observe("Paused", spec={"paused": True, "cancel": True},
                       job=job(suspended=True, active=0))
    assert decision.phase == Phase.CANCELLED
    assert condition(decision, "Cancelled")["reason"] == "CancelledByUser"
    assert decision.status["cancelledAt"] == "2026-11-25T12:00:00Z"


def test_cancel_of_a_running_job_is_cooperative_then_acknowledged() -> None:
    asking = observe("Running", spec={"cancel": True}, job=job(),
                     runner=runner(RunnerState.RUNNING))
    assert asking.phase == Phase.CANCELLING
    assert control(asking).control.cancel is True
    assert asking.requeue_after == 30
    done = observe("Cancelling", spec={"cancel": True}, job=job(), status=asking.status,
                   runner=runner(RunnerState.CANCELLED, acked=1))
    assert done.phase == Phase.CANCELLED
    assert SuspendJob() in done.actions
    assert condition(done, "Cancelled")["reason"] == "CancelledByUser"


def test_cancel_is_forced_after_the_grace_period() -> None:
    decision = observe("Cancelling", spec={"cancel": True}, job=job(),
                       status={"control": requested(cancel=True, seconds_ago=31)},
                       runner=runner(RunnerState.RUNNING))
    assert decision.phase == Phase.CANCELLED
    assert SuspendJob() in decision.actions
    assert condition(decision, "Cancelled")["reason"] == "ForcedCancel"


def test_completed_job_succeeds_with_the_runners_summary() -> None:
    decision = observe("Running", job=job(complete=True, active=0),
                       runner=runner(RunnerState.SUCCEEDED, done=100, warnings=2,
                                     summary={"counts": {"upserted": 100}}))
    assert decision.phase == Phase.SUCCEEDED
    assert decision.status["progress"]["percent"] == 100
    assert decision.status["result"] == {"counts": {"upserted": 100}}
    assert condition(decision, "Complete")["message"] == "completed with 2 warning(s)"


@pytest.mark.parametrize(("job_reason", "runner_summary", "reason"), [
    ("DeadlineExceeded", {}, "DeadlineExceeded"),
    ("BackoffLimitExceeded", {}, "BackoffLimitExceeded"),
    ("PodFailurePolicy", {"reason": "PrerequisitesMissing"}, "PrerequisitesMissing"),
    ("PodFailurePolicy", {}, "FatalError"),
])
def test_failed_job_fails_with_the_reason_a_person_can_act_on(
        job_reason: str, runner_summary: dict[str, Any], reason: str) -> None:
    decision = observe("Running", job=job(failed_reason=job_reason, failed=1, active=0),
                       spec={"timeoutMinutes": 5},
                       runner=runner(RunnerState.FAILED, error="only 10 cities",
                                     summary=runner_summary))
    assert decision.phase == Phase.FAILED
    assert condition(decision, "Failed")["reason"] == reason
    assert decision.status["error"]


def test_duplicate_dedup_key_ends_cancelled_pointing_at_the_active_job() -> None:
    decision = observe(None, spec={"dedupKey": "k"}, duplicate_of="first")
    assert decision.phase == Phase.CANCELLED
    assert decision.status["duplicateOf"] == "first"
    assert condition(decision, "Cancelled")["reason"] == "Duplicate"


def test_terminal_phases_stay_and_a_cancelled_jobs_pod_is_stopped() -> None:
    assert observe("Succeeded", job=job(complete=True, active=0)).actions == ()
    cancelled = observe("Cancelled", spec={"cancel": True}, job=job())
    assert cancelled.phase == Phase.CANCELLED
    assert cancelled.actions == (SuspendJob(),)


def test_deciding_twice_on_the_same_world_asks_for_the_same_thing() -> None:
    first = observe("Running", spec={"paused": True}, job=job(),
                    runner=runner(RunnerState.RUNNING))
    again = observe("Pausing", spec={"paused": True}, job=job(), status=first.status,
                    runner=runner(RunnerState.RUNNING))
    assert control(again).control == control(first).control  # no new generation
    assert again.notes == ()
    assert again.phase == Phase.PAUSING


def test_running_job_leaves_progress_to_the_relay_and_recreates_a_missing_job() -> None:
    """One writer per field: while it runs, status.progress is the progress relay's, so a
    reconcile (a Job event, a heartbeat check) never rewrites it."""
    stored = {"progress": {"done": 10, "total": 100, "percent": 10}}
    decision = observe("Running", job=None, status=stored,
                       runner=runner(RunnerState.RUNNING, done=30))
    assert decision.phase == Phase.RUNNING
    assert decision.status["progress"] == stored["progress"]
    assert any(isinstance(a, CreateJob) for a in decision.actions)


def test_a_silent_runner_is_reported_as_not_progressing_once() -> None:
    silent = runner(RunnerState.RUNNING, heartbeat_at=(NOW - timedelta(seconds=61)).timestamp())
    first = observe("Running", job=job(), runner=silent)
    progressing = condition(first, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "HeartbeatStale")
    assert [(n.reason, n.warning) for n in first.notes] == [("HeartbeatStale", True)]
    again = observe("Running", job=job(), runner=silent, status=first.status)
    assert again.notes == ()  # one Warning per stall, not one per look
    beating = observe("Running", job=job(), runner=runner(RunnerState.RUNNING),
                      status=first.status)
    assert condition(beating, "Progressing")["status"] == "True"
    assert beating.requeue_after == 60


def test_the_stale_report_of_a_pod_stopped_before_a_resume_is_not_a_stall() -> None:
    old_pod = runner(RunnerState.PAUSED, heartbeat_at=(NOW - timedelta(hours=1)).timestamp(),
                     started_at=(NOW - timedelta(hours=2)).timestamp())
    resumed = observe("Running", job=job(), runner=old_pod,
                      status={"runStartedAt": "2026-11-25T11:59:50Z"})
    assert resumed.notes == ()
    assert all(c["type"] != "Progressing" for c in resumed.status.get("conditions", []))


def test_a_queued_job_whose_job_already_runs_is_running() -> None:
    decision = observe("Queued", job=job(active=1), granted=False)
    assert decision.phase == Phase.RUNNING
    assert not any(isinstance(a, CreateJob) for a in decision.actions)


def test_a_very_long_runner_error_is_cut_to_fit_the_schema() -> None:
    decision = observe("Running", job=job(failed_reason="BackoffLimitExceeded", active=0),
                       runner=runner(RunnerState.FAILED, error="x" * 100_000))
    assert len(decision.status["error"]) <= 4096
    assert len(condition(decision, "Failed")["message"]) <= 4096


def test_a_new_job_granted_at_once_runs_in_its_first_decision() -> None:
    decision = observe(None, granted=True)
    assert decision.phase == Phase.RUNNING
    assert any(isinstance(a, CreateJob) for a in decision.actions)
    assert [n.audit for n in decision.notes] == ["queued", "started"]


def test_a_pending_job_with_room_starts_in_one_write_and_one_event() -> None:
    """Pending straight to Running: the Job's name, the first attempt and Progressing are
    written with the transition (not by later writes when the Job and the first heartbeat
    appear); "queued" is audited but is no Event of its own."""
    decision = observe(None, granted=True, job_name="sj-1234abcd")
    assert decision.phase == Phase.RUNNING
    assert decision.status["jobRef"] == "sj-1234abcd"
    assert decision.status["attempts"] == 1
    assert condition(decision, "Progressing")["status"] == "True"
    assert [(n.reason, n.audit, n.event) for n in decision.notes] == [
        ("Queued", "queued", False), ("Admitted", "started", True)]
    # The Job appears, then the runner's first heartbeat: nothing more to write.
    created = observe("Running", status=decision.status, job=job(), job_name="sj-1234abcd")
    assert not created.changed
    beating = observe("Running", status=created.status, job=job(), job_name="sj-1234abcd",
                      runner=runner(RunnerState.RUNNING))
    assert not beating.changed


def test_a_waiting_job_is_queued_without_an_event() -> None:
    decision = observe(None, granted=False)
    assert decision.phase == Phase.QUEUED
    assert [(n.reason, n.event) for n in decision.notes] == [("Queued", False)]


def test_a_runner_that_never_reports_goes_stale_from_the_start_of_its_run() -> None:
    """No report from this run's pod (a bad image, say) is a stall once the heartbeat limit
    has passed since the run started; a Redis outage is not (nothing could be read)."""
    status = {"runStartedAt": "2026-11-25T11:58:00Z"}  # two minutes before NOW
    silent = observe("Running", job=job(), status=status)
    progressing = condition(silent, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "HeartbeatStale")
    assert "since the run started" in progressing["message"]
    assert [(n.reason, n.warning) for n in silent.notes] == [("HeartbeatStale", True)]
    again = observe("Running", job=job(), status=silent.status,
                    now=NOW + timedelta(seconds=60))
    assert not again.changed  # one write and one Warning per stall
    assert again.notes == ()
    outage = observe("Running", job=job(), status=status, runner_reachable=False)
    assert outage.notes == ()
    assert "conditions" not in outage.status
    recent = observe("Running", job=job(), status={"runStartedAt": "2026-11-25T11:59:30Z"})
    assert recent.notes == ()
