"""The chart installed as a user installs it, on the cluster tests/e2e/conftest.py picks
(the local one by default, or any through a KUBECONFIG): `helm install --wait` runs the
migrate hook Job and both operator replicas as pods (here: of the process kubelet), each
under the chart's ServiceAccount with its projected token, its webhook certificate
mounted from the chart's Secret. One replica leads through the Lease; the API server
reaches the webhooks through their Service; a user bound to the built-in `edit` role
runs a SyncJob to Succeeded and the audit row names that user, one bound to `view` may
only read; `helm upgrade` rolls both pods under a running job, which still finishes
once; deleting the leader's pod hands over; `helm uninstall` leaves the CRDs and the
database's rows.

Prints the install time, the time from install to the first SyncJob Succeeded, and the
operator pods' memory (for the README and the issue's note).
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
import yaml
from e2e_target import Target, prepare_release

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.resources import (
    CLUSTERROLES,
    CRDS,
    JOBS,
    PODS,
    SECRETS,
    SERVICEACCOUNTS,
    Resource,
)
from sync_operator.mirror import current_revision, head_revision
from testkit.drills import rows
from testkit.release import (
    CHART,
    helm,
    install,
    leader,
    operator_pods,
    pods_report,
    ready,
    rss_mib,
    service_account_with,
    set_values,
)
from testkit.syncjobs import wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
CHART_CRDS = sorted(yaml.safe_load(path.read_text())["metadata"]["name"]
                    for path in (CHART / "crds").glob("*.yaml"))

ENDPOINTS = Resource("", "v1", "endpoints")
WEBHOOK_CONFIGS = [Resource("admissionregistration.k8s.io", "v1", plural, namespaced=False)
                   for plural in ("validatingwebhookconfigurations",
                                  "mutatingwebhookconfigurations")]


def _syncjob(name: str, items: int = 5) -> dict[str, Any]:
    return {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": name},
            "spec": {"jobType": "prayer",
                     "params": {"task": "demo", "items": items, "unitSeconds": 0.05}}}


async def _console_as_viewer(kube: KubeClient, namespace: str, console: str) -> None:
    await service_account_with(kube, namespace, "viewer", ("ClusterRole", "view"))
    token = (await kube.create(SERVICEACCOUNTS, {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600}}, namespace, subresource="token", name="viewer")
             )["status"]["token"]
    pods = (await kube.list(PODS, namespace,
                            label_selector="app.kubernetes.io/component=console"))["items"]
    assert len(pods) == 1, pods
    assert ready(pods[0])
    base = f"http://{pods[0]['status']['podIP']}:8090/api/v1/namespaces/{namespace}"
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{base}/syncjobs") as resp:
            assert resp.status == 200, await resp.text()
            names = {j["metadata"]["name"] for j in (await resp.json())["items"]}
        assert "by-alice" in names
        async with http.post(f"{base}/syncjobs/by-alice/pause") as resp:
            assert resp.status == 403, await resp.text()
        async with http.get(f"{base}/access") as resp:
            assert (await resp.json())["pause"] is False


@pytest.mark.timeout(600)  # an install, two jobs, a hand-over and an uninstall
async def test_helm_install_wait_runs_the_operator_pods_and_an_edit_users_syncjob(
        target: Target, e2e_kube: KubeClient, e2e_namespace: str) -> None:
    kube, namespace, database_url = e2e_kube, e2e_namespace, target.local_database_url
    release, config = f"r-{namespace}", target.kubeconfig
    fullname = f"{release}-sync-operator"
    webhook_name = f"sync.jobcontrol.io-{namespace}"
    values = await prepare_release(kube, target, namespace, webhook_name,
                                   **{"runner.graceSeconds": "10"})
    started = time.monotonic()
    try:
        installed = await install(config, release, namespace, values)
    except AssertionError as err:
        report = await pods_report(kube, namespace, target.log_dir)
        raise AssertionError(f"{err}\n{report}") from None
    try:
        # --wait returned: the hook ran the migration, both replicas are Ready.
        assert current_revision(database_url) == head_revision()
        pods = await operator_pods(kube, namespace)
        assert len(pods) == 2, pods
        assert all(ready(p) for p in pods), pods
        assert {p["spec"]["serviceAccountName"] for p in pods} == {fullname}
        assert len({p["status"]["podIP"] for p in pods}) == 2  # one IP each
        lead = await leader(kube, namespace)

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

        async with KubeClient(target.connection("alice")) as alice:
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
        memory = [f"{rss_mib(p):.0f} MiB" for p in await operator_pods(kube, namespace)
                  ] if target.process_pods else ["not readable (pods are not local processes)"]

        # `view` reads SyncJobs and may change none.
        async with KubeClient(target.connection("carol")) as carol:
            assert (await carol.get(SYNCJOBS, "by-alice", namespace))["spec"]["jobType"]
            with pytest.raises(ApiError) as refused:
                await carol.patch(SYNCJOBS, "by-alice", {"spec": {"priority": 1}}, namespace)
            assert refused.value.status == 403

        # The console, from the chart, under its callers' own rights: a ServiceAccount
        # bound to `view` lists the job through it and is refused a pause.
        if target.process_pods:  # its pod IP is reachable from here
            await _console_as_viewer(kube, namespace, f"{fullname}-console")

        # `helm upgrade` rolls both pods (a changed value changes the pod template) while
        # a job runs: its runner pod is the Job's, not the operator's, and the job
        # finishes once, with every item, under the new pods.
        await kube.create(SYNCJOBS, _syncjob("across-upgrade", items=100), namespace)
        await wait_phase(kube, namespace, "across-upgrade", "Running", timeout=60)
        before = {p["metadata"]["name"] for p in pods}
        tls = await kube.get(SECRETS, f"{fullname}-webhook-tls", namespace)
        upgrade_started = time.monotonic()
        await helm(config, "upgrade", release, str(CHART), "--namespace", namespace,
                   "--wait", "--timeout", "150s", "--reuse-values",
                   *set_values({"workers": "8"}))
        upgraded = time.monotonic() - upgrade_started
        after = await kube.get(SECRETS, f"{fullname}-webhook-tls", namespace)
        assert after["data"] == tls["data"], "an upgrade must not rotate the certificate"
        rolled = await operator_pods(kube, namespace)
        assert len(rolled) == 2, rolled
        assert not before & {p["metadata"]["name"] for p in rolled}
        body = await wait_phase(kube, namespace, "across-upgrade", "Succeeded", timeout=120)
        assert body["status"]["progress"]["done"] == 100
        jobs = (await kube.list(JOBS, namespace))["items"]
        assert [j["status"].get("succeeded") for j in jobs
                if j["metadata"]["name"].startswith("across-upgrade")] == [1]
        lead = await leader(kube, namespace)

        # The leader's pod deleted: it releases the Lease on SIGTERM, another replica
        # (the standby, or the pod its ReplicaSet starts in its place) takes it and
        # runs the next job.
        await kube.delete(PODS, lead, namespace)

        successor = await leader(kube, namespace, other_than=lead)
        assert successor != lead
        await kube.create(SYNCJOBS, _syncjob("after-handover"), namespace)
        await wait_phase(kube, namespace, "after-handover", "Succeeded", timeout=120)

        print(f"\nhelm install --wait: {installed:.1f} s; install to first SyncJob "
              f"Succeeded: {first_success:.1f} s; helm upgrade --wait (both pods rolled): "
              f"{upgraded:.1f} s; operator pods' RSS: "
              + ", ".join(memory))
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
    assert not await operator_pods(kube, namespace)
    assert not (await kube.list(SYNCSCHEDULES, namespace))["items"]
    # Each default schedule's deletion is audited, by the hook's ServiceAccount.
    deleted = rows(database_url, "select performed_by, count(*) from sync_job_audit_logs "
                                 "where action = 'delete' group by performed_by")
    assert deleted == [(f"system:serviceaccount:{namespace}:{fullname}", 5)]
    # No cluster-scoped role is left.
    for suffix in ("", "-cluster", "-edit", "-view", "-console", "-console-reviews"):
        assert await kube.get_or_none(CLUSTERROLES, fullname + suffix) is None, suffix
    for crd in CHART_CRDS:  # CRDs, the users' SyncJobs and the database's rows stay
        assert await kube.get_or_none(CRDS, crd) is not None
    assert (await kube.get(SYNCJOBS, "by-alice", namespace))["status"]["phase"] == "Succeeded"
    # No operator is left to let them go.
    for name in ("by-alice", "across-upgrade", "after-handover"):
        await kube.patch(SYNCJOBS, name, {"metadata": {"finalizers": None}}, namespace)
