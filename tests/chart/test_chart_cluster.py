"""The rendered chart on the real control plane: the API server accepts it, the operator
runs a SyncJob under exactly the chart's RBAC (a missing rule is a 403 here), and the
aggregated ClusterRoles give `edit` users SyncJobs and `view` users read access only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from chart_helpers import Installer, Release

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import (
    JOBS,
    LEASES,
    ROLEBINDINGS,
    SECRETS,
    Resource,
)
from sync_operator.mirror import current_revision, head_revision
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.ports import free_port
from testkit.servers import RedisServer
from testkit.syncjobs import wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews",
                                  namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments")
WEBHOOK_CONFIGS = [Resource("admissionregistration.k8s.io", "v1", plural, namespaced=False)
                   for plural in ("validatingwebhookconfigurations",
                                  "mutatingwebhookconfigurations")]
# Anything that says the API server refused the operator (kopf and our client alike);
# a bare 403 after a comma is a log timestamp's milliseconds, not a status.
DENIED = re.compile(r"forbidden|not enough (rbac )?permissions|(?<![,.:])\b403\b", re.IGNORECASE)
SYNCJOB = {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
           "metadata": {"name": "x"},
           "spec": {"jobType": "quran", "params": {"task": "demo", "items": 5,
                                                   "unitSeconds": 0.05}}}


async def can(kube: KubeClient, user: str, verb: str, resource: str, namespace: str = "",
              *, group: str = "", subresource: str = "", name: str = "") -> bool:
    """Ask the API server's authorizer (SubjectAccessReview) whether `user` may."""
    attributes = {"verb": verb, "group": group, "resource": resource,
                  "subresource": subresource, "namespace": namespace, "name": name}
    review = await kube.create(SUBJECT_ACCESS_REVIEWS, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "resourceAttributes": attributes}})
    return bool(review["status"].get("allowed"))


def sa_user(release: Release) -> str:
    return f"system:serviceaccount:{release.namespace}:{release.service_account}"


async def test_rendered_manifests_are_accepted_by_the_api_server(
        kube: KubeClient, install: Installer, namespace: str) -> None:
    """Cluster-wide defaults, applied whole (the Deployment at 0 replicas: the process
    kubelet cannot give its pods a ServiceAccount token)."""
    release = await install({"replicaCount": 0})
    kinds = {m["kind"] for m in release.manifests}
    assert kinds == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                     "RoleBinding", "Service", "Secret", "Deployment", "PodDisruptionBudget",
                     "SyncSchedule", "NetworkPolicy",
                     "Job"}  # the pre-delete hook (rendered; the fixture leaves it out)
    deployment = await kube.get(DEPLOYMENTS, release.fullname, namespace)
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    schedules = (await kube.list(SYNCSCHEDULES, namespace))["items"]
    assert sorted(s["metadata"]["name"] for s in schedules) == [
        "audio-weekly", "finance-daily", "hadith-weekly", "prayer-every-6h", "quran-daily"]

    # What the authorizer now grants the operator's ServiceAccount: what the code uses...
    user, other = sa_user(release), "default"
    sj = {"group": "sync.jobcontrol.io"}
    for verb in ("get", "list", "watch", "create", "patch", "delete"):
        assert await can(kube, user, verb, "syncjobs", other, **sj), verb
        assert await can(kube, user, verb, "jobs", other, group="batch"), verb
    assert await can(kube, user, "patch", "syncjobs", other, subresource="status", **sj)
    assert await can(kube, user, "patch", "syncschedules", other, subresource="status", **sj)
    assert await can(kube, user, "update", "syncjobs", other, subresource="finalizers", **sj)
    assert await can(kube, user, "watch", "syncschedules", other, **sj)
    assert await can(kube, user, "create", "events", other)
    assert await can(kube, user, "watch", "customresourcedefinitions",
                     group="apiextensions.k8s.io")
    for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        assert await can(kube, user, "create", kind, group="admissionregistration.k8s.io")
        for verb in ("patch", "delete"):  # delete: the uninstall hook
            assert await can(kube, user, verb, kind, group="admissionregistration.k8s.io",
                             name="sync.jobcontrol.io")
        for verb in ("patch", "delete"):
            assert not await can(kube, user, verb, kind,
                                 group="admissionregistration.k8s.io",
                                 name="someone-elses-webhook")
    assert await can(kube, user, "create", "leases", namespace, group="coordination.k8s.io")
    assert await can(kube, user, "update", "leases", namespace, group="coordination.k8s.io",
                     name="sync-operator")
    # ... and nothing beside it.
    assert not await can(kube, user, "update", "syncjobs", other, **sj)  # PUT: never used
    assert await can(kube, user, "delete", "syncschedules", other, **sj)  # the uninstall hook
    assert not await can(kube, user, "update", "syncjobs", other, subresource="status", **sj)
    assert not await can(kube, user, "patch", "events", other)
    assert not await can(kube, user, "get", "secrets", other)
    assert not await can(kube, user, "create", "pods", other)
    assert not await can(kube, user, "list", "namespaces")  # cluster-wide: kopf needs none
    assert not await can(kube, user, "get", "customresourcedefinitions",
                         group="apiextensions.k8s.io")
    assert not await can(kube, user, "create", "leases", other, group="coordination.k8s.io")
    assert not await can(kube, user, "update", "leases", namespace,
                         group="coordination.k8s.io", name="someone-else")


