"""kubectl-sync's formatting as pure functions: ages, ETAs, bars, rows, detail lines, bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync_operator.api import Phase, ProgressStatus, SyncJob, SyncSchedule
from sync_operator.api.requests import (
    INSTANTIATE_ANNOTATION,
    SCHEDULE_LABEL,
    job_from_schedule,
    manual_job_name,
    new_syncjob,
)
from sync_operator.cli import humanize, progressbar, rows
from sync_operator.cli.errors import UsageError
from sync_operator.cli.params import parse_params
from sync_operator.cli.queueview import QueueSpot

NOW = datetime(2026, 3, 14, 15, 30, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(name: str = "q1", phase: str | None = "Running", *, spec: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None, **status: Any) -> SyncJob:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": ago(300),
                     **(metadata or {})},
        "spec": {"jobType": "quran", **(spec or {})},
        "status": {**({"phase": phase} if phase else {}), **status},
    }
    return SyncJob.model_validate(body)


def queued(message: str = "waiting for capacity") -> SyncJob:
    """A Queued job as the operator leaves it: one condition, written once, no position."""
    return job(phase="Queued", conditions=[{
        "type": "Admitted", "status": "False", "reason": "Queued", "message": message,
        "lastTransitionTime": ago(30)}])


def spot(position: int, in_type: int = 1, holding_type: int = 1,
         holding_total: int = 1) -> QueueSpot:
    """Where queueview (tested in test_cli_queue.py) says a waiting quran job stands."""
    return QueueSpot("quran", position, in_type, holding_type, holding_total)


# -- humanize ---------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"),
    (125, "2m5s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (50 * 3600, "2d2h"),
    (8 * 86400, "8d"), (3 * 365 * 86400, "3y"), (3 * 365 * 86400 + 86400, "3y1d"),
    (9 * 365 * 86400, "9y"),
])
def test_ages_read_like_kubectl(seconds: float, text: str) -> None:
    assert humanize.human_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (-3, "0s"), (44.6, "45s"), (65, "1m05s"), (3599, "59m59s"), (3600, "1h00m"),
    (7380, "2h03m"), (90000, "1d01h"),
])
def test_eta_counts_down_with_seconds_precision(seconds: float, text: str) -> None:
    assert humanize.eta_text(seconds) == text


def test_relative_times_and_timestamps() -> None:
    assert humanize.relative(NOW + timedelta(hours=3), NOW) == "in 3h"
    assert humanize.relative(ago(300), NOW) == "5m ago"
    assert humanize.relative(None, NOW) == "<none>"
    assert humanize.age(None, NOW) == "<unknown>"
    assert humanize.age(ago(61), NOW) == "61s"
    assert humanize.timestamp(ago(90), NOW) == "2026-03-14T15:28:30Z (90s ago)"
    assert humanize.parse_time("not a time") is None


# -- progress bar -----------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "text"), [
    (0.0, "░░░░░░░░░░"), (0.025, "▎░░░░░░░░░"), (0.04, "▍░░░░░░░░░"), (0.05, "▌░░░░░░░░░"),
    (0.5, "█████░░░░░"), (0.55, "█████▌░░░░"),
    (0.99, "█████████▉"), (1.0, "██████████"), (1.7, "██████████"), (-1, "░░░░░░░░░░"),
])
def test_bar_has_fixed_width_and_eighth_block_resolution(fraction: float, text: str) -> None:
    assert progressbar.bar(fraction, 10) == text
    assert len(progressbar.bar(fraction, 7)) == 7


def test_percent_comes_from_the_report_or_from_done_over_total() -> None:
    assert progressbar.percent_of(None) is None
    assert progressbar.percent_of(ProgressStatus(done=3)) is None
    assert progressbar.percent_of(ProgressStatus(done=3, total=12)) == 25
    assert progressbar.percent_of(ProgressStatus(percent=40, done=3, total=12)) == 40


def test_progress_cell_and_counts() -> None:
    assert progressbar.progress_cell(None) == "-"
    assert progressbar.progress_cell(ProgressStatus(percent=55)) == "█████▌░░░░  55%"
    assert progressbar.progress_cell(ProgressStatus(percent=100), 4) == "████ 100%"
    assert progressbar.counts(ProgressStatus(done=21, total=50, unit="items")) == "21/50 items"
    assert progressbar.counts(ProgressStatus(done=21)) == "21"
    assert progressbar.counts(ProgressStatus(percent=5)) == ""


def test_eta_ages_since_the_report_and_never_goes_negative() -> None:
    reported = ProgressStatus(eta_seconds=100, updated_at=NOW - timedelta(seconds=30))
    assert progressbar.eta_left(reported, NOW) == 70
    assert progressbar.eta_left(reported, NOW + timedelta(hours=1)) == 0
    assert progressbar.eta_left(ProgressStatus(eta_seconds=12), NOW) == 12
    assert progressbar.eta_left(ProgressStatus(percent=5), NOW) is None


# -- list rows --------------------------------------------------------------------------


def test_running_job_row() -> None:
    running = job(progress={"percent": 40, "done": 4, "total": 10, "unit": "items",
                            "etaSeconds": 75, "updatedAt": ago(10), "message": "surah 4"},
                  attempts=1, jobRef="q1-abc")
    row = rows.job_row(running, NOW)
    assert row.cells() == ["q1", "quran", "Running", "████░░░░░░  40%", "5", "5m"]
    assert row.cells(wide=True)[6:] == ["1m05s", "1", "q1-abc", "surah 4"]
    assert row.cells(namespace=True)[0] == "ns"
    assert rows.job_headers(wide=True, namespace=True) == [
        "NAMESPACE", "NAME", "TYPE", "PHASE", "PROGRESS", "PRIORITY", "AGE", "ETA",
        "ATTEMPTS", "JOB", "MESSAGE"]


def test_queued_job_shows_its_position_and_why() -> None:
    waiting, where = queued(), spot(3, in_type=2, holding_total=4)
    assert rows.phase_text(waiting, where) == "Queued #3"
    assert rows.job_message(waiting, where) == \
        "#3 in line (2nd of its type) · 1 quran running · 4 running in all"
    row = rows.job_row(waiting, NOW, spot=where)
    assert (row.phase_text, row.progress, row.eta, row.job_ref) == \
        ("Queued #3", "-", "", "<none>")
    assert row.message == rows.job_message(waiting, where)


def test_positions_no_longer_come_from_the_status() -> None:
    # An old operator's message is not parsed: without a spot computed on read, no number.
    old = queued("position 3 in the queue: type quran at its limit 1/1")
    assert rows.phase_text(old) == "Queued"
    assert rows.job_message(old) == ""
    assert rows.phase_text(queued()) == "Queued"
    assert "Waiting" not in dict(rows.job_details(queued(), NOW))


def test_a_job_without_status_is_pending_and_a_deleting_one_says_so() -> None:
    fresh = job(phase=None)
    assert rows.phase_of(fresh) == Phase.PENDING
    assert rows.phase_text(fresh) == "Pending"
    going = job(metadata={"deletionTimestamp": ago(1)})
    assert rows.phase_text(going) == "Running (deleting)"


def test_eta_only_while_running() -> None:
    progress = {"percent": 40, "etaSeconds": 30, "updatedAt": ago(0)}
    assert rows.eta_cell(job(progress=progress), NOW) == "30s"
    assert rows.eta_cell(job(phase="Paused", progress=progress), NOW) == ""


def test_message_prefers_error_then_queue_then_pause_then_progress() -> None:
    assert rows.job_message(job(phase="Failed", error="boom\ntrace",
                                progress={"message": "x"})) == "boom"
    assert rows.job_message(job(duplicateOf="q0")) == "duplicate of q0"
    paused = job(phase="Paused", progress={"message": "unit 3"}, conditions=[{
        "type": "Paused", "status": "True", "reason": "PausedAtCheckpoint",
        "message": "paused at a checkpoint; the pod was released"}])
    assert rows.job_message(paused) == "paused at a checkpoint; the pod was released"
    assert rows.job_message(job(progress={"message": "unit 3"})) == "unit 3"
    assert rows.job_message(job()) == ""


def test_phase_summary_in_life_cycle_order() -> None:
    jobs = [job(phase="Succeeded"), job(phase="Running"), queued(), job(phase="Running")]
    assert rows.phase_summary(jobs) == "1 Queued · 2 Running · 1 Succeeded"


# -- watch lines ------------------------------------------------------------------------


def test_watch_line_is_one_plain_line_per_state() -> None:
    running = job(progress={"percent": 40, "done": 4, "total": 10, "unit": "items",
                            "etaSeconds": 6, "updatedAt": ago(0), "message": "surah 4"})
    assert rows.watch_line(running, NOW) == "q1  Running  40%  4/10 items  ETA 6s  surah 4"
    assert rows.watch_line(queued(), NOW, namespace=True, spot=spot(2, 2)) == \
        "ns/q1  Queued #2  -  #2 in line (2nd of its type) · 1 quran running · 1 running in all"


def test_watch_signature_ignores_ages_and_eta_drift() -> None:
    a = job(progress={"percent": 40, "etaSeconds": 60, "updatedAt": ago(10)})
    b = job(progress={"percent": 40, "etaSeconds": 55, "updatedAt": ago(5)},
            metadata={"creationTimestamp": ago(9)})
    c = job(progress={"percent": 41, "etaSeconds": 55, "updatedAt": ago(5)})
    assert rows.watch_signature(a) == rows.watch_signature(b)
    assert rows.watch_signature(a) != rows.watch_signature(c)
    # A waiting job's line changes when its place in line does, though its object did not.
    waiting = queued()
    assert rows.watch_signature(waiting, spot(2)) != rows.watch_signature(waiting, spot(1))
    assert rows.watch_signature(waiting, spot(1)) == rows.watch_signature(waiting, spot(1))


# -- get ----------------------------------------------------------------------------------


def test_details_tell_the_whole_story() -> None:
    done = job(
        phase="Succeeded", spec={"params": {"task": "demo", "items": 3}, "scheduleRef": "daily",
                                 "timeoutMinutes": 30, "priority": 2},
        progress={"percent": 100, "done": 3, "total": 3, "unit": "items",
                  "updatedAt": ago(60)},
        startedAt=ago(200), completedAt=ago(60), attempts=2, jobRef="q1-abc",
        checkpoint={"done": 2, "savedAt": ago(120)}, runSeconds=125, result={"synced": 3})
    lines = dict(rows.job_details(done, NOW, wide=True))
    assert lines["Type"] == "quran"
    assert lines["Priority"] == "2"
    assert lines["Params"] == '{"items":3,"task":"demo"}'
    assert lines["Schedule"] == "daily"
    assert lines["Timeout"] == "30m"
    assert lines["Phase"] == "Succeeded"
    assert lines["Progress"] == "████████████████████ 100%  (3/3 items)"
    assert "ETA" not in lines
    assert lines["Started"] == "2026-03-14T15:26:40Z (3m20s ago)"
    assert lines["Completed"] == "2026-03-14T15:29:00Z (60s ago)"
    assert lines["Attempts"] == "2"
    assert lines["Job"] == "q1-abc"
    assert lines["Checkpoint"] == "2 done, saved 2m ago"
    assert lines["Error"] == "<none>"
    assert lines["Run time"] == "2m05s"
    assert lines["Result"] == '{"synced":3}'
    assert "Run time" not in dict(rows.job_details(done, NOW))


def test_details_of_a_queued_job_without_progress() -> None:
    where = QueueSpot("quran", 1, 1, 0, 4)
    lines = dict(rows.job_details(queued(), NOW, spot=where))
    assert lines["Phase"] == "Queued #1"
    assert lines["Waiting"] == "#1 in line (1st of its type) · no quran running · 4 running in all"
    assert lines["Progress"] == "<none>"
    assert lines["Checkpoint"] == "<none>"


def test_details_of_a_running_job_show_the_eta() -> None:
    running = job(progress={"percent": 10, "etaSeconds": 600, "updatedAt": ago(0)})
    assert dict(rows.job_details(running, NOW))["ETA"] == "10m00s"


def test_condition_rows() -> None:
    assert rows.condition_rows(queued().status.conditions, NOW) == [
        ["Admitted", "False", "Queued", "waiting for capacity", "30s"]]
    assert rows.condition_rows(None, NOW) == []


# -- schedules ----------------------------------------------------------------------------


def schedule(**spec: Any) -> SyncSchedule:
    return SyncSchedule.model_validate({
        "metadata": {"name": "quran-daily", "namespace": "ns", "uid": "u-1",
                     "creationTimestamp": ago(86400 * 3)},
        "spec": {"jobType": "quran", "schedule": "0 3 * * *", "timeZone": "Europe/London",
                 "priority": 1, "jobTemplate": {"params": {"task": "demo"}}, **spec},
        "status": {"nextScheduleTime": (NOW + timedelta(hours=11)).isoformat(),
                   "lastScheduleTime": ago(13 * 3600), "active": [{"name": "a"}]},
    })


def test_schedule_rows() -> None:
    assert rows.schedule_row(schedule(), NOW) == [
        "quran-daily", "quran", "0 3 * * *", "Europe/London", "False", "in 11h", "13h ago",
        "1"]
    suspended = rows.schedule_row(schedule(suspend=True), NOW, wide=True, namespace=True)
    assert suspended[0] == "ns"
    assert suspended[5:7] == ["True", "<none>"]
    assert suspended[9:] == ["1", "Forbid", "1", "<none>", "3d"]
    assert len(rows.schedule_headers(wide=True, namespace=True)) == len(suspended)


# -- bodies -------------------------------------------------------------------------------


def test_new_syncjob_leaves_unset_options_to_the_crd_defaults() -> None:
    body = new_syncjob("quran", generate_name="quran-")
    assert body == {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
                    "metadata": {"generateName": "quran-"}, "spec": {"jobType": "quran"}}
    full = new_syncjob("audio", name="a1", priority=2, params={"items": 3}, timeout_minutes=9,
                       retry_attempts=0, paused=True, dedup_key="k")
    assert full["metadata"] == {"name": "a1"}
    assert full["spec"] == {"jobType": "audio", "priority": 2, "timeoutMinutes": 9,
                            "retryAttempts": 0, "dedupKey": "k", "params": {"items": 3},
                            "paused": True}


def test_manual_job_name_fits_a_dns_label() -> None:
    assert manual_job_name("quran-daily", NOW) == "quran-daily-manual-20260314-153000"
    long = manual_job_name("x" * 80, NOW)
    assert len(long) <= 63
    assert long.endswith("-manual-20260314-153000")
    assert long != manual_job_name("x" * 79 + "y", NOW)


def test_trigger_builds_a_job_like_the_schedule_would() -> None:
    body = job_from_schedule(schedule(timeoutMinutes=20, retryAttempts=1), NOW)
    meta, spec = body["metadata"], body["spec"]
    assert meta["name"] == "quran-daily-manual-20260314-153000"
    assert meta["labels"] == {SCHEDULE_LABEL: "quran-daily"}
    assert meta["annotations"] == {INSTANTIATE_ANNOTATION: "manual"}
    assert meta["ownerReferences"][0]["uid"] == "u-1"
    assert spec == {"jobType": "quran", "priority": 1, "timeoutMinutes": 20, "retryAttempts": 1,
                    "params": {"task": "demo"}, "scheduleRef": "quran-daily"}


def test_params_from_pairs_and_json() -> None:
    assert parse_params(["task=demo", "items=5", "unitSeconds=0.1", "dry=true", "id=007",
                         "tags=[1,2]", "empty="]) == {
        "task": "demo", "items": 5, "unitSeconds": 0.1, "dry": True, "id": "007",
        "tags": [1, 2], "empty": ""}
    assert parse_params(["items=2"], '{"items": 1, "task": "demo"}') == {
        "items": 2, "task": "demo"}
    for bad_pairs, bad_json in ((["novalue"], None), (["=x"], None), ([], "[1]"),
                                ([], "{oops")):
        with pytest.raises(UsageError):
            parse_params(bad_pairs, bad_json)
