"""Who did what, stamped by the real API server's MutatingAdmissionPolicy and guarded by
its ValidatingAdmissionPolicy (policies/), with no webhook: the stamp names the real
user even while no operator runs, and nobody can store an entry in someone else's name
or erase one not yet audited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import psycopg
import pytest

from sync_operator.api.common import FINALIZER, SYNCJOBS, SYNCSCHEDULES
from sync_operator.audit.actions import (
    STAMP_PREFIX,
    schedule_actions,
    stamp_patch,
    syncjob_actions,
)
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.bodies import RawBody
from sync_operator.kube.resources import Resource
from sync_operator.mirror import upgrade
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.policies import install_policies, remove_policies
from testkit.syncjobs import grant_users, syncjob
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
OPERATOR_IDENTITY = "system:serviceaccount:sync-system:sync-operator"
DEMO = {"task": "demo", "items": 100, "unitSeconds": 0.2}


def stamp(n: int) -> str:
    return f"{STAMP_PREFIX}{n}"


def stamps(body: RawBody | Mapping[str, Any]) -> dict[str, str]:
    annotations: Mapping[str, str] = (body.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k.startswith(STAMP_PREFIX)}


def audit(url: str, uid: str) -> list[tuple[str, str]]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return [(a, p) for a, p in conn.execute(
            "select action, performed_by from sync_job_audit_logs where job_uid = %s "
            "order by performed_at, id", (uid,)).fetchall()]


def people(trail: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The audit rows of users' actions (the operator's own transitions left out)."""
    return [(a, p) for a, p in trail if p != OPERATOR_IDENTITY]


@pytest.fixture
async def users(cluster: LocalCluster, kube: KubeClient, namespace: str,
                crds: list[str]) -> AsyncIterator[tuple[KubeClient, KubeClient]]:
    """alice and bob, each allowed to edit SyncJobs and SyncSchedules here (not their
    status)."""
    await grant_users(kube, namespace)
    async with KubeClient(load_connection(cluster.user_kubeconfig("alice", namespace))) as a, \
            KubeClient(load_connection(cluster.user_kubeconfig("bob", namespace))) as b:
        yield a, b


async def annotate(client: KubeClient, name: str, namespace: str,
                   annotations: dict[str, str | None], **spec: Any) -> dict[str, Any]:
    patch: dict[str, Any] = {"metadata": {"annotations": annotations}}
    if spec:
        patch["spec"] = spec
    return dict(await client.patch(SYNCJOBS, name, patch, namespace))


def start_audited(start_operator: Callable[..., OperatorProcess],
                  database_url: str) -> OperatorProcess:
    """The operator with the mirror, and no webhook: the policies alone stamp."""
    return start_operator(database_url=database_url, identity=OPERATOR_IDENTITY)


async def audited_rows(kube: KubeClient, url: str, namespace: str, name: str,
                       count: int) -> list[tuple[str, str]]:
    """The users' audit rows once `count` of them reached PostgreSQL."""
    uid = (await kube.get(SYNCJOBS, name, namespace))["metadata"]["uid"]

    async def rows() -> list[tuple[str, str]] | None:
        found = people(audit(url, uid))
        return found if len(found) >= count else None

    return await eventually(rows, timeout=60, what=f"{count} audited user actions")


async def test_alice_pausing_while_no_operator_runs_is_audited_as_alice(
        kube: KubeClient, namespace: str, database_url: str,
        users: tuple[KubeClient, KubeClient],
        start_operator: Callable[..., OperatorProcess]) -> None:
    alice, _ = users
    upgrade(database_url)
    created = await alice.create(SYNCJOBS, syncjob("offline", "quran", params=DEMO),
                                 namespace)
    assert stamps(created) == {stamp(1): "create|jobType=quran,priority=5|alice"}
    paused = await alice.patch(SYNCJOBS, "offline", {"spec": {"paused": True}}, namespace)
    assert stamps(paused) == {stamp(1): "create|jobType=quran,priority=5|alice",
                              stamp(2): "pause||alice"}

    start_audited(start_operator, database_url)

    async def moved() -> RawBody | None:
        body = await kube.get(SYNCJOBS, "offline", namespace)
        return body if (body.get("status") or {}).get("actionsSeen") == 2 else None

    body = await eventually(moved, timeout=30, what="stamps moved into the status outbox")
    pending = ((body["status"].get("mirror") or {}).get("pending")) or []
    assert all(e["performedBy"] != "unknown" for e in pending)
    assert await audited_rows(kube, database_url, namespace, "offline", 2) == [
        ("create", "alice"), ("pause", "alice")]