async def test_operator_runs_a_syncjob_under_the_charts_rbac(
        kube: KubeClient, install: Installer, namespace: str, cluster: LocalCluster,
        redis_server: RedisServer, database_url: str, tmp_path: Path) -> None:
    """The operator with the chart's ServiceAccount token and the chart's environment
    (namespaced mode: the test namespace is both the release and the watched namespace).
    The chart's migration Job brings the mirror's schema to head first (a real pod of
    the process kubelet). The webhooks are on, reachable on 127.0.0.1 rather than
    through the Service (there is no Service network here), under a per-test name."""
    webhook_name = f"sync.jobcontrol.io-{namespace}"
    await kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "sync-db"},
                                "stringData": {"database-url": database_url}}, namespace)
    release = await install({
        "watchNamespace": namespace,
        "database": {"existingSecret": "sync-db"},
        "webhook": {"configurationName": webhook_name},
        "redis": {"url": redis_server.url},
        "runner": {"image": {"repository": "registry.local/sync-runner", "tag": "test"},
                   "graceSeconds": 10},
        "admissionIntervalSeconds": 2, "cancelGraceSeconds": 5, "pauseGraceSeconds": 20,
        "metrics": {"port": free_port()},
    }, skip_kinds=frozenset({"Deployment"}))
    migrate = release.get("Job", f"{release.fullname}-migrate")
    assert "pre-install" in migrate["metadata"]["annotations"]["helm.sh/hook"]
    await eventually(lambda: _job_succeeded(kube, namespace, migrate["metadata"]["name"]),
                     timeout=90, interval=0.5, what="the migration Job")
    assert current_revision(database_url) == head_revision()

    settings = {name.removeprefix("SYNC_OPERATOR_").lower(): value
                for name, value in release.operator_env().items()}
    settings["database_url"] = database_url  # a secretKeyRef in the chart
    assert settings["namespace"] == namespace
    assert settings["lease_namespace"] == namespace
    assert settings["webhook_configuration_name"] == webhook_name
    cert, key = tmp_path / "webhook.crt", tmp_path / "webhook.key"
    cluster.pki.issue(cert, key, "sync-operator-webhook", ["IP:127.0.0.1"])
    # In a cluster the API server reaches the webhook through its Service; here the
    # operator is a local process and the local API server has no Service routing,
    # so the webhook is registered by URL on 127.0.0.1 instead.
    assert settings.pop("webhook_service_name") == f"{release.fullname}-webhook"
    assert settings.pop("webhook_service_namespace") == namespace
    settings.update(webhook_addr="127.0.0.1", webhook_host="127.0.0.1",
                    webhook_port=str(free_port()), webhook_cert_file=str(cert),
                    webhook_key_file=str(key), webhook_ca_file=str(cluster.pki.ca_cert))

    kubeconfig = cluster.service_account_kubeconfig(namespace, release.service_account)
    operator_log = tmp_path / "operator.log"
    operator = OperatorProcess(kubeconfig, operator_log, settings)
    operator.start()
    try:
        async def webhooks_registered() -> bool:  # kopf: create, then patch the webhooks
            configs = [await kube.get_or_none(res, webhook_name) for res in WEBHOOK_CONFIGS]
            return all(c and c.get("webhooks") for c in configs)

        await eventually(webhooks_registered, timeout=30,
                         what="kopf registering its webhook configurations")
        await asyncio.sleep(1.0)  # the API server picks up new webhook configurations
        await kube.create(SYNCJOBS, SYNCJOB, namespace)
        body = await wait_phase(kube, namespace, "x", "Succeeded", timeout=90)
        assert body["status"]["progress"]["done"] == 5

        lease = await kube.get(LEASES, settings["lease_name"], namespace)
        assert lease["spec"]["holderIdentity"].startswith("sync-operator@")

        async def schedules_reconciled() -> bool:
            items = (await kube.list(SYNCSCHEDULES, namespace))["items"]
            return len(items) == 5 and all(
                (s.get("status") or {}).get("nextScheduleTime") for s in items)

        await eventually(schedules_reconciled, timeout=30,
                         what="the operator writing every SyncSchedule's status")
        stamped = (await kube.get(SYNCJOBS, "x", namespace))["metadata"].get("annotations")
        assert stamped, "the mutating webhook did not stamp the creator"

        async def outbox_drained() -> bool:  # the mirror stored the audit entries
            body = await kube.get(SYNCJOBS, "x", namespace)
            return not ((body.get("status") or {}).get("mirror") or {}).get("pending")

        await eventually(outbox_drained, timeout=30, what="the mirror draining the outbox")

        # Pause, resume and cancel: suspending and unsuspending the batch Job.
        long_job = {**SYNCJOB, "metadata": {"name": "long"},
                    "spec": {**SYNCJOB["spec"],
                             "params": {"task": "demo", "items": 300, "unitSeconds": 0.1}}}
        await kube.create(SYNCJOBS, long_job, namespace)
        await wait_phase(kube, namespace, "long", "Running", timeout=60)
        await kube.patch(SYNCJOBS, "long", {"spec": {"paused": True}}, namespace)
        await wait_phase(kube, namespace, "long", "Paused", timeout=60)
        await kube.patch(SYNCJOBS, "long", {"spec": {"paused": False}}, namespace)
        await wait_phase(kube, namespace, "long", "Running", timeout=60)
        await kube.patch(SYNCJOBS, "long", {"spec": {"cancel": True}}, namespace)
        await wait_phase(kube, namespace, "long", "Cancelled", timeout=60)

        # History pruning: the schedule controller deletes a finished job past the limit.
        schedule = (await kube.list(SYNCSCHEDULES, namespace))["items"][0]["metadata"]["name"]
        await kube.patch(SYNCSCHEDULES, schedule, {"spec": {"successfulJobsHistoryLimit": 0}},
                         namespace)
        old = {**SYNCJOB, "metadata": {"name": "old-run",
                                       "labels": {"sync.jobcontrol.io/schedule": schedule}}}
        await kube.create(SYNCJOBS, old, namespace)
        await wait_phase(kube, namespace, "old-run", "Succeeded", timeout=90)
        await kube.patch(SYNCSCHEDULES, schedule, {"spec": {"suspend": True}}, namespace)

        async def pruned() -> bool:
            return await kube.get_or_none(SYNCJOBS, "old-run", namespace) is None

        await eventually(pruned, timeout=30, what="history pruned under the chart's RBAC")

        # Deletion runs the finalizer (Job deleted, deletion mirrored, finalizer removed).
        await kube.delete(SYNCJOBS, "x", namespace)

        async def gone() -> bool:
            return await kube.get_or_none(SYNCJOBS, "x", namespace) is None

        await eventually(gone, timeout=30, what="the finalizer letting the SyncJob go")
    finally:
        operator.stop()
        for res in WEBHOOK_CONFIGS:
            await kube.delete(res, webhook_name)
    log = operator_log.read_text()
    denied = [line for line in log.splitlines() if DENIED.search(line)]
    assert not denied, "the operator was refused by the chart's RBAC:\n" + "\n".join(denied)


