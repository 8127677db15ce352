"""Admission from the watch-fed cache: the pass reads memory, assumes its grants, and
never counts capacity twice."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from sync_operator.api.common import JobType, Phase
from sync_operator.kube.keys import ObjectKey
from sync_operator.syncjob.queue.admitter import Admitter
from sync_operator.syncjob.queue.cache import JobCache
from sync_operator.syncjob.queue.plan import (
    Limits,
    active_from_body,
    candidate_from_body,
    holds_capacity,
    plan_admission,
)

_versions = itertools.count(1)
DEFAULTS = {JobType.QURAN: 1, JobType.PRAYER: 2, JobType.HADITH: 1, JobType.AUDIO: 1,
            JobType.FINANCE: 1}


def job(name: str, phase: str = "Queued", job_type: str = "quran", priority: int = 5,
        created: str = "2026-01-01T00:00:00Z", version: int | None = None,
        **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                     "creationTimestamp": created,
                     "resourceVersion": str(version if version is not None
                                            else next(_versions))},
        "spec": {"jobType": job_type, "priority": priority, **spec},
        "status": {"phase": phase},
    }


def admitter(cache: JobCache, global_limit: int = 4) -> tuple[Admitter, list[ObjectKey]]:
    enqueued: list[ObjectKey] = []
    return Admitter(cache=cache, global_limit=global_limit, default_limits=dict(DEFAULTS),
                    interval=60, enqueue=enqueued.append), enqueued


def names(keys: list[ObjectKey]) -> list[str]:
    return [k.name for k in keys]


def test_a_pass_admits_by_priority_then_age_within_the_type_and_global_limits() -> None:
    cache = JobCache()
    for body in [job("p-late", job_type="prayer", created="2026-01-01T00:00:09Z"),
                 job("p-early", job_type="prayer", created="2026-01-01T00:00:01Z"),
                 job("p-urgent", job_type="prayer", priority=1,
                     created="2026-01-01T00:00:05Z"),
                 job("q-1", priority=3), job("q-2", priority=2),
                 job("h-1", job_type="hadith", priority=9)]:
        cache.observe(body)
    adm, enqueued = admitter(cache, global_limit=4)
    admitted = adm.pass_once()
    # prayer has room for 2 (its most urgent first), quran for 1, then the global limit.
    assert names(admitted) == ["p-urgent", "q-2", "p-early", "h-1"]
    assert enqueued == admitted
    assert adm.pass_once() == []  # the grants hold the capacity until the jobs start


def test_a_job_held_back_by_its_own_type_blocks_nobody() -> None:
    cache = JobCache()
    cache.observe(job("q-running", phase="Running"))
    cache.observe(job("q-waiting", priority=1))
    cache.observe(job("p-waiting", job_type="prayer", priority=9))
    adm, _ = admitter(cache)
    assert names(adm.pass_once()) == ["p-waiting"]


def test_a_granted_job_counts_once_while_queued_and_once_when_running() -> None:
    cache = JobCache()
    cache.observe(job("a", job_type="prayer"))
    cache.observe(job("b", job_type="prayer", created="2026-01-01T00:00:02Z"))
    cache.observe(job("c", job_type="prayer", created="2026-01-01T00:00:03Z"))
    adm, _ = admitter(cache, global_limit=2)
    assert names(adm.pass_once()) == ["a", "b"]
    # The watch shows "a" running before "b": capacity is 2 used (a by phase, b by grant).
    cache.observe(job("a", job_type="prayer", phase="Running"))
    assert adm.pass_once() == []
    assert adm.granted_count == 1
    # Both run, then "a" finishes: one slot frees, and "c" gets it.
    cache.observe(job("b", job_type="prayer", phase="Running",
                      created="2026-01-01T00:00:02Z"))
    assert adm.pass_once() == []
    cache.observe(job("a", job_type="prayer", phase="Succeeded"))
    assert names(adm.pass_once()) == ["c"]


def test_paused_cancelled_and_deleting_jobs_are_not_admitted() -> None:
    cache = JobCache()
    cache.observe(job("paused", paused=True))
    cache.observe(job("cancelled", cancel=True))
    deleting = job("deleting")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    cache.observe(deleting)
    adm, _ = admitter(cache)
    assert adm.pass_once() == []
    assert cache.waiting_total == 0


def test_a_priority_change_reorders_the_queue() -> None:
    cache = JobCache()
    cache.observe(job("first", priority=5, created="2026-01-01T00:00:01Z"))
    cache.observe(job("second", priority=5, created="2026-01-01T00:00:02Z"))
    cache.observe(job("second", priority=1, created="2026-01-01T00:00:02Z"))
    adm, _ = admitter(cache)
    assert names(adm.pass_once()) == ["second"]


def test_a_schedules_max_concurrency_sets_its_types_limit_and_an_edit_applies() -> None:
    cache = JobCache()
    for n in range(4):
        cache.observe(job(f"a-{n}", job_type="audio", created=f"2026-01-01T00:00:0{n}Z"))
    adm, _ = admitter(cache, global_limit=10)
    schedule = {"metadata": {"uid": "s1", "name": "audio-nightly", "namespace": "ns"},
                "spec": {"jobType": "audio", "maxConcurrency": 2}}
    adm.observe_schedule(schedule)
    assert names(adm.pass_once()) == ["a-0", "a-1"]
    adm.observe_schedule({**schedule, "spec": {"jobType": "audio", "maxConcurrency": 3}})
    assert names(adm.pass_once()) == ["a-2"]
    adm.observe_schedule(schedule, deleted=True)  # back to the default of 1: nothing more
    assert adm.pass_once() == []


def test_an_older_view_of_an_object_is_ignored_and_a_deleted_one_stays_deleted() -> None:
    cache = JobCache()
    cache.observe(job("a", phase="Running", version=10))
    assert cache.observe(job("a", phase="Queued", version=9)) is False  # a stale LIST item
    assert cache.holding("quran") == 1
    assert cache.forget(job("a", phase="Running", version=11)) is True
    assert cache.observe(job("a", phase="Running", version=10)) is False
    assert cache.holding("quran") == 0


def test_a_full_list_forgets_a_deletion_the_watch_missed() -> None:
    cache = JobCache()
    cache.observe(job("gone", phase="Running"))
    cache.observe(job("waiting"))
    adm, _ = admitter(cache)
    assert adm.pass_once() == []  # quran's one slot is held by "gone"
    assert cache.replace([job("waiting")]) is True
    assert names(adm.pass_once()) == ["waiting"]


def test_finished_jobs_hold_nothing_and_are_counted_by_phase() -> None:
    cache = JobCache()
    for n in range(50):
        cache.observe(job(f"done-{n}", phase="Succeeded"))
    cache.observe(job("failed", phase="Failed"))
    assert (cache.holding_total, cache.waiting_total, cache.waiting_types()) == (0, 0, [])
    counts = cache.phase_counts()
    assert (counts["Succeeded"], counts["Failed"], counts["Running"]) == (50, 1, 0)


def test_a_grant_for_a_job_that_vanished_is_released() -> None:
    cache = JobCache()
    cache.observe(job("a"))
    adm, _ = admitter(cache, global_limit=1)
    assert names(adm.pass_once()) == ["a"]
    cache.forget(job("a"))
    cache.observe(job("b"))
    assert names(adm.pass_once()) == ["b"]
    assert adm.granted_count == 1


def test_the_queue_stays_in_order_after_many_changes() -> None:
    """Stale heap entries (jobs that started, priorities that changed) never surface."""
    cache = JobCache()
    for n in range(300):
        cache.observe(job(f"j{n:03}", job_type="finance", priority=5,
                          created=f"2026-01-01T00:{n // 60:02}:{n % 60:02}Z"))
    for n in range(0, 300, 2):  # half of them start elsewhere, then finish
        cache.observe(job(f"j{n:03}", job_type="finance", phase="Running",
                          created=f"2026-01-01T00:{n // 60:02}:{n % 60:02}Z"))
        cache.observe(job(f"j{n:03}", job_type="finance", phase="Succeeded",
                          created=f"2026-01-01T00:{n // 60:02}:{n % 60:02}Z"))
    adm, _ = admitter(cache, global_limit=10)
    order = []
    for _ in range(5):
        (key,) = adm.pass_once()
        order.append(key.name)
        cache.observe(job(key.name, job_type="finance", phase="Succeeded"))
    assert order == ["j001", "j003", "j005", "j007", "j009"]


def test_a_new_pending_job_is_admitted_at_once_when_there_is_room() -> None:
    """So its first reconcile goes straight to Running: one status write, not two."""
    cache = JobCache()
    cache.observe(job("fresh", phase="Pending"))
    adm, _ = admitter(cache)
    assert names(adm.pass_once()) == ["fresh"]
    cache.observe(job("fresh", phase="Pending"))  # a later event, still Pending
    assert adm.pass_once() == []
    assert adm.granted_count == 1


def test_a_slot_is_free_only_once_the_jobs_pods_are_gone() -> None:
    """A finished or paused job whose pod still shuts down keeps its type's slot, so a
    type's limit is never exceeded while a pod terminates."""
    cache = JobCache()
    cache.observe(job("old", phase="Running"))
    cache.observe_pods("uid-old", 1)
    cache.observe(job("next", created="2026-01-01T00:00:05Z"))
    adm, _ = admitter(cache)
    assert adm.pass_once() == []
    cache.observe(job("old", phase="Cancelled"))  # the phase moved on; the pod has not
    assert adm.pass_once() == []
    assert cache.observe_pods("uid-old", 0) is True  # terminated
    assert names(adm.pass_once()) == ["next"]