async def test_the_api_server_puts_the_finalizer_on_at_create_so_the_operator_need_not(
        kube: KubeClient, namespace: str, users: tuple[KubeClient, KubeClient]) -> None:
    """No operator runs: the SyncJob is stored with the operator's finalizer (and a
    user's own finalizers kept beside it), so the operator writes none of its own."""
    alice, _ = users
    plain = await alice.create(SYNCJOBS, syncjob("finalized", "quran", params=DEMO),
                               namespace)
    assert plain["metadata"]["finalizers"] == [FINALIZER]
    own = syncjob("own-finalizer", "quran", params=DEMO)
    own["metadata"]["finalizers"] = ["example.com/keep"]
    kept = await alice.create(SYNCJOBS, own, namespace)
    assert kept["metadata"]["finalizers"] == ["example.com/keep", FINALIZER]
    already = syncjob("already", "quran", params=DEMO)
    already["metadata"]["finalizers"] = [FINALIZER]
    assert (await alice.create(SYNCJOBS, already, namespace))["metadata"]["finalizers"] == [
        FINALIZER]
    # Only at create: a user may still take it off (deleting such a job skips the audit
    # row, as with any finalizer a user removes), and an update does not put it back.
    stripped = await alice.patch(SYNCJOBS, "finalized", {"metadata": {"finalizers": None}},
                                 namespace)
    assert not stripped["metadata"].get("finalizers")
    updated = await alice.patch(SYNCJOBS, "finalized", {"spec": {"priority": 2}}, namespace)
    assert not updated["metadata"].get("finalizers")


async def test_bob_cannot_write_or_erase_stamps_with_the_operator_stopped_or_running(
        kube: KubeClient, namespace: str, database_url: str,
        users: tuple[KubeClient, KubeClient],
        start_operator: Callable[..., OperatorProcess]) -> None:
    alice, bob = users
    upgrade(database_url)
    await alice.create(SYNCJOBS, syncjob("guarded", "hadith", params=DEMO), namespace)
    await alice.patch(SYNCJOBS, "guarded", {"spec": {"paused": True}}, namespace)
    genuine = {stamp(1): "create|jobType=hadith,priority=5|alice", stamp(2): "pause||alice"}

    # Operator stopped: a forged entry, an erased one and a rewritten one are all undone.
    forged = await annotate(bob, "guarded", namespace, {stamp(3): "cancel||alice"})
    assert stamps(forged) == genuine
    erased = await annotate(bob, "guarded", namespace, {stamp(2): None})
    assert stamps(erased) == genuine
    rewritten = await annotate(bob, "guarded", namespace, {stamp(1): "create||bob",
                                                           stamp(2): "pause||bob"})
    assert stamps(rewritten) == genuine
    # A real change with a forged stamp riding along: the stamp names bob.
    changed = await annotate(bob, "guarded", namespace,
                             {stamp(3): "priority_change|from=5,to=3|alice"}, priority=3)
    assert stamps(changed) == {**genuine, stamp(3): "priority_change|from=5,to=3|bob"}
    # A main-resource request's status is dropped by the API server, and the policy
    # never believes it: claiming everything is audited does not erase anything.
    claimed = dict(await bob.patch(SYNCJOBS, "guarded", {
        "spec": {"paused": False}, "status": {"actionsSeen": 99}}, namespace))
    assert stamps(claimed) == {**genuine, stamp(3): "priority_change|from=5,to=3|bob",
                               stamp(4): "resume||bob"}

    start_audited(start_operator, database_url)
    assert await audited_rows(kube, database_url, namespace, "guarded", 4) == [
        ("create", "alice"), ("pause", "alice"), ("priority_change", "bob"),
        ("resume", "bob")]

    # Operator running: alice pauses; bob at once tries to erase her stamp (unseen or
    # just moved, whichever comes first) and to add a cancel in her name.
    paused = await alice.patch(SYNCJOBS, "guarded", {"spec": {"paused": True}}, namespace)
    [(pause_key, pause_value)] = [(k, v) for k, v in stamps(paused).items()
                                  if v == "pause||alice"]
    await annotate(bob, "guarded", namespace, {pause_key: None})
    await annotate(bob, "guarded", namespace, {stamp(int(pause_key.rsplit("/", 1)[1]) + 1):
                                               "cancel||alice"})
    after = await kube.get(SYNCJOBS, "guarded", namespace)
    assert "cancel" not in str(stamps(after))
    seen = int((after.get("status") or {}).get("actionsSeen") or 0)
    if int(pause_key.rsplit("/", 1)[1]) > seen:
        assert stamps(after)[pause_key] == pause_value
    assert await audited_rows(kube, database_url, namespace, "guarded", 5) == [
        ("create", "alice"), ("pause", "alice"), ("priority_change", "bob"),
        ("resume", "bob"), ("pause", "alice")]
    assert not (await kube.get(SYNCJOBS, "guarded", namespace))["spec"].get("cancel")


