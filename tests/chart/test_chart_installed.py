"""The chart installed as a user installs it: `helm install --wait` runs the migrate hook
Job and both operator replicas as pods of the process kubelet, each under the chart's
ServiceAccount with its projected token, its webhook certificate mounted from the
chart's Secret, listening on its own pod IP. One replica leads through the Lease; the
API server reaches the webhooks through their Service; a user bound to the built-in
`edit` role runs a SyncJob to Succeeded and the audit row names that user; deleting the
leader's pod hands over; `helm uninstall` leaves the CRDs and the database's rows.

Prints the install time, the time from install to the first SyncJob Succeeded, and the
operator pods' memory (for the README and the issue's note).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from chart_helpers import CHART, helm

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.kube import ApiError, KubeClient, load_connection
from sync_operator.kube.resources import (
    CRDS,
    LEASES,
    PODS,
    ROLEBINDINGS,
    SECRETS,
    Resource,
)
from sync_operator.mirror import current_revision, head_revision
from testkit.cluster import LocalCluster
from testkit.drills import rows
from testkit.servers import RedisServer
from testkit.syncjobs import wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

ENDPOINTS = Resource("", "v1", "endpoints")
WEBHOOK_CONFIGS = [Resource("admissionregistration.k8s.io", "v1", plural, namespaced=False)
                   for plural in ("validatingwebhookconfigurations",
                                  "mutatingwebhookconfigurations")]
OPERATOR_POD = "app.kubernetes.io/component=operator"


def _syncjob(name: str, items: int = 5) -> dict[str, Any]:
    return {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": name},
            "spec": {"jobType": "prayer",
                     "params": {"task": "demo", "items": items, "unitSeconds": 0.05}}}


def _edit_binding(user: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{user}-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": user}]}


def _rss_mib(pod: dict[str, Any]) -> float:
    """Resident memory of the pod's operator process (containerID process://<pid>)."""
    pid = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("process://")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def _operator_pods(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    pods = (await kube.list(PODS, namespace, label_selector=OPERATOR_POD))["items"]
    return [dict(p) for p in pods if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def _leader(kube: KubeClient, namespace: str, lease: str, *,
                  other_than: str | None = None) -> str:
    """The live operator pod whose replica holds the Lease (not `other_than`)."""
    async def holder() -> str | None:
        body = await kube.get_or_none(LEASES, lease, namespace)
        identity = str(((body or {}).get("spec") or {}).get("holderIdentity") or "")
        pods = [p["metadata"]["name"] for p in await _operator_pods(kube, namespace)]
        return next((p for p in pods if f"@{p}-" in identity and p != other_than), None)

    return await eventually(holder, timeout=60, what="an operator pod holding the Lease")


async def _pods_report(kube: KubeClient, cluster: LocalCluster, namespace: str) -> str:
    """Each pod's phase, container states and the end of its logs (why --wait failed)."""
    out = []
    for pod in (await kube.list(PODS, namespace))["items"]:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        out.append(f"pod {name}: {status.get('phase')} "
                   f"{[c.get('state') for c in status.get('containerStatuses') or []]}")
        for log in sorted((cluster.root / "kubelet" / "logs").glob(f"{namespace}_{name}_*")):
            out.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)


@pytest.mark.timeout(600)  # an install, two jobs, a hand-over and an uninstall
async def test_helm_install_wait_runs_the_operator_pods_and_an_edit_users_syncjob(
        kube: KubeClient, cluster: LocalCluster, namespace: str, redis_server: RedisServer,
        database_url: str, chart_crds: list[str]) -> None:
    release, config = f"r-{namespace}", cluster.admin_kubeconfig
    fullname = f"{release}-sync-operator"
    webhook_name = f"sync.jobcontrol.io-{namespace}"
    await kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "sync-db"},
                                "stringData": {"database-url": database_url}}, namespace)
    await kube.create(ROLEBINDINGS, _edit_binding("alice"), namespace)
    values = ["--set", f"watchNamespace={namespace}",
              "--set", "database.existingSecret=sync-db",
              "--set", "database.key=database-url",
              "--set", f"redis.url={redis_server.url}",
              "--set", f"webhook.configurationName={webhook_name}",
              "--set", "listenOnPodIP=true",
              "--set", "runner.graceSeconds=10"]
    started = time.monotonic()
    try:
        await helm(config, "install", release, str(CHART), "--namespace", namespace,
                   "--wait", "--timeout", "150s", *values)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{await _pods_report(kube, cluster, namespace)}") from None
    installed = time.monotonic() - started
    try:
        # --wait returned: the hook ran the migration, both replicas are Ready.
        assert current_revision(database_url) == head_revision()
        pods = await _operator_pods(kube, namespace)
        assert len(pods) == 2, pods
        assert all(_ready(p) for p in pods), pods
        assert {p["spec"]["serviceAccountName"] for p in pods} == {fullname}
        assert len({p["status"]["podIP"] for p in pods}) == 2  # one IP each
        leader = await _leader(kube, namespace, "sync-operator")

        async def webhook_served() -> bool:  # kopf registers, the Service has endpoints
            configs = [await kube.get_or_none(res, webhook_name) for res in WEBHOOK_CONFIGS]
            endpoints = await kube.get_or_none(ENDPOINTS, f"{fullname}-webhook", namespace)
            addresses = [a for s in (endpoints or {}).get("subsets") or []
                         for a in s.get("addresses") or []]
            return bool(configs[0] and configs[0].get("webhooks") and len(addresses) == 2)

        await eventually(webhook_served, timeout=60, what="the webhooks behind their Service")

        # The schedule webhook (failurePolicy Fail), reached through the Service: its
        # own message comes back, not "failed calling webhook".
        async def refused_by_the_webhook() -> bool:
            try:
                await kube.create(SYNCSCHEDULES, {
                    "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncSchedule",
                    "metadata": {"name": "bad-zone"},
                    "spec": {"jobType": "prayer", "schedule": "0 1 * * *",
                             "timeZone": "Mars/Olympus"}}, namespace, dry_run=True)
            except ApiError as err:
                return "spec.schedule" in err.message  # else "failed calling webhook"
            raise AssertionError("a schedule in Mars/Olympus time was admitted")

        await eventually(refused_by_the_webhook, timeout=60,
                         what="the schedule webhook answering through its Service")

        async with KubeClient(load_connection(
                cluster.user_kubeconfig("alice", namespace))) as alice:
            created = await alice.create(SYNCJOBS, _syncjob("by-alice"), namespace)
            body = await wait_phase(kube, namespace, "by-alice", "Succeeded", timeout=120)
        first_success = time.monotonic() - started
        assert body["status"]["progress"]["done"] == 5
        uid = created["metadata"]["uid"]

        async def audited() -> list[tuple[Any, ...]]:
            return rows(database_url, "select action, performed_by from sync_job_audit_logs "
                                      "where job_uid = %s and action = 'create'", uid)

        assert await eventually(audited, timeout=30, what="the audit row") == [
            ("create", "alice")]
        memory = {p["metadata"]["name"]: _rss_mib(p) for p in await _operator_pods(
            kube, namespace)}

        # The leader's pod deleted: it releases the Lease on SIGTERM, another replica
        # (the standby, or the pod its ReplicaSet starts in its place) takes it and
        # runs the next job.
        await kube.delete(PODS, leader, namespace)

        successor = await _leader(kube, namespace, "sync-operator", other_than=leader)
        assert successor != leader
        await kube.create(SYNCJOBS, _syncjob("after-handover"), namespace)
        await wait_phase(kube, namespace, "after-handover", "Succeeded", timeout=120)

        print(f"\nhelm install --wait: {installed:.1f} s; install to first SyncJob "
              f"Succeeded: {first_success:.1f} s; operator pods' RSS: "
              + ", ".join(f"{mib:.0f} MiB" for mib in memory.values()))
    finally:
        # The pre-delete hook removes the schedules (the operator records each deletion)
        # and kopf's webhook configurations; --wait returns once everything has gone.
        await helm(config, "uninstall", release, "--namespace", namespace, "--wait",
                   "--timeout", "120s")
        left = [res.plural for res in WEBHOOK_CONFIGS
                if await kube.get_or_none(res, webhook_name) is not None]
        for res in WEBHOOK_CONFIGS:  # never leave a stale Fail webhook to other tests
            if res.plural in left:
                await kube.delete(res, webhook_name)
    assert left == [], "the webhook configurations outlived the release"
    assert not await _operator_pods(kube, namespace)
    assert not (await kube.list(SYNCSCHEDULES, namespace))["items"]
    # Each default schedule's deletion is audited, by the hook's ServiceAccount.
    deleted = rows(database_url, "select performed_by, count(*) from sync_job_audit_logs "
                                 "where action = 'delete' group by performed_by")
    assert deleted == [(f"system:serviceaccount:{namespace}:{fullname}", 5)]
    for crd in chart_crds:  # CRDs, the users' SyncJobs and the database's rows stay
        assert await kube.get_or_none(CRDS, crd) is not None
    assert (await kube.get(SYNCJOBS, "by-alice", namespace))["status"]["phase"] == "Succeeded"
    for name in ("by-alice", "after-handover"):  # no operator is left to let them go
        await kube.patch(SYNCJOBS, name, {"metadata": {"finalizers": None}}, namespace)
