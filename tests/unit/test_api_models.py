"""The pydantic models of sync.jobcontrol.io/v1alpha1: defaults, bounds, wire names."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from sync_operator.api import (
    API_VERSION,
    SYNCJOB,
    SYNCJOBS,
    SYNCSCHEDULE,
    AuditEntry,
    ConcurrencyPolicy,
    Condition,
    ConditionType,
    JobType,
    MirrorStatus,
    Phase,
    Reason,
    SyncJob,
    SyncJobSpec,
    SyncJobStatus,
    SyncSchedule,
    SyncScheduleSpec,
)
from sync_operator.api.common import REASON_PATTERN


def test_syncjob_spec_defaults_match_the_design() -> None:
    spec = SyncJobSpec(job_type=JobType.QURAN)
    assert spec.priority == 5
    assert spec.paused is False
    assert spec.cancel is False
    assert spec.retry_attempts == 3
    assert spec.params == {}
    assert spec.timeout_minutes is None
    assert spec.dedup_key is None


def test_spec_reads_camel_case_from_the_wire_and_writes_it_back() -> None:
    body = {"jobType": "prayer", "priority": 2, "dedupKey": "k", "timeoutMinutes": 30,
            "retryAttempts": 0, "scheduleRef": "prayer-times", "params": {"city": "Makkah"}}
    spec = SyncJobSpec.model_validate(body)
    assert spec.job_type is JobType.PRAYER
    assert spec.dedup_key == "k"
    assert spec.to_body() == {**body, "paused": False, "cancel": False}


def test_python_field_names_are_accepted_too() -> None:
    spec = SyncJobSpec(job_type=JobType.AUDIO, retry_attempts=1)
    assert spec.to_body()["retryAttempts"] == 1


@pytest.mark.parametrize("priority", [0, 11, -1])
def test_priority_outside_one_to_ten_is_rejected(priority: int) -> None:
    with pytest.raises(ValidationError):
        SyncJobSpec.model_validate({"jobType": "quran", "priority": priority})


@pytest.mark.parametrize("minutes", [0, 10081])
def test_timeout_outside_one_minute_to_one_week_is_rejected(minutes: int) -> None:
    with pytest.raises(ValidationError):
        SyncJobSpec.model_validate({"jobType": "quran", "timeoutMinutes": minutes})


def test_unknown_job_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        SyncJobSpec.model_validate({"jobType": "poetry"})


def test_models_are_frozen_values() -> None:
    spec = SyncJobSpec(job_type=JobType.QURAN)
    with pytest.raises(ValidationError):
        spec.priority = 1  # type: ignore[misc]


@pytest.mark.parametrize(("phase", "terminal", "holds_pod", "waiting"), [
    (Phase.PENDING, False, False, True),
    (Phase.QUEUED, False, False, True),
    (Phase.RUNNING, False, True, False),
    (Phase.PAUSING, False, True, False),
    (Phase.PAUSED, False, False, False),
    (Phase.CANCELLING, False, True, False),
    (Phase.CANCELLED, True, False, False),
    (Phase.SUCCEEDED, True, False, False),
    (Phase.FAILED, True, False, False),
])
def test_phase_knows_whether_it_is_terminal_and_holds_a_pod(
        phase: Phase, terminal: bool, holds_pod: bool, waiting: bool) -> None:
    assert phase.is_terminal is terminal
    assert phase.holds_pod is holds_pod
    assert phase.is_waiting is waiting


def test_every_status_field_is_optional() -> None:
    assert SyncJobStatus().to_body() == {}
    assert SyncJobStatus.model_validate({}).phase is None


def test_mirror_outbox_keeps_its_wire_shape() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    mirror = MirrorStatus(seq=2, pending=[AuditEntry(
        seq=2, action="paused", performed_by="alice", at=at, phase=Phase.PAUSING,
        details={"from": "Running"})])
    body = SyncJobStatus(mirror=mirror).to_body()["mirror"]
    assert set(body) == {"seq", "pending"}
    assert body["pending"] == [{"seq": 2, "action": "paused", "performedBy": "alice",
                                "at": "2026-01-02T03:04:05Z", "phase": "Pausing",
                                "details": {"from": "Running"}}]


def test_status_with_progress_and_conditions_round_trips() -> None:
    body = {
        "phase": "Running",
        "conditions": [{"type": "Running", "status": "True", "reason": "Started",
                        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 3}],
        "progress": {"percent": 42, "done": 42, "total": 100, "unit": "surah",
                     "etaSeconds": 60, "updatedAt": "2026-01-01T00:01:00Z"},
        "checkpoint": {"savedAt": "2026-01-01T00:00:30Z", "done": 40},
        "runSeconds": 12.5, "jobRef": "a-1234abcd", "attempts": 1,
    }
    status = SyncJobStatus.model_validate(body)
    assert status.phase is Phase.RUNNING
    assert status.run_seconds == 12.5
    assert status.to_body() == body


def test_condition_status_must_be_true_false_or_unknown() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": "Running", "status": "yes"})


def test_condition_reasons_follow_the_metav1_syntax() -> None:
    pattern = re.compile(REASON_PATTERN)
    assert all(pattern.match(reason) for reason in Reason)
    assert all(pattern.match(ctype) for ctype in ConditionType)
    with pytest.raises(ValidationError):
        Condition.model_validate({"type": "Running", "status": "True", "reason": "not ok"})


def test_reasons_named_in_the_brief_exist() -> None:
    names = {"Queued", "Admitted", "PauseRequested", "PausedAtCheckpoint",
             "CancelRequested", "CancelledByUser", "ForcedCancel", "DeadlineExceeded",
             "BackoffLimitExceeded", "Duplicate", "Completed", "PrerequisitesMissing"}
    assert names <= {str(r) for r in Reason}


def test_kinds_give_identifiers_for_kopf_and_the_kube_client() -> None:
    assert SYNCJOB.kopf == ("sync.jobcontrol.io", "v1alpha1", "syncjobs")
    assert SYNCJOB.crd_name == "syncjobs.sync.jobcontrol.io"
    assert SYNCJOBS.path("ns", "a", "status") == (
        "/apis/sync.jobcontrol.io/v1alpha1/namespaces/ns/syncjobs/a/status")
    assert SYNCSCHEDULE.short_names == ("ssched",)
    assert SYNCSCHEDULE.list_kind == "SyncScheduleList"


def test_a_whole_syncjob_body_from_the_api_server_parses() -> None:
    body = {"apiVersion": API_VERSION, "kind": "SyncJob",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u-1", "generation": 2},
            "spec": {"jobType": "hadith", "priority": 3},
            "status": {"phase": "Queued"}}
    job = SyncJob.model_validate(body)
    assert job.spec.job_type is JobType.HADITH
    assert job.status.phase is Phase.QUEUED
    assert job.metadata["uid"] == "u-1"


def test_schedule_spec_defaults_match_the_design() -> None:
    spec = SyncScheduleSpec(job_type=JobType.QURAN, schedule="0 3 * * *")
    assert spec.time_zone == "UTC"
    assert spec.suspend is False
    assert spec.priority == 5
    assert spec.max_concurrency == 1
    assert spec.concurrency_policy is ConcurrencyPolicy.FORBID
    assert spec.successful_jobs_history_limit == 3
    assert spec.failed_jobs_history_limit == 1
    assert spec.job_template.params == {}


@pytest.mark.parametrize("cron", ["0 3 * * *", "0 */6 * * *", "@daily", "0 2 * * 0"])
def test_schedule_accepts_five_field_cron_and_macros(cron: str) -> None:
    SyncScheduleSpec.model_validate({"jobType": "quran", "schedule": cron})


@pytest.mark.parametrize("cron", ["0 3 * *", "", "@fortnightly", "0 0 3 * * * *"])
def test_schedule_rejects_malformed_cron(cron: str) -> None:
    with pytest.raises(ValidationError):
        SyncScheduleSpec.model_validate({"jobType": "quran", "schedule": cron})


def test_a_whole_syncschedule_body_parses() -> None:
    body = {"apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": {"name": "q"},
            "spec": {"jobType": "prayer", "schedule": "0 */6 * * *", "maxConcurrency": 2,
                     "jobTemplate": {"params": {"x": 1}, "dedupKey": "prayer"}},
            "status": {"active": [{"name": "q-1", "uid": "u"}], "activeCount": 1,
                       "nextScheduleTime": "2026-01-01T06:00:00Z"}}
    sched = SyncSchedule.model_validate(body)
    assert sched.spec.job_template.dedup_key == "prayer"
    assert sched.status.active_count == 1
    assert sched.status.next_schedule_time == datetime(2026, 1, 1, 6, tzinfo=UTC)
