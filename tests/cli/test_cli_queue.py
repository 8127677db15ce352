"""Queue positions computed on read (cli/queueview.py), and the commands and watch that show
them: pure, against scripted API clients, no cluster."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from sync_operator.api import SyncJob
from sync_operator.cli import queueview
from sync_operator.cli.commands import describe, listing
from sync_operator.cli.commands.watch import PlainPrinter
from sync_operator.cli.connect import Target
from sync_operator.cli.context import Context
from sync_operator.cli.queueview import QueueSpot, ordinal, queue_view
from sync_operator.cli.watchstate import WatchState
from sync_operator.kube import KubeClient
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.stream import RESET, Event
from sync_operator.syncjob.queue.cache import JobCache
from sync_operator.syncjob.queue.plan import Limits, candidate_from_body, plan_admission

NOW = datetime(2026, 3, 14, 15, 30, 0, tzinfo=UTC)
QUEUED_CONDITION = {"type": "Admitted", "status": "False", "reason": "Queued",
                    "message": "waiting for capacity", "lastTransitionTime": "2026-03-14T15:00:00Z"}


def body(name: str, phase: str | None = "Queued", *, job_type: str = "quran",
         priority: int = 5, age: float = 60, uid: str | None = None, namespace: str = "ns",
         spec: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
         conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    created = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if phase == "Queued":
        status["conditions"] = [QUEUED_CONDITION] if conditions is None else conditions
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}",
                     "creationTimestamp": created, **(metadata or {})},
        "spec": {"jobType": job_type, "priority": priority, **(spec or {})},
        "status": status,
    }


def sj(name: str, phase: str | None = "Queued", **kw: Any) -> SyncJob:
    return SyncJob.model_validate(body(name, phase, **kw))


def positions(jobs: list[SyncJob]) -> dict[str, tuple[int, int]]:
    """{name: (position, position in type)} of the waiting jobs, in line order."""
    view = queue_view(jobs)
    spots = {key.name: spot for key, spot in view.spots.items()}
    return {name: (s.position, s.position_in_type)
            for name, s in sorted(spots.items(), key=lambda item: item[1].position)}


# -- order -------------------------------------------------------------------------------------


def test_order_is_priority_then_age_then_uid() -> None:
    jobs = [sj("old-5", priority=5, age=300), sj("new-1", priority=1, age=10),
            sj("new-5-b", priority=5, age=100, uid="u-b"),
            sj("new-5-a", priority=5, age=100, uid="u-a"), sj("old-9", priority=9, age=900)]
    assert list(positions(jobs)) == ["new-1", "old-5", "new-5-a", "new-5-b", "old-9"]
    assert positions(jobs)["new-1"] == (1, 1)
    assert positions(jobs)["old-9"] == (5, 5)


def test_the_order_is_the_admitters_own() -> None:
    """Same jobs, same order as plan.plan_admission when nothing may start."""
    bodies = [body(f"j{i}", priority=p, age=a, job_type=t, uid=f"u{u}")
              for i, (p, a, t, u) in enumerate([(3, 50, "quran", 4), (3, 50, "prayer", 2),
                                                (1, 5, "audio", 9), (7, 500, "quran", 1),
                                                (3, 80, "quran", 7)])]
    nothing = Limits(per_type={t: 0 for t in ("quran", "prayer", "audio")}, global_limit=0)
    plan = plan_admission([candidate_from_body(b) for b in bodies], [], nothing)
    by_uid = {b["metadata"]["uid"]: b["metadata"]["name"] for b in bodies}
    expected = {by_uid[w.uid]: (w.position, w.position_in_type) for w in plan.waiting}
    assert positions([SyncJob.model_validate(b) for b in bodies]) == expected


def _in_line_fixtures() -> list[dict[str, Any]]:
    return [body("paused", spec={"paused": True}, age=900),
            body("cancelled", spec={"cancel": True}, age=800),
            body("deleting", metadata={"deletionTimestamp": "2026-03-14T15:29:00Z"}, age=700),
            body("dedup-check", None, spec={"dedupKey": "k"}, age=600),
            body("pending", None, age=500), body("held", "Paused", age=400),
            body("done", "Succeeded", age=300), body("running", "Running", age=250),
            body("no-condition-yet", conditions=[], age=200), body("waits", age=100)]


def test_only_jobs_waiting_for_capacity_take_a_place() -> None:
    jobs = [SyncJob.model_validate(b) for b in _in_line_fixtures()]
    # A Pending job is in line as soon as it exists (the admitter counts it before the
    # operator marks it Queued); one with a dedupKey waits for its duplicate check first.
    assert positions(jobs) == {"pending": (1, 1), "no-condition-yet": (2, 2),
                               "waits": (3, 3)}
    assert not queueview.is_waiting(jobs[0])
    assert queueview.is_waiting(jobs[-1])


def test_in_line_means_the_same_to_the_cli_and_to_the_admitters_cache() -> None:
    cache = JobCache()
    bodies = _in_line_fixtures()
    for b in bodies:
        cache.observe(b)
    for b in bodies:
        assert queueview.is_waiting(SyncJob.model_validate(b)) == cache.is_waiting(
            b["metadata"]["uid"]), b["metadata"]["name"]


def test_position_within_its_type() -> None:
    jobs = [sj("q1", age=50), sj("p1", job_type="prayer", age=40), sj("q2", age=30),
            sj("a1", job_type="audio", priority=1), sj("p2", job_type="prayer", age=10)]
    assert positions(jobs) == {"a1": (1, 1), "q1": (2, 1), "p1": (3, 1), "q2": (4, 2),
                               "p2": (5, 2)}


def test_counts_what_holds_capacity_by_type_and_in_all() -> None:
    jobs = [sj("r1", "Running"), sj("r2", "Pausing"), sj("r3", "Cancelling"),
            sj("pr", "Running", job_type="prayer"), sj("off", "Paused"),
            sj("gone", "Succeeded"), sj("new", "Pending", age=1),
            sj("q", age=20), sj("p", job_type="prayer", age=10), sj("h", job_type="hadith", age=5)]
    view = queue_view(jobs)
    assert view.get(ObjectKey("ns", "q")) == QueueSpot("quran", 1, 1, 3, 4)
    assert view.get(ObjectKey("ns", "p")) == QueueSpot("prayer", 2, 1, 1, 4)
    assert view.get(ObjectKey("ns", "h")) == QueueSpot("hadith", 3, 1, 0, 4)
    assert view.get(ObjectKey("ns", "r1")) is None
    assert view.get(ObjectKey("ns", "new")) == QueueSpot("quran", 4, 2, 3, 4)  # in line
    assert len(view) == 4


def test_namespaces_are_one_line_when_listed_together() -> None:
    jobs = [sj("a", namespace="x", age=30), sj("a", namespace="y", age=20),
            sj("r", "Running", namespace="y")]
    view = queue_view(jobs)
    assert view.get(ObjectKey("x", "a")) == QueueSpot("quran", 1, 1, 1, 1)
    assert view.get(ObjectKey("y", "a")) == QueueSpot("quran", 2, 2, 1, 1)


def test_why_reads_short_and_human() -> None:
    assert QueueSpot("quran", 3, 2, 1, 4).why == \
        "#3 in line (2nd of its type) · 1 quran running · 4 running in all"
    assert QueueSpot("prayer", 1, 1, 0, 2).why == \
        "#1 in line (1st of its type) · no prayer running · 2 running in all"
    assert QueueSpot("audio", 12, 11, 0, 0).why == \
        "#12 in line (11th of its type) · nothing running"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st",
        "111th", "112th"]


def test_a_spot_belongs_to_a_waiting_version_of_the_job() -> None:
    waiting = sj("a")
    view = queue_view([waiting])
    assert view.of(waiting) is not None
    assert view.of(sj("a", "Running")) is None  # the view is older than this version


def test_get_replaces_the_listed_version_of_its_job() -> None:
    listed = [sj("a", "Running"), sj("b", age=30)]
    fresh = sj("a", age=90)
    merged = queueview.with_job(listed, fresh)
    assert [queueview.key_of(j).name for j in merged] == ["b", "a"]
    assert positions(merged) == {"a": (1, 1), "b": (2, 2)}


# -- the watch ---------------------------------------------------------------------------------


def place(state: WatchState, name: str) -> QueueSpot:
    spot = state.spot(state.jobs[ObjectKey("ns", name)])
    assert spot is not None, f"{name} has no place in line"
    return spot


def test_a_watch_moves_everyone_up_when_the_head_is_admitted() -> None:
    state = WatchState(names=frozenset({"b", "c"}))
    changes = state.apply(Event(RESET, [body("r", "Running"), body("a", age=30),
                                        body("b", age=20), body("c", age=10)]))
    assert [c.key.name for c in changes] == ["b", "c"]  # only the named jobs are shown...
    assert [place(state, n).position for n in ("b", "c")] == [2, 3]  # ...counting the others

    # The head starts: b and c move up although their own objects did not change.
    changes = state.apply(Event("MODIFIED", [body("a", "Running", age=30)]))
    assert [c.key.name for c in changes] == ["b", "c"]
    assert [place(state, n).position for n in ("b", "c")] == [1, 2]

    # Progress of a running job moves nothing: no recomputation, no change reported.
    queue = state.queue
    progressing = body("a", "Running", age=30)
    progressing["status"]["progress"] = {"percent": 40}
    assert state.apply(Event("MODIFIED", [progressing])) == []
    assert state.queue is queue

    # A deleted job that held capacity changes the counts of those still waiting.
    changes = state.apply(Event("DELETED", [body("r", "Running")]))
    assert [c.key.name for c in changes] == ["b", "c"]
    assert place(state, "b") == QueueSpot("quran", 1, 1, 1, 1)


def test_plain_watch_prints_a_line_when_a_place_in_line_moves(
        capsys: pytest.CaptureFixture[str]) -> None:
    state = WatchState(names=frozenset({"b"}))
    target = Target(connection=cast(Any, None), namespace="ns")
    printer = PlainPrinter(Context(argparse.Namespace(), target, cast(KubeClient, None)), state)
    printer(state.apply(Event(RESET, [body("r", "Running"), body("a", age=30),
                                      body("b", age=20)])))
    printer(state.apply(Event("MODIFIED", [body("a", spec={"paused": True}, age=30)])))
    assert capsys.readouterr().out.splitlines() == [
        "b  Queued #2  -  #2 in line (2nd of its type) · 1 quran running · 1 running in all",
        "b  Queued #1  -  #1 in line (1st of its type) · 1 quran running · 1 running in all"]


# -- list and get ------------------------------------------------------------------------------


class ScriptedClient:
    """get() and list() from a fixed namespace; records every call."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.calls.append(("get", namespace, name))
        return next(b for b in self.items if b["metadata"]["name"] == name)

    async def list(self, res: Any, namespace: str | None = None, *,
                   label_selector: str | None = None, **_: Any) -> dict[str, Any]:
        self.calls.append(("list", namespace, label_selector))
        items = [b for b in self.items
                 if not label_selector or b["metadata"].get("labels", {}).get("pick")]
        return {"metadata": {}, "items": items}