@pytest.fixture
async def validating_only(kube: KubeClient, crds: list[str]) -> AsyncIterator[None]:
    """A cluster with ValidatingAdmissionPolicy but no MutatingAdmissionPolicy (and here
    no webhook either): the guard stands alone. The mutating policy comes back after."""
    await remove_policies(kube, validating=False)
    try:
        yield
    finally:
        await install_policies(kube)


async def test_without_the_mutating_policy_the_guard_refuses_forgery_by_name(
        kube: KubeClient, namespace: str, users: tuple[KubeClient, KubeClient],
        validating_only: None) -> None:
    alice, bob = users
    await alice.create(SYNCJOBS, syncjob("bare", "audio"), namespace)
    # A stamp of one's own, numbered after everything stored: what the webhook writes.
    own = await annotate(alice, "bare", namespace, {stamp(1): "pause||alice"}, paused=True)
    assert stamps(own) == {stamp(1): "pause||alice"}

    with pytest.raises(ApiError) as forged:
        await annotate(bob, "bare", namespace, {stamp(2): "cancel||alice"}, cancel=True)
    assert forged.value.status == 403
    assert f"annotation {stamp(2)} is an audit stamp" in forged.value.message
    assert "name its own user (bob)" in forged.value.message

    with pytest.raises(ApiError) as erased:
        await annotate(bob, "bare", namespace, {stamp(1): None})
    assert erased.value.status == 403
    assert f"annotation {stamp(1)} records an action not yet audited" in erased.value.message

    with pytest.raises(ApiError) as rewritten:
        await annotate(bob, "bare", namespace, {stamp(1): "pause||bob"})
    assert f"annotation {stamp(1)} is an audit stamp" in rewritten.value.message

    with pytest.raises(ApiError) as renumbered:  # not after what is stored
        await annotate(bob, "bare", namespace, {"actions.sync.jobcontrol.io/x": "pause||bob"})
    assert "annotation actions.sync.jobcontrol.io/x is an audit stamp" \
        in renumbered.value.message
    body = await kube.get(SYNCJOBS, "bare", namespace)
    assert stamps(body) == {stamp(1): "pause||alice"}
    assert not body["spec"].get("cancel")


async def test_the_webhook_computes_exactly_what_the_policy_stores(
        kube: KubeClient, namespace: str, users: tuple[KubeClient, KubeClient]) -> None:
    """The webhook path (clusters without the API) writes the same stamps: for each
    change, stamp_patch on the request finds nothing left to do on what the API server
    stored, and on the stored object before the change it predicts every stamp."""
    alice, bob = users

    async def check(res: Resource, name: str, change: dict[str, Any], who: KubeClient,
                    user: str, actions: Callable[..., list[dict[str, Any]]]) -> None:
        old = dict(await kube.get(res, name, namespace))
        new = dict(await who.patch(res, name, change, namespace))
        request = {**old, "spec": new["spec"]}  # what arrived, before any stamping
        predicted = stamp_patch(old, request, actions("UPDATE", old, new), user)
        expected = {k: v for k, v in {**stamps(old), **predicted}.items() if v is not None}
        assert stamps(new) == expected, change
        assert stamp_patch(old, new, actions("UPDATE", old, new), user) == {}

    job = await alice.create(SYNCJOBS, syncjob("same", "quran", params=DEMO), namespace)
    assert stamp_patch(None, {**job, "metadata": {"name": "same"}},
                       syncjob_actions("CREATE", None, job), "alice") == stamps(job)
    await check(SYNCJOBS, "same", {"spec": {"paused": True, "priority": 2}}, alice, "alice",
                syncjob_actions)
    await kube.patch(SYNCJOBS, "same", {"status": {"actionsSeen": 2}}, namespace,
                     subresource="status")
    await check(SYNCJOBS, "same", {"spec": {"paused": False, "cancel": True}}, bob, "bob",
                syncjob_actions)
    await check(SYNCJOBS, "same", {"metadata": {"labels": {"x": "y"}}}, bob, "bob",
                syncjob_actions)

    schedule = await bob.create(SYNCSCHEDULES, {
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
        "metadata": {"name": "same"},
        "spec": {"jobType": "quran", "schedule": "0 3 * * *"}}, namespace)
    assert stamps(schedule) == {stamp(1): "schedule_create|schedule=0 3 * * *|bob"}
    await check(SYNCSCHEDULES, "same", {"spec": {
        "suspend": True, "schedule": "30 2 * * *", "timeZone": "Europe/Berlin",
        "timeoutMinutes": 9, "jobTemplate": {"params": {"x": 1}}}}, alice, "alice",
        schedule_actions)
