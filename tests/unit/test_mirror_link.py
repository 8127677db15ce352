"""MirrorLink.drain: removing stored audit entries from status.mirror.pending.

A small in-memory API server stands in for the client: it keeps one object per
name, bumps resourceVersion on every write, enforces the resourceVersion
precondition of a merge patch (409 on mismatch), and can be told to let a
concurrent writer append an entry right before a patch lands.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.audit.outbox import append_entry
from sync_operator.kube import ApiError, KubeClient, Resource
from sync_operator.kube.own_writes import OwnWrites
from sync_operator.mirror.link import MirrorLink
from sync_operator.mirror.store import MirrorStore
from sync_operator.mirror.writer import MirrorKey

Body = dict[str, Any]
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
NAMESPACE = "team-a"


class UnusedStore:
    """drain never needs PostgreSQL: any use of the store fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"drain used the mirror store ({name})")


@dataclass
class FakeApi:
    objects: dict[tuple[Resource, str], Body] = field(default_factory=dict)
    gets: list[tuple[Resource, str, str | None]] = field(default_factory=list)
    patches: list[tuple[Resource, str, Body, str | None, str | None]] = field(
        default_factory=list)
    # Called before a patch is applied, once per queued item: a concurrent writer.
    before_patch: list[Callable[[Body], None]] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)

    def put(self, resource: Resource, body: Body) -> None:
        self.objects[(resource, body["metadata"]["name"])] = copy.deepcopy(body)

    def stored(self, resource: Resource, name: str) -> Body:
        return self.objects[(resource, name)]

    async def get_or_none(self, resource: Resource, name: str,
                          namespace: str | None = None) -> Body | None:
        self.gets.append((resource, name, namespace))
        body = self.objects.get((resource, name))
        return None if body is None else copy.deepcopy(body)

    async def patch(self, resource: Resource, name: str, patch: Any,
                    namespace: str | None = None, *, subresource: str | None = None,
                    patch_type: str = "merge", **_: Any) -> Body:
        self.patches.append((resource, name, copy.deepcopy(patch), namespace, subresource))
        assert patch_type == "merge"
        if self.errors:
            raise self.errors.pop(0)
        stored = self.objects[(resource, name)]
        if self.before_patch:
            self.before_patch.pop(0)(stored)
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected is not None and expected != stored["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        stored.setdefault("status", {}).update(copy.deepcopy(patch.get("status") or {}))
        bump(stored)
        return copy.deepcopy(stored)


def bump(body: Body) -> None:
    meta = body["metadata"]
    meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)


def append(body: Body, action: str, minutes: int = 0) -> None:
    """What a reconciler does on a transition: one more entry in the outbox."""
    status = body.setdefault("status", {})
    status["mirror"] = append_entry(status.get("mirror"), action, "alice", "Running",
                                    {"n": minutes}, T0 + timedelta(minutes=minutes))
    bump(body)


def job_body(uid: str = "uid-1", name: str = "job-1", entries: int = 3) -> Body:
    body: Body = {
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": uid,
                     "resourceVersion": "100"},
        "spec": {"jobType": "quran"},
        "status": {"phase": "Running"},
    }
    for i in range(entries):
        append(body, f"action-{i + 1}", i)
    return body


def schedule_body(uid: str = "uid-s", name: str = "nightly") -> Body:
    body: Body = {
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": uid,
                     "resourceVersion": "7", "generation": 1},
        "spec": {"jobType": "prayer", "schedule": "0 3 * * *"},
        "status": {},
    }
    append(body, "created")
    append(body, "updated", 1)
    return body


def pending_seqs(body: Body) -> list[int]:
    return [int(e["seq"]) for e in body["status"]["mirror"]["pending"]]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def link(api: FakeApi) -> MirrorLink:
    return MirrorLink(client=cast(KubeClient, api), store=cast(MirrorStore, UnusedStore()),
                      own_writes=OwnWrites())


JOB = MirrorKey("SyncJob", "uid-1")


async def test_drain_removes_the_stored_entries_with_a_resource_version_precondition(
        api: FakeApi, link: MirrorLink) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)

    await link.drain(JOB, 2)

    ((resource, name, patch, namespace, subresource),) = api.patches
    assert (resource, name, namespace, subresource) == (SYNCJOBS, "job-1", NAMESPACE, "status")
    assert patch["metadata"] == {"resourceVersion": body["metadata"]["resourceVersion"]}
    stored = api.stored(SYNCJOBS, "job-1")
    assert pending_seqs(stored) == [3]
    assert stored["status"]["mirror"]["seq"] == 3  # the seq counter is never taken back
    assert stored["status"]["mirror"]["pending"][0]["action"] == "action-3"
    assert stored["status"]["phase"] == "Running"  # only status.mirror is touched
    assert set(patch["status"]) == {"mirror"}


async def test_entries_appended_after_the_writer_read_the_body_are_kept(
        api: FakeApi, link: MirrorLink) -> None:
    seen_by_writer = job_body(entries=2)
    link.notify(seen_by_writer)
    fresh = copy.deepcopy(seen_by_writer)
    append(fresh, "paused", 5)  # a transition after the mirror's snapshot
    api.put(SYNCJOBS, fresh)

    await link.drain(JOB, 2)

    assert pending_seqs(api.stored(SYNCJOBS, "job-1")) == [3]
    assert api.patches[0][2]["metadata"]["resourceVersion"] == fresh["metadata"][
        "resourceVersion"]  # the precondition is the freshly read version


