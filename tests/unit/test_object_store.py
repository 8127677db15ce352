"""The watch-fed object store a reconcile reads instead of GETting: versions only move
forward, a deletion is not undone by a late event, a LIST replaces what it lists."""

from __future__ import annotations

from typing import Any

from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.store import ObjectStore, without_managed_fields

KEY = ObjectKey("team-a", "q1")


def body(version: int, name: str = "q1", phase: str = "Running") -> dict[str, Any]:
    return {"kind": "SyncJob", "metadata": {"name": name, "namespace": "team-a",
                                            "resourceVersion": str(version),
                                            "managedFields": [{"manager": "kubectl"}]},
            "status": {"phase": phase}}


def store() -> ObjectStore[dict[str, Any]]:
    return ObjectStore(kind="SyncJob", keep=without_managed_fields)


def test_a_late_event_does_not_replace_what_our_own_write_answered_with() -> None:
    s = store()
    assert s.put(body(12, phase="Running"))  # our write's answer
    assert not s.put(body(11, phase="Queued"))  # the watch, one version behind
    kept = s.get(KEY)
    assert kept is not None
    assert kept["status"]["phase"] == "Running"
    assert "managedFields" not in kept["metadata"]


def test_a_deleted_object_is_not_brought_back_by_an_older_event() -> None:
    s = store()
    s.put(body(5))
    s.delete(body(9))
    assert not s.put(body(7))
    assert s.get(KEY) is None
    assert s.put(body(10))  # a new object of the same name


def test_other_kinds_are_not_kept() -> None:
    s = store()
    schedule = body(3)
    schedule["kind"] = "SyncSchedule"
    assert not s.put(schedule)
    assert len(s) == 0


def test_a_list_drops_what_it_does_not_hold_but_keeps_what_is_newer_than_it() -> None:
    s = store()
    s.put(body(5, "gone"))
    s.put(body(30, "created-meanwhile"))
    s.put(body(6, "q1"))
    s.replace([body(8, "q1")], version="20")
    assert s.get(ObjectKey("team-a", "gone")) is None
    assert s.get(ObjectKey("team-a", "created-meanwhile")) is not None
    assert s.get(KEY) is not None
    assert [b["metadata"]["name"] for b in s.in_namespace("team-a")] == [
        "created-meanwhile", "q1"]
    s.replace([])  # no version: everything not listed is gone
    assert len(s) == 0