def test_a_job_list_forgets_pods_of_jobs_that_are_gone() -> None:
    cache = JobCache()
    cache.observe(job("a", phase="Paused"))
    cache.observe_pods("uid-a", 1)
    assert cache.holding("quran") == 1
    assert cache.replace_pods({}) is True  # its Job was deleted while nobody watched
    assert cache.holding("quran") == 0


def test_a_deleted_job_holds_its_slot_until_its_pods_are_gone() -> None:
    cache = JobCache()
    cache.observe(job("deleted", phase="Running"))
    cache.observe_pods("uid-deleted", 1)
    cache.observe(job("next", created="2026-01-01T00:00:05Z"))
    adm, _ = admitter(cache)
    cache.forget(job("deleted", phase="Running"))
    assert adm.pass_once() == []  # its pod still shuts down
    assert cache.observe_pods("uid-deleted", 0) is True
    assert names(adm.pass_once()) == ["next"]


def test_a_list_does_not_forget_what_the_watch_showed_after_it_was_taken() -> None:
    cache = JobCache()
    cache.observe(job("old", phase="Running", version=5))
    cache.observe(job("new", phase="Running", version=12))  # created while the LIST ran
    assert cache.replace([], version="10") is True  # "old" was deleted before rv 10
    assert (cache.phase("uid-old"), cache.phase("uid-new")) == (None, Phase.RUNNING)
    assert cache.holding("quran") == 1