async def _job_succeeded(kube: KubeClient, namespace: str, name: str) -> bool:
    status = (await kube.get(JOBS, name, namespace)).get("status") or {}
    assert not status.get("failed"), f"migration Job failed: {status}"
    return bool(status.get("succeeded"))


def _binding(namespace: str, user: str, cluster_role: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{cluster_role}", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": user}]}


async def test_edit_users_manage_syncjobs_and_view_users_only_read(
        kube: KubeClient, install: Installer, namespace: str, cluster: LocalCluster) -> None:
    await kube.create(ROLEBINDINGS, _binding(namespace, "alice", "edit"), namespace)
    await kube.create(ROLEBINDINGS, _binding(namespace, "bob", "view"), namespace)
    await install({"watchNamespace": namespace, "replicaCount": 0})

    async with KubeClient(load_connection(cluster.user_kubeconfig("alice", namespace))) as alice, \
            KubeClient(load_connection(cluster.user_kubeconfig("bob", namespace))) as bob:

        async def alice_creates() -> bool:  # once the aggregation controller caught up
            try:
                await alice.create(SYNCJOBS, SYNCJOB, namespace)
            except ApiError as err:
                if err.status != 403:
                    raise
                return False
            return True

        await eventually(alice_creates, timeout=30, interval=0.5,
                         what="alice (edit) allowed to create a SyncJob")
        await alice.patch(SYNCJOBS, "x", {"spec": {"paused": True}}, namespace)
        await alice.create(SYNCSCHEDULES, {
            "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
            "metadata": {"name": "mine"},
            "spec": {"jobType": "prayer", "schedule": "0 1 * * *"}}, namespace)
        with pytest.raises(ApiError) as status_write:
            await alice.patch(SYNCJOBS, "x", {"status": {"phase": "Succeeded"}}, namespace,
                              subresource="status")
        assert status_write.value.status == 403  # status stays the operator's

        async def bob_reads() -> bool:
            try:
                return bool((await bob.list(SYNCJOBS, namespace))["items"])
            except ApiError as err:
                if err.status != 403:
                    raise
                return False

        await eventually(bob_reads, timeout=30, interval=0.5, what="bob (view) reading SyncJobs")
        assert (await bob.get(SYNCSCHEDULES, "mine", namespace))["spec"]["jobType"] == "prayer"
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: bob.create(SYNCJOBS, {**SYNCJOB, "metadata": {"name": "y"}}, namespace),
            lambda: bob.patch(SYNCJOBS, "x", {"spec": {"cancel": True}}, namespace),
            lambda: bob.delete(SYNCJOBS, "x", namespace)]
        for attempt in attempts:
            with pytest.raises(ApiError) as denied:
                await attempt()
            assert denied.value.status == 403
        # Elsewhere neither has anything.
        with pytest.raises(ApiError) as elsewhere:
            await alice.list(SYNCJOBS, "default")
        assert elsewhere.value.status == 403