async def test_a_conflict_rereads_and_keeps_the_entry_appended_meanwhile(
        api: FakeApi, link: MirrorLink) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)
    # Between drain's read and its patch, a reconciler appends entry 4.
    api.before_patch.append(lambda stored: append(stored, "cancelled", 9))

    await link.drain(JOB, 3)

    assert len(api.patches) == 2  # the first one answered 409
    assert len(api.gets) == 2  # and drain read the object again before retrying
    first, second = (p[2]["metadata"]["resourceVersion"] for p in api.patches)
    assert int(second) > int(first)
    stored = api.stored(SYNCJOBS, "job-1")
    assert pending_seqs(stored) == [4]
    assert stored["status"]["mirror"]["pending"][0]["action"] == "cancelled"


async def test_the_fifth_attempt_may_still_succeed(api: FakeApi, link: MirrorLink,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)
    api.errors.extend(ApiError(409, "Conflict", "modified") for _ in range(4))

    with caplog.at_level(logging.WARNING, logger="sync_operator.mirror.link"):
        await link.drain(JOB, 3)

    assert len(api.patches) == 5
    assert pending_seqs(api.stored(SYNCJOBS, "job-1")) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_after_five_conflicts_drain_gives_up_with_a_warning(
        api: FakeApi, link: MirrorLink, caplog: pytest.LogCaptureFixture) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)
    api.errors.extend(ApiError(409, "Conflict", "modified") for _ in range(10))

    with caplog.at_level(logging.WARNING, logger="sync_operator.mirror.link"):
        await link.drain(JOB, 3)  # returns, does not raise

    assert len(api.patches) == 5
    assert len(api.gets) == 5
    assert pending_seqs(api.stored(SYNCJOBS, "job-1")) == [1, 2, 3]  # nothing lost
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"{NAMESPACE}/job-1" in warnings[0].getMessage()


async def test_an_error_other_than_a_conflict_is_raised_to_the_writer(
        api: FakeApi, link: MirrorLink) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)
    api.errors.append(ApiError(500, "InternalError", "etcd timeout"))

    with pytest.raises(ApiError) as raised:
        await link.drain(JOB, 3)
    assert raised.value.status == 500
    assert len(api.patches) == 1  # not retried as if it were a conflict


async def test_drain_returns_quietly_when_the_object_is_gone(api: FakeApi,
                                                             link: MirrorLink) -> None:
    link.notify(job_body())  # never stored in the API: deleted meanwhile

    await link.drain(JOB, 3)

    assert api.gets == [(SYNCJOBS, "job-1", NAMESPACE)]
    assert api.patches == []


async def test_drain_leaves_a_recreated_object_of_the_same_name_alone(
        api: FakeApi, link: MirrorLink) -> None:
    link.notify(job_body(uid="uid-1"))
    successor = job_body(uid="uid-2")  # same namespace/name, new object
    api.put(SYNCJOBS, successor)

    await link.drain(JOB, 3)

    assert len(api.gets) == 1
    assert api.patches == []
    assert pending_seqs(api.stored(SYNCJOBS, "job-1")) == [1, 2, 3]


async def test_drain_does_nothing_for_a_uid_it_was_never_notified_of(
        api: FakeApi, link: MirrorLink) -> None:
    api.put(SYNCJOBS, job_body())

    await link.drain(MirrorKey("SyncJob", "uid-1"), 3)

    assert api.gets == []
    assert api.patches == []


async def test_drain_does_nothing_after_the_deletion_was_recorded(
        api: FakeApi, link: MirrorLink) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)

    class Writer:
        async def record_deletion(self, body: Body, performed_by: str) -> None:
            pass

    link.writer = Writer()  # type: ignore[assignment]
    await link.record_deletion(body, "alice")
    await link.drain(JOB, 3)

    assert api.gets == []
    assert api.patches == []


async def test_nothing_is_patched_when_no_entry_is_at_or_below_the_seq(
        api: FakeApi, link: MirrorLink) -> None:
    body = job_body()
    api.put(SYNCJOBS, body)
    link.notify(body)
    await link.drain(JOB, 3)
    assert len(api.patches) == 1

    await link.drain(JOB, 3)  # the same report again: already drained
    fresh = api.stored(SYNCJOBS, "job-1")
    append(fresh, "resumed", 20)
    await link.drain(JOB, 3)  # only entry 4 pending, above the applied seq

    assert len(api.patches) == 1
    assert pending_seqs(api.stored(SYNCJOBS, "job-1")) == [4]


async def test_a_schedule_is_drained_through_the_syncschedules_resource(
        api: FakeApi, link: MirrorLink) -> None:
    body = schedule_body()
    api.put(SYNCSCHEDULES, body)
    link.notify(body)

    await link.drain(MirrorKey("SyncSchedule", "uid-s"), 1)

    assert [(p[0], p[1], p[4]) for p in api.patches] == [(SYNCSCHEDULES, "nightly", "status")]
    assert pending_seqs(api.stored(SYNCSCHEDULES, "nightly")) == [2]