def test_a_pending_job_with_a_dedup_key_waits_for_its_dedup_decision() -> None:
    cache = JobCache()
    cache.observe(job("maybe-dup", phase="Pending", dedupKey="nightly"))
    adm, _ = admitter(cache)
    assert adm.pass_once() == []
    cache.observe(job("maybe-dup", phase="Queued", dedupKey="nightly"))
    assert names(adm.pass_once()) == ["maybe-dup"]


def test_leaving_the_queue_is_news_even_for_a_job_already_out_of_the_line() -> None:
    """A granted job is paused (it leaves the line), then shows Paused: that second
    event must wake the admitter, since it is what releases the grant."""
    cache = JobCache()
    cache.observe(job("a"))
    cache.observe(job("a", paused=True))  # still Queued, out of the line
    assert cache.observe(job("a", phase="Paused", paused=True)) is True


@pytest.mark.parametrize("seed", range(40))
def test_the_incremental_admitter_admits_what_the_pure_plan_does(seed: int) -> None:
    """plan.py is the rule written plainly; the cache-fed admitter must agree with it on
    any mix of running, waiting and paused jobs, priorities, types and limits."""
    rng = random.Random(seed)
    types = ["quran", "prayer", "hadith", "audio", "finance"]
    per_type = {t: rng.randint(0, 3) for t in types}
    global_limit = rng.randint(1, 8)
    bodies = []
    for n in range(rng.randint(0, 30)):
        phase = rng.choice(["Queued", "Queued", "Queued", "Running", "Pausing", "Succeeded"])
        bodies.append(job(f"j{n:02}", phase=phase, job_type=rng.choice(types),
                          priority=rng.randint(1, 10),
                          created=f"2026-01-01T00:00:{rng.randint(0, 59):02}Z",
                          paused=rng.random() < 0.1))
    cache = JobCache()
    for body in bodies:
        cache.observe(body)
    enqueued: list[ObjectKey] = []
    adm = Admitter(cache=cache, global_limit=global_limit,
                   default_limits={JobType(t): v for t, v in per_type.items()},
                   interval=60, enqueue=enqueued.append)
    candidates = [candidate_from_body(b) for b in bodies if b["status"]["phase"] == "Queued"]
    active = [active_from_body(b) for b in bodies if holds_capacity(b)]
    plan = plan_admission(candidates, active, Limits(per_type, global_limit))
    uid_of = {b["metadata"]["name"]: b["metadata"]["uid"] for b in bodies}
    assert [uid_of[k.name] for k in adm.pass_once()] == list(plan.admit)


def test_a_schedule_list_older_than_an_event_does_not_undo_it() -> None:
    """The LIST of a relist was taken before a schedule's creation arrived by watch: the
    schedule stays (and its limit with it); one the LIST lacks and the watch last showed
    before the LIST is dropped (a deletion the watch missed)."""
    cache = JobCache()
    for n in range(4):
        cache.observe(job(f"a-{n}", job_type="audio", created=f"2026-01-01T00:00:0{n}Z"))
    adm, _ = admitter(cache, global_limit=10)
    new = {"metadata": {"uid": "s2", "name": "audio-new", "namespace": "ns",
                        "resourceVersion": "50"},
           "spec": {"jobType": "audio", "maxConcurrency": 3}}
    adm.observe_schedule(new)
    adm.replace_schedules([], version="40")
    assert names(adm.pass_once()) == ["a-0", "a-1", "a-2"]
    adm.replace_schedules([], version="60")  # now the LIST is newer: it is gone
    assert adm.pass_once() == []
