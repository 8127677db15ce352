"""The PostgreSQL mirror and audit log through the real operator, the real admission
webhook (registered with the local API server, next to the stamp policies the `crds`
fixture installs: both write the same stamps) and real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import Resource
from sync_operator.mirror import upgrade
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.ports import free_port
from testkit.syncjobs import grant_users, syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
VALIDATING = Resource("admissionregistration.k8s.io", "v1",
                      "validatingwebhookconfigurations", namespaced=False)
MUTATING = Resource("admissionregistration.k8s.io", "v1",
                    "mutatingwebhookconfigurations", namespaced=False)
OPERATOR_IDENTITY = "system:serviceaccount:sync-system:sync-operator"


def demo(items: int, unit_seconds: float) -> dict[str, Any]:
    return {"task": "demo", "items": items, "unitSeconds": unit_seconds}


def plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(plain_url(url)) as conn:
        return list(conn.execute(sql, args).fetchall())


@pytest.fixture
async def audited(cluster: LocalCluster, namespace: str, kube: KubeClient, database_url: str,
                  start_operator: Callable[..., OperatorProcess],
                  tmp_path: Path) -> AsyncIterator[tuple[OperatorProcess, str]]:
    """The operator with the mirror on a fresh database and its webhooks registered."""
    upgrade(database_url)
    cert, key = tmp_path / "webhook.crt", tmp_path / "webhook.key"
    cluster.pki.issue(cert, key, "sync-operator-webhook", ["IP:127.0.0.1"])
    config_name = f"sync.jobcontrol.io-{namespace}"
    operator = start_operator(
        database_url=database_url, identity=OPERATOR_IDENTITY, webhook_enabled="true",
        webhook_addr="127.0.0.1", webhook_host="127.0.0.1", webhook_port=str(free_port()),
        webhook_cert_file=str(cert), webhook_key_file=str(key),
        webhook_ca_file=str(cluster.pki.ca_cert), webhook_configuration_name=config_name)

    async def registered() -> bool:
        # kopf creates each configuration empty, then patches its webhooks in.
        configs = [await kube.get_or_none(res, config_name) for res in (MUTATING, VALIDATING)]
        return all(c and c.get("webhooks") for c in configs)

    await eventually(registered, timeout=30, what="webhook configurations")
    await grant_users(kube, namespace)
    await asyncio.sleep(1.0)  # the API server picks up new webhook configurations
    yield operator, database_url
    operator.stop()
    for res in (VALIDATING, MUTATING):
        await kube.delete(res, config_name)


def user_client(cluster: LocalCluster, user: str, namespace: str) -> KubeClient:
    return KubeClient(load_connection(cluster.user_kubeconfig(user, namespace)))


def audit(url: str, uid: str) -> list[tuple[str, str]]:
    return [(a, p) for a, p in rows(
        url, "select action, performed_by from sync_job_audit_logs where job_uid = %s "
             "order by performed_at, id", uid)]


async def drained(kube: KubeClient, ns: str, name: str) -> bool:
    body = await kube.get_or_none(SYNCJOBS, name, ns)
    return body is not None and not ((body.get("status") or {}).get("mirror") or {}).get(
        "pending")


async def test_actions_by_two_users_appear_with_their_names(
        cluster: LocalCluster, kube: KubeClient, namespace: str,
        audited: tuple[OperatorProcess, str]) -> None:
    _, url = audited
    async with user_client(cluster, "alice", namespace) as alice, \
            user_client(cluster, "bob", namespace) as bob:
        created = await alice.create(SYNCJOBS, syncjob("audited", "quran",
                                                       params=demo(100, 0.2)), namespace)
        uid = created["metadata"]["uid"]
        await wait_phase(kube, namespace, "audited", "Running", timeout=30)
        await alice.patch(SYNCJOBS, "audited", {"spec": {"paused": True}}, namespace)
        await wait_phase(kube, namespace, "audited", "Paused", timeout=30)
        await bob.patch(SYNCJOBS, "audited", {"spec": {"paused": False}}, namespace)
        await wait_phase(kube, namespace, "audited", "Running", timeout=30)
        await bob.patch(SYNCJOBS, "audited", {"spec": {"priority": 3}}, namespace)
        await alice.patch(SYNCJOBS, "audited", {"spec": {"cancel": True}}, namespace)
        await wait_phase(kube, namespace, "audited", "Cancelled", timeout=30)
        await eventually(lambda: drained(kube, namespace, "audited"), timeout=30,
                         what="outbox drained")

        users = [(a, p) for a, p in audit(url, uid) if p in ("alice", "bob")]
        assert users == [("create", "alice"), ("pause", "alice"), ("resume", "bob"),
                         ("priority_change", "bob"), ("cancel", "alice")]
        system = [a for a, p in audit(url, uid) if p == OPERATOR_IDENTITY]
        assert system[:2] == ["queued", "started"]
        assert "paused" in system
        assert system[-1] == "cancelled"
        [(status, priority, cancelled_at)] = rows(
            url, "select status, priority, cancelled_at from sync_job_control "
                 "where job_uid = %s", uid)
        assert (status, priority) == ("Cancelled", 3)
        assert cancelled_at is not None

        await bob.delete(SYNCJOBS, "audited", namespace)

        async def gone() -> bool:
            return await kube.get_or_none(SYNCJOBS, "audited", namespace) is None

        await eventually(gone, timeout=30, what="deleted")
        assert audit(url, uid)[-1] == ("delete", "bob")
        [(deleted_at,)] = rows(url, "select deleted_at from sync_job_control "
                                    "where job_uid = %s", uid)
        assert deleted_at is not None


async def test_webhook_rejects_what_the_schema_cannot_express(
        kube: KubeClient, namespace: str, audited: tuple[OperatorProcess, str]) -> None:
    bad = {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
           "metadata": {"name": "bad-zone"},
           "spec": {"jobType": "quran", "schedule": "0 3 * * *", "timeZone": "Mars/Olympus"}}
    with pytest.raises(ApiError) as rejected:
        await kube.create(SYNCSCHEDULES, bad, namespace)
    assert "Mars/Olympus" in rejected.value.message
    assert rejected.value.status == 422

    await kube.create(SYNCJOBS, syncjob("done", "hadith", params=demo(2, 0.05)), namespace)
    await wait_phase(kube, namespace, "done", "Succeeded", timeout=60)
    with pytest.raises(ApiError) as finished:
        await kube.patch(SYNCJOBS, "done", {"spec": {"priority": 1}}, namespace)
    assert "SyncJob done is Succeeded: changing spec.priority has no effect" \
        in finished.value.message


async def test_schedule_changes_are_mirrored_and_audited_with_the_user(
        cluster: LocalCluster, kube: KubeClient, namespace: str,
        audited: tuple[OperatorProcess, str]) -> None:
    _, url = audited
    async with user_client(cluster, "alice", namespace) as alice:
        created = await alice.create(SYNCSCHEDULES, {
            "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
            "metadata": {"name": "nightly"},
            "spec": {"jobType": "quran", "schedule": "0 3 * * *", "maxConcurrency": 1}},
            namespace)
        await alice.patch(SYNCSCHEDULES, "nightly", {"spec": {"suspend": True}}, namespace)
        await alice.patch(SYNCSCHEDULES, "nightly", {"spec": {"schedule": "30 2 * * *"}},
                          namespace)
    uid = created["metadata"]["uid"]

    async def mirrored() -> list[tuple[Any, ...]] | None:
        found = rows(url, "select cron_expression, suspended from sync_job_schedules "
                          "where schedule_uid = %s", uid)
        return found if found and found[0][0] == "30 2 * * *" else None

    assert await eventually(mirrored, timeout=30, what="schedule row") == [("30 2 * * *", True)]

    async def audited_actions() -> list[tuple[str, str]] | None:
        found = audit(url, uid)
        return found if len(found) >= 3 else None

    actions = await eventually(audited_actions, timeout=30, what="schedule audit rows")
    assert actions == [("schedule_create", "alice"), ("schedule_toggle", "alice"),
                       ("schedule_update", "alice")]

    async with user_client(cluster, "bob", namespace) as bob:
        await bob.delete(SYNCSCHEDULES, "nightly", namespace)

    async def gone() -> bool:
        return await kube.get_or_none(SYNCSCHEDULES, "nightly", namespace) is None

    await eventually(gone, timeout=30, what="schedule deleted through its finalizer")
    assert audit(url, uid)[-1] == ("delete", "bob")
    [(deleted_at,)] = rows(url, "select deleted_at from sync_job_schedules "
                                "where schedule_uid = %s", uid)
    assert deleted_at is not None


async def test_without_the_webhook_the_api_server_still_names_the_user(
        kube: KubeClient, namespace: str, database_url: str,
        start_operator: Callable[..., OperatorProcess]) -> None:
    """No webhook at all: the MutatingAdmissionPolicy (installed with the CRDs) stamps
    the change with the requesting user, here the admin, instead of "unknown"."""
    upgrade(database_url)
    start_operator(database_url=database_url, identity=OPERATOR_IDENTITY)
    created = await kube.create(SYNCJOBS, syncjob("unstamped", "audio",
                                                  params=demo(100, 0.2)), namespace)
    await wait_phase(kube, namespace, "unstamped", "Running", timeout=30)
    await kube.patch(SYNCJOBS, "unstamped", {"spec": {"paused": True, "priority": 2}},
                     namespace)
    await wait_phase(kube, namespace, "unstamped", "Paused", timeout=30)
    await eventually(lambda: drained(kube, namespace, "unstamped"), timeout=30,
                     what="drained")
    trail = audit(database_url, created["metadata"]["uid"])
    assert [row for row in trail if row[1] == "admin"] == [
        ("create", "admin"), ("pause", "admin"), ("priority_change", "admin")]
    assert not [row for row in trail if row[1] == "unknown"]
    assert ("paused", OPERATOR_IDENTITY) in trail
