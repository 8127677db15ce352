"""Finished jobs beyond the history limits go, oldest first; running jobs always stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync_operator.syncschedule import HistoryEntry, prune_history

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def test_only_the_newest_successes_and_failures_are_kept() -> None:
    jobs = [HistoryEntry(f"ok-{h}", "Succeeded", at(h)) for h in range(5)]
    jobs += [HistoryEntry(f"bad-{h}", "Failed", at(h)) for h in range(3)]
    assert prune_history(jobs, successful_limit=3, failed_limit=1) == [
        "bad-0", "ok-0", "bad-1", "ok-1"]


def test_input_order_does_not_matter() -> None:
    jobs = [("ok-2", "Succeeded", at(2)), ("ok-0", "Succeeded", at(0)),
            ("ok-1", "Succeeded", at(1))]
    assert prune_history(jobs, successful_limit=1, failed_limit=1) == ["ok-0", "ok-1"]


def test_active_jobs_are_never_pruned() -> None:
    jobs = [("run", "Running", None), ("queued", "Queued", None), ("paused", "Paused", None),
            ("ok", "Succeeded", at(1))]
    assert prune_history(jobs, successful_limit=0, failed_limit=0) == ["ok"]


def test_cancelled_jobs_count_as_failed_history() -> None:
    jobs = [("cancelled", "Cancelled", at(1)), ("failed", "Failed", at(2))]
    assert prune_history(jobs, successful_limit=5, failed_limit=1) == ["cancelled"]


def test_no_limit_keeps_everything_of_that_kind() -> None:
    jobs = [(f"ok-{h}", "Succeeded", at(h)) for h in range(10)] + [("bad", "Failed", at(0))]
    assert prune_history(jobs, successful_limit=None, failed_limit=0) == ["bad"]


def test_a_finished_job_without_a_completion_time_counts_as_newest() -> None:
    jobs = [("unknown", "Succeeded", None), ("old", "Succeeded", at(1)),
            ("older", "Succeeded", at(0))]
    assert prune_history(jobs, successful_limit=1, failed_limit=1) == ["older", "old"]


def test_equal_completion_times_are_ordered_by_name() -> None:
    jobs = [("b", "Succeeded", at(1)), ("a", "Succeeded", at(1))]
    assert prune_history(jobs, successful_limit=1, failed_limit=1) == ["a"]
