"""The admission queue: priority order, per-type and global limits, work conservation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sync_operator.syncjob.queue.plan import (
    DEFAULT_TYPE_LIMITS,
    ActiveJob,
    BlockedBy,
    Candidate,
    Limits,
    active_from_body,
    candidate_from_body,
    holds_capacity,
    plan_admission,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(uid: str, job_type: str = "quran", priority: int = 5, age: int = 0,
        paused: bool = False) -> Candidate:
    """A candidate created `age` minutes after T0 (larger age = newer)."""
    return Candidate(uid=uid, namespace="ns", name=uid, job_type=job_type, priority=priority,
                     created=T0 + timedelta(minutes=age), paused=paused)


def test_default_limits_follow_the_design() -> None:
    assert dict(DEFAULT_TYPE_LIMITS) == {"quran": 1, "prayer": 2, "hadith": 1, "audio": 1,
                                         "finance": 1}


def test_jobs_are_admitted_by_priority_then_age() -> None:
    plan = plan_admission(
        [job("late", "prayer", 5, age=2), job("urgent", "hadith", 1, age=3),
         job("early", "audio", 5, age=1)], [])
    assert plan.admit == ("urgent", "early", "late")


def test_long_quran_job_does_not_block_prayer_jobs() -> None:
    plan = plan_admission(
        [job("quran-2", "quran", 1, age=0), job("prayer-1", "prayer", 9, age=5)],
        [ActiveJob("quran-1", "quran")])
    assert plan.admit == ("prayer-1",)
    waiting = plan.waiting_for("quran-2")
    assert waiting is not None
    assert waiting.blocked_by is BlockedBy.TYPE_LIMIT
    assert waiting.reason == "type quran at its limit 1/1"


def test_a_type_blocked_urgent_job_does_not_hold_back_less_urgent_types() -> None:
    plan = plan_admission(
        [job("q1", "quran", 1), job("q2", "quran", 1, age=1), job("f1", "finance", 10)], [])
    assert plan.admit == ("q1", "f1")
    assert [w.uid for w in plan.waiting] == ["q2"]


def test_prayer_runs_two_at_once() -> None:
    plan = plan_admission([job(f"p{i}", "prayer", age=i) for i in range(3)], [])
    assert plan.admit == ("p0", "p1")
    assert plan.waiting[0].reason == "type prayer at its limit 2/2"


def test_global_limit_caps_all_types_together() -> None:
    active = [ActiveJob("a1", "audio"), ActiveJob("p1", "prayer"), ActiveJob("p2", "prayer")]
    plan = plan_admission([job("h1", "hadith", 9), job("f1", "finance", 9, age=1)], active)
    assert plan.admit == ("h1",)
    waiting = plan.waiting_for("f1")
    assert waiting is not None
    assert waiting.blocked_by is BlockedBy.GLOBAL_LIMIT
    assert waiting.reason == "global limit 4/4 reached"


def test_queue_positions_count_waiting_jobs_overall_and_per_type() -> None:
    plan = plan_admission(
        [job("q1", "quran", 1), job("q2", "quran", 2), job("p1", "prayer", 3),
         job("q3", "quran", 4)],
        [ActiveJob("q0", "quran"), ActiveJob("p8", "prayer"), ActiveJob("p9", "prayer")])
    assert plan.admit == ()
    assert [(w.uid, w.position, w.position_in_type) for w in plan.waiting] == [
        ("q1", 1, 1), ("q2", 2, 2), ("p1", 3, 1), ("q3", 4, 3)]


def test_paused_job_is_held_and_takes_no_slot() -> None:
    plan = plan_admission([job("q1", "quran", 1, paused=True), job("q2", "quran", 5)], [])
    assert plan.admit == ("q2",)
    held = plan.waiting_for("q1")
    assert held is not None
    assert (held.blocked_by, held.reason, held.position) == (BlockedBy.PAUSED, "paused", None)


def test_priority_change_reorders_queue() -> None:
    before = plan_admission([job("old", "quran", 5, age=0), job("new", "quran", 5, age=1)], [])
    assert before.admit == ("old",)
    after = plan_admission([job("old", "quran", 5, age=0), job("new", "quran", 1, age=1)], [])
    assert after.admit == ("new",)
    assert after.waiting[0].uid == "old"


def test_uid_breaks_ties_so_every_replica_agrees() -> None:
    cands = [job("b", "quran"), job("a", "quran"), job("c", "quran")]
    assert plan_admission(cands, []).admit == ("a",)
    assert plan_admission(list(reversed(cands)), []).admit == ("a",)


def test_a_job_already_holding_capacity_is_not_admitted_twice() -> None:
    plan = plan_admission([job("q1", "quran")], [ActiveJob("q1", "quran")])
    assert plan.admit == ()
    assert plan.waiting == ()


def test_custom_limits_override_the_defaults() -> None:
    limits = Limits(per_type={"quran": 2}, global_limit=10)
    plan = plan_admission([job(f"q{i}", "quran", age=i) for i in range(3)], [], limits)
    assert plan.admit == ("q0", "q1")
    # types not named keep their default
    assert limits.for_type("prayer") == 2
    assert limits.for_type("unknown-type") == 1


def test_a_zero_limit_stops_a_type_entirely() -> None:
    plan = plan_admission([job("a1", "audio")], [], Limits(per_type={"audio": 0}))
    assert plan.admit == ()
    assert plan.waiting[0].reason == "type audio at its limit 0/0"


def test_naive_and_aware_creation_times_sort_together() -> None:
    naive = Candidate("n", "ns", "n", "prayer", 5, datetime(2026, 1, 1, 0, 1))
    aware = Candidate("a", "ns", "a", "prayer", 5, datetime(2026, 1, 1, 0, 2, tzinfo=UTC))
    assert plan_admission([aware, naive], [], Limits(per_type={"prayer": 1})).admit == ("n",)


def test_candidates_and_active_jobs_come_from_api_bodies() -> None:
    body = {"metadata": {"uid": "u1", "namespace": "ns", "name": "a",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"jobType": "prayer", "priority": 2, "paused": True},
            "status": {"phase": "Running"}}
    cand = candidate_from_body(body)
    assert cand == Candidate("u1", "ns", "a", "prayer", 2, T0, True)
    assert active_from_body(body) == ActiveJob("u1", "prayer")
    assert holds_capacity(body)
    assert not holds_capacity({**body, "status": {"phase": "Paused"}})
    assert not holds_capacity({**body, "status": {}})