def context(client: ScriptedClient, **args: Any) -> Context:
    target = Target(connection=cast(Any, None), namespace="ns")
    defaults: dict[str, Any] = {"output": None, "type": None, "phase": None, "selector": None}
    return Context(argparse.Namespace(**{**defaults, **args}), target,
                   cast(KubeClient, client))


NAMESPACE = [body("first", "Running", age=300), body("later", priority=8, age=50),
             body("urgent", priority=1, age=40),
             body("middle", age=30, metadata={"labels": {"pick": "1"}}),
             body("done", "Succeeded", age=900)]


async def test_get_of_a_waiting_job_lists_its_namespace_once(
        capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient(NAMESPACE)
    assert await describe.run(context(client, name="middle")) == 0
    assert client.calls == [("get", "ns", "middle"), ("list", "ns", None)]
    out = capsys.readouterr().out
    assert "Queued #2" in out
    assert "#2 in line (2nd of its type) · 1 quran running · 1 running in all" in out


async def test_get_of_a_job_not_waiting_lists_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient(NAMESPACE)
    assert await describe.run(context(client, name="first")) == 0
    assert client.calls == [("get", "ns", "first")]
    assert "Waiting:" not in capsys.readouterr().out


async def test_list_counts_places_before_type_and_phase_filters(
        capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient(NAMESPACE)
    assert await listing.run(context(client, output="wide", phase=["Queued"])) == 0
    assert client.calls == [("list", "ns", None)]  # the list it shows is the whole scope
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == {"urgent", "middle", "later"}
    assert "Queued #1" in lines["urgent"]
    assert "Queued #2" in lines["middle"]
    assert lines["later"].rstrip().endswith(
        "#3 in line (3rd of its type) · 1 quran running · 1 running in all")


async def test_a_label_selector_lists_the_scope_again_for_places(
        capsys: pytest.CaptureFixture[str]) -> None:
    client = ScriptedClient(NAMESPACE)
    assert await listing.run(context(client, selector="pick=1")) == 0
    assert client.calls == [("list", "ns", "pick=1"), ("list", "ns", None)]
    assert "Queued #2" in capsys.readouterr().out  # urgent, not shown, is ahead of it
    # Nothing waiting among the selected jobs: no second list.
    client = ScriptedClient([body("r", "Running", metadata={"labels": {"pick": "1"}})])
    assert await listing.run(context(client, selector="pick=1")) == 0
    assert client.calls == [("list", "ns", "pick=1")]
