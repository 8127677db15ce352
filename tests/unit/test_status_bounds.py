"""Every string the operator copies from the runner, a task or the Job controller into a
SyncJob's status fits the schema (api/bounds.py), so no status write is refused for it.

The check is the schema itself: SyncJobStatus is the model the CRD is generated from,
so a decided status it accepts is one the API server accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sync_operator.api.bounds import (
    ELLIPSIS,
    PROGRESS_MESSAGE_MAX,
    PROGRESS_UNIT_MAX,
    RESULT_MAX_BYTES,
    bounded_result,
    clip,
    clip_middle,
    condition_reason,
    is_reason,
)
from sync_operator.api.common import Phase
from sync_operator.api.syncjob import SyncJobSpec, SyncJobStatus
from sync_operator.syncjob.statemachine import (
    Decision,
    JobObservation,
    Observation,
    Timeouts,
    decide,
    progress_status,
)
from sync_runner.contract import Progress, RunnerState, RunnerStatus

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def runner(state: RunnerState, *, unit: str = "items", message: str = "",
           **extra: Any) -> RunnerStatus:
    return RunnerStatus(state=state, heartbeat_at=NOW.timestamp(),
                        started_at=NOW.timestamp() - 10,
                        progress=Progress(done=10, total=100, unit=unit, message=message,
                                          updated_at=NOW.timestamp()), **extra)


def failed_job(reason: str = "PodFailurePolicy", message: str | None = None) -> JobObservation:
    return JobObservation("sj-1234abcd", False, 0, 1, 0, False, reason, message)


def observe(phase: str, **kwargs: Any) -> Decision:
    return decide(Observation(generation=1, spec=SyncJobSpec(job_type="quran"),
                              status={"phase": phase}, now=NOW, **kwargs), Timeouts())


def valid(decision: Decision) -> SyncJobStatus:
    """The decided status, validated against the schema (raises if it would be refused)."""
    return SyncJobStatus.model_validate(decision.status)


def failed_reason(decision: Decision) -> str:
    return str({c["type"]: c for c in decision.status["conditions"]}["Failed"]["reason"])


# -- the helper -------------------------------------------------------------------------


def test_clip_keeps_what_fits_and_marks_what_it_cut() -> None:
    assert clip("items", 64) == "items"
    assert clip("x" * 64, 64) == "x" * 64
    cut = clip("x" * 65, 64)
    assert len(cut) == 64
    assert cut.endswith(ELLIPSIS)


def test_clip_middle_keeps_both_ends_and_says_how_much_was_cut() -> None:
    text = "start " + "x" * 10_000 + " end"
    cut = clip_middle(text, 200)
    assert len(cut) <= 200
    assert cut.startswith("start ")
    assert cut.endswith(" end")
    assert "10010 characters" in cut
    assert clip_middle("short", 200) == "short"


@pytest.mark.parametrize(("given", "expected"), [
    ("PrerequisitesMissing", "PrerequisitesMissing"),  # valid: kept as it is
    ("source_timeout:dns", "source_timeout:dns"),      # the pattern allows _ , :
    ("source timeout", "SourceTimeout"),
    ("rate-limited by upstream!", "RateLimitedByUpstream"),
    ("ends with a colon:", "EndsWithAColon"),
    ("404 not found", "FatalError"),  # cannot start with a digit: the fallback
    ("", "FatalError"),
    (None, "FatalError"),
    ("!!!", "FatalError"),
    ("x" * 2000, "X" + "x" * 1023),   # clipped to the schema's 1024
])
def test_condition_reason_is_always_valid(given: Any, expected: str) -> None:
    reason = condition_reason(given, fallback="FatalError")
    assert reason == expected
    assert is_reason(reason)


def test_condition_reason_refuses_an_invalid_fallback() -> None:
    with pytest.raises(ValueError, match="fallback"):
        condition_reason("x", fallback="not valid")


def test_a_big_result_is_replaced_by_a_note_of_its_size() -> None:
    small = {"counts": {"upserted": 3}}
    assert bounded_result(small) == small
    big = {"rows": ["r" * 100] * 1000, "counts": 1}
    note = bounded_result(big)
    assert note["truncated"] is True
    assert note["bytes"] > RESULT_MAX_BYTES
    assert note["keys"] == ["rows", "counts"]


# -- every copy point in the state machine ----------------------------------------------


def test_a_long_progress_unit_and_message_are_clipped_to_the_schema() -> None:
    report = runner(RunnerState.RUNNING, unit="u" * 500, message="m" * 50_000)
    progress = progress_status(report, None)
    assert len(progress["unit"]) == PROGRESS_UNIT_MAX
    assert len(progress["message"]) == PROGRESS_MESSAGE_MAX
    assert progress["unit"].endswith(ELLIPSIS)

    # A transition writes it too (the relay does while the job runs): still valid.
    job = JobObservation("sj-1234abcd", False, 0, 0, 1, True, None, None)
    decision = observe("Running", job=job, runner=runner(
        RunnerState.SUCCEEDED, unit="u" * 500, message="m" * 50_000))
    assert decision.phase == Phase.SUCCEEDED
    final = valid(decision).progress
    assert final is not None
    assert len(final.unit) == PROGRESS_UNIT_MAX


def test_a_task_failure_reason_that_is_no_condition_reason_becomes_camel_case() -> None:
    decision = observe("Running", job=failed_job(), runner=runner(
        RunnerState.FAILED, error="boom", summary={"reason": "source unreachable (dns)"}))
    assert decision.phase == Phase.FAILED
    assert failed_reason(decision) == "SourceUnreachableDns"
    valid(decision)
    # The Event and the audit entry carry the same, valid reason.
    assert [n.reason for n in decision.notes] == ["SourceUnreachableDns"]


def test_an_unusable_task_failure_reason_falls_back_to_fatal_error() -> None:
    decision = observe("Running", job=failed_job(), runner=runner(
        RunnerState.FAILED, error="boom", summary={"reason": "500"}))
    assert failed_reason(decision) == "FatalError"
    valid(decision)


def test_long_runner_errors_and_job_messages_fit_status_error_and_conditions() -> None:
    decision = observe("Running", job=failed_job("BackoffLimitExceeded"),
                       runner=runner(RunnerState.FAILED, error="e" * 100_000))
    status = valid(decision)
    assert status.error is not None
    assert len(status.error) <= 4096
    assert ELLIPSIS in status.error

    decision = observe("Running", job=failed_job("SomethingNew", "j" * 100_000))
    status = valid(decision)
    assert failed_reason(decision) == "JobFailed"
    assert status.error is not None
    assert len(status.error) <= 4096


def test_a_huge_runner_summary_does_not_go_into_status_whole() -> None:
    job = JobObservation("sj-1234abcd", False, 0, 0, 1, True, None, None)
    decision = observe("Running", job=job, runner=runner(
        RunnerState.SUCCEEDED, unit="u" * 100, summary={"rows": ["r" * 1000] * 100}))
    assert decision.phase == Phase.SUCCEEDED
    result = valid(decision).result
    assert result is not None
    assert result == {"truncated": True, "bytes": result["bytes"], "keys": ["rows"]}
