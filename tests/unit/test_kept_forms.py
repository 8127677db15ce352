"""What the operator keeps per object, and that the smaller forms read the same: the
SyncJob store's JSON bytes, a LIST cut down page by page, a batch Job's essentials,
and kopf keeping no per-object record (issue 11: memory per SyncJob)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from aiohttp import web
from kopf import Memo
from kopf._cogs.structs.ephemera import AnyMemo

from sync_operator.app.handlers import EventOnlyMemories
from sync_operator.app.runtime import _owning_syncjob, job_essentials
from sync_operator.kube import KubeClient
from sync_operator.kube.config import Connection
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.resources import JOBS
from sync_operator.kube.store import ObjectStore
from sync_operator.syncjob.job_builder import JobSettings, build_job
from sync_operator.syncjob.queue.cache import JobCache
from sync_operator.syncjob.statemachine import JobObservation
from sync_operator.syncjob.stored import StoredSyncJob

MANAGED = [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:jobType": {}}}}]


def syncjob(name: str, version: int, *, dedup: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"jobType": "quran", "priority": 5}
    if dedup:
        spec["dedupKey"] = dedup
    return {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}",
                         "resourceVersion": str(version),
                         "creationTimestamp": "2026-03-01T09:00:00Z",
                         "managedFields": MANAGED},
            "spec": spec, "status": {"phase": "Queued", "conditions": [
                {"type": "Admitted", "status": "False", "reason": "Queued"}]}}


def test_a_stored_syncjob_reads_as_its_body_without_managed_fields_a_fresh_copy_each_time(
        ) -> None:
    body = syncjob("q1", 7, dedup="nightly")
    stored = StoredSyncJob.of(body)
    read = stored.body()
    expected = {**body, "metadata": {k: v for k, v in body["metadata"].items()
                                     if k != "managedFields"}}
    assert read == expected
    assert stored.dedup_key == "nightly"
    assert StoredSyncJob.of(syncjob("q2", 8)).dedup_key is None
    read["status"]["phase"] = "Running"  # the reader's own copy
    assert stored.body()["status"]["phase"] == "Queued"
    assert "managedFields" in body["metadata"]  # the event is left as it was


def test_a_store_replace_reads_a_generator_once_and_returns_the_listed_keys() -> None:
    store: ObjectStore[StoredSyncJob] = ObjectStore(kind="SyncJob", keep=StoredSyncJob.of)
    store.put(syncjob("gone", 5))
    store.put(syncjob("created-meanwhile", 30))
    reads: list[str] = []

    def listed() -> Iterator[dict[str, Any]]:
        for name in ("q1", "q2"):
            reads.append(name)
            yield syncjob(name, 10)

    keys = store.replace(listed(), "20")
    assert reads == ["q1", "q2"]
    assert keys == [ObjectKey("team-a", "q1"), ObjectKey("team-a", "q2")]
    assert store.get(ObjectKey("team-a", "gone")) is None
    assert store.get(ObjectKey("team-a", "created-meanwhile")) is not None


def test_a_job_cache_replace_reads_a_generator_once() -> None:
    cache = JobCache()
    cache.observe(syncjob("gone", 5))
    changed = cache.replace((syncjob(n, 10) for n in ("q1", "q2")), "20")
    assert changed
    assert cache.phase("uid-gone") is None
    assert cache.phase("uid-q1") is not None
    assert cache.phase("uid-q2") is not None


def finished_job() -> dict[str, Any]:
    owner = {"metadata": {"name": "q1", "namespace": "team-a", "uid": "uid-q1"},
             "spec": {"jobType": "quran", "params": {"task": "demo"}}}
    job = build_job(owner, JobSettings(image="sync-runner:test", redis_url="redis://x"))
    job["kind"] = "Job"
    job["metadata"].update(namespace="team-a", uid="uid-job", resourceVersion="41",
                           managedFields=MANAGED)
    job["spec"]["suspend"] = False
    job["status"] = {"succeeded": 1, "terminating": 0, "conditions": [
        {"type": "Complete", "status": "True", "reason": "CompletionsReached"},
        {"type": "Failed", "status": "False"}]}
    return job


def test_a_jobs_essentials_read_as_the_job_does_and_leave_out_the_template() -> None:
    job = finished_job()
    kept = job_essentials(job)  # type: ignore[arg-type]
    assert JobObservation.from_body(kept) == JobObservation.from_body(job)
    assert _owning_syncjob(kept) == _owning_syncjob(job)
    assert ObjectKey.of(kept) == ObjectKey.of(job)
    assert kept["metadata"]["resourceVersion"] == "41"
    assert "template" not in kept["spec"]
    assert "managedFields" not in kept["metadata"]
    views: ObjectStore[JobObservation] = ObjectStore(kind="Job", keep=JobObservation.from_body)
    assert views.put(kept)
    running = finished_job()
    del running["kind"]  # items of a LIST of Jobs carry no kind
    running["spec"]["suspend"] = True
    running["status"] = {"active": 1}
    assert "kind" not in job_essentials(running)  # type: ignore[arg-type]
    assert JobObservation.from_body(job_essentials(running)).suspended  # type: ignore[arg-type]


@pytest.fixture
async def paged_api() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A LIST of five Jobs in pages of two (continue tokens), as the API server pages."""
    jobs = [{**finished_job(), "metadata": {"name": f"j{n}", "namespace": "ns"}}
            for n in range(5)]
    asked: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        asked.append(dict(request.query))
        start = int(request.query.get("continue") or 0)
        size = int(request.query["limit"])
        meta = {"resourceVersion": "77" if start == 0 else "99"}
        if start + size < len(jobs):
            meta["continue"] = str(start + size)
        return web.json_response({"kind": "JobList", "apiVersion": "batch/v1",
                                  "metadata": meta, "items": jobs[start:start + size]})

    app = web.Application()
    app.router.add_get("/apis/batch/v1/namespaces/ns/jobs", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", asked
    await runner.cleanup()


async def test_a_kept_list_makes_each_item_as_its_page_arrives_and_keeps_the_first_version(
        paged_api: tuple[str, list[dict[str, str]]]) -> None:
    url, asked = paged_api
    seen: list[tuple[str, int]] = []

    def keep(item: Any) -> str:
        seen.append((item["metadata"]["name"], len(asked)))  # which page brought it
        return str(item["metadata"]["name"])

    async with KubeClient(Connection(server=url)) as client:
        kept, version = await client.list_kept(JOBS, "ns", keep, label_selector="a=b",
                                               page_size=2)
        listed = await client.list(JOBS, "ns", page_size=2)
    assert kept == ["j0", "j1", "j2", "j3", "j4"]
    assert version == "77"  # the snapshot's, from the first page
    assert seen == [("j0", 1), ("j1", 1), ("j2", 2), ("j3", 2), ("j4", 3)]
    assert [a.get("continue") for a in asked[:3]] == [None, "2", "4"]
    assert asked[0]["labelSelector"] == "a=b"
    assert [i["metadata"]["name"] for i in listed["items"]] == kept
    assert listed["metadata"] == {"resourceVersion": "77"}
    assert (listed["kind"], listed["apiVersion"]) == ("JobList", "batch/v1")


async def test_kopf_keeps_no_record_of_an_object_between_its_events() -> None:
    memories = EventOnlyMemories()
    runtime = object()
    memobase = AnyMemo(Memo(runtime=runtime))
    body = {"metadata": {"uid": "uid-q1", "name": "q1"}}
    first = await memories.recall(body, memobase=memobase)  # type: ignore[arg-type]
    second = await memories.recall(body, memobase=memobase)  # type: ignore[arg-type]
    assert first is not second
    assert cast(Memo, first.memo)["runtime"] is runtime  # what the handlers read of it
    assert list(memories.iter_all_memories()) == []
    assert await memories.recall_memo(body, memobase=memobase) is not None  # type: ignore[arg-type]
    assert list(memories.iter_all_memories()) == []
