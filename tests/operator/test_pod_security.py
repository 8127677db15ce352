"""Pod Security Admission on the real API server: the test namespaces enforce the
`restricted` standard, and every pod we ship is admitted under it: the runner pod that
job_builder makes for a SyncJob, and each pod template the Helm chart renders.

Admission is checked with server-side dry-run creates of Pods (dryRun=All): the
PodSecurity admission plugin judges the pod exactly as for a real create, and nothing is
stored or run.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.resources import NAMESPACES, PODS, SERVICEACCOUNTS
from sync_operator.syncjob.job_builder import ContainerResources, JobSettings, build_job
from testkit.cluster import LocalCluster
from testkit.helm import template
from testkit.podsecurity import PSA, RESTRICTED, namespace_labels, restricted

pytestmark = pytest.mark.cluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "sync-operator"
VIOLATION = 'violates PodSecurity "restricted:latest"'
# Kinds whose manifests carry a pod template, and where it is.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def compliant_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": restricted({"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "python", "command": ["python", "-c", "pass"]}]})}


def as_pod(name: str, pod_template: Mapping[str, Any]) -> dict[str, Any]:
    """A Pod made from a pod template (what its controller would create)."""
    meta = pod_template.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": dict(meta.get("labels") or {}),
                         "annotations": dict(meta.get("annotations") or {})},
            "spec": copy.deepcopy(dict(pod_template["spec"]))}


async def admitted(kube: KubeClient, namespace: str, pod: Mapping[str, Any]) -> None:
    """Dry-run create `pod`; fail with the server's message if admission refuses it."""
    try:
        created = await kube.create(PODS, pod, namespace, dry_run=True)
    except ApiError as err:
        raise AssertionError(f"pod {pod['metadata']['name']} refused in {namespace}: "
                             f"{err.status} {err.message}") from None
    assert created["metadata"]["name"] == pod["metadata"]["name"]
    assert await kube.get_or_none(PODS, pod["metadata"]["name"], namespace) is None  # dry


@pytest.fixture
async def unlabeled_namespace(kube: KubeClient) -> AsyncIterator[str]:
    """A namespace deliberately without Pod Security labels (the cluster default:
    privileged), to show that what `namespace` refuses is refused for its labels."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name}})
    yield name
    await kube.delete(NAMESPACES, name)


# -- (a) the test namespaces really enforce restricted ------------------------------------


def _no_run_as_non_root(pod: dict[str, Any]) -> None:
    del pod["spec"]["securityContext"]["runAsNonRoot"]
    del pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"]


def _root_user(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0


def _escalation(pod: dict[str, Any]) -> None:
    del pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"]


def _capabilities(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}


def _no_seccomp(pod: dict[str, Any]) -> None:
    del pod["spec"]["securityContext"]["seccompProfile"]
    del pod["spec"]["containers"][0]["securityContext"]["seccompProfile"]


def _host_path(pod: dict[str, Any]) -> None:
    pod["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/etc"}}]


def _host_network(pod: dict[str, Any]) -> None:
    pod["spec"]["hostNetwork"] = True


# No `privileged: true` case: the local API server runs without --allow-privileged, so
# validation refuses such a pod (422 "disallowed by cluster policy") before PodSecurity
# is asked, in every namespace.
VIOLATIONS = {
    "no-runAsNonRoot": (_no_run_as_non_root, "runAsNonRoot != true (pod or container \"c\" "
                                             "must set securityContext.runAsNonRoot=true)"),
    "root-user": (_root_user, 'runAsUser=0 (container "c" must not set runAsUser=0)'),
    "escalation": (_escalation, "allowPrivilegeEscalation != false"),
    "capabilities": (_capabilities, "unrestricted capabilities"),
    "no-seccomp": (_no_seccomp, "seccompProfile"),
    "hostPath": (_host_path, 'restricted volume types (volume "host" uses restricted '
                             'volume type "hostPath")'),
    "hostNetwork": (_host_network, "host namespaces (hostNetwork=true)"),
}


async def test_test_namespaces_carry_the_restricted_labels(kube: KubeClient,
                                                           namespace: str) -> None:
    labels = (await kube.get(NAMESPACES, namespace))["metadata"].get("labels") or {}
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"{PSA}/{mode}"] == RESTRICTED
        assert labels[f"{PSA}/{mode}-version"] == "latest"
    assert namespace_labels().items() <= labels.items()


async def test_a_compliant_pod_is_admitted(kube: KubeClient, namespace: str) -> None:
    await admitted(kube, namespace, compliant_pod("fine"))


@pytest.mark.parametrize("violation", list(VIOLATIONS))
async def test_a_pod_breaking_a_restricted_rule_is_refused_naming_the_rule(
        kube: KubeClient, namespace: str, unlabeled_namespace: str, violation: str) -> None:
    breaks, rule = VIOLATIONS[violation]
    pod = compliant_pod(f"bad-{violation.lower()}")
    breaks(pod)
    with pytest.raises(ApiError) as refused:
        await kube.create(PODS, pod, namespace, dry_run=True)
    assert refused.value.status == 403, refused.value.message
    assert VIOLATION in refused.value.message, refused.value.message
    assert rule in refused.value.message, refused.value.message
    # Real creates are refused the same way, not only dry runs.
    with pytest.raises(ApiError) as really:
        await kube.create(PODS, pod, namespace)
    assert really.value.status == 403
    assert await kube.get_or_none(PODS, pod["metadata"]["name"], namespace) is None
    # The same pod where no Pod Security labels are set: admitted, so it was the labels.
    await admitted(kube, unlabeled_namespace, pod)


# -- (b) the runner pod job_builder makes --------------------------------------------------


def runner_settings() -> Iterator[tuple[str, JobSettings]]:
    yield "defaults", JobSettings(image="registry.local/sync-runner:test",
                                  redis_url="redis://127.0.0.1:6379/0")
    yield "everything-set", JobSettings(
        image="registry.local/sync-runner:test", image_pull_policy="Always",
        redis_url="redis://127.0.0.1:6379/0",
        database_url="postgresql://runner@db:5432/app", termination_grace_seconds=5,
        resources=ContainerResources(requests={"cpu": "50m", "memory": "64Mi"},
                                     limits={"cpu": "1", "memory": "256Mi"}),
        env_from_secret="runner-credentials", extra_env={"SYNC_SOURCE_URL": "http://x"},
        run_as_user=20000, fs_group=20000, tmp_size_limit="1Gi")


@pytest.mark.parametrize(("label", "settings"), list(runner_settings()),
                         ids=[label for label, _ in runner_settings()])
async def test_the_runner_pod_job_builder_makes_is_admitted(
        kube: KubeClient, namespace: str, label: str, settings: JobSettings) -> None:
    syncjob = {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
               "metadata": {"name": "quran-nightly", "namespace": namespace,
                            "uid": str(uuid.uuid4())},
               "spec": {"jobType": "quran", "params": {"surah": 2}, "timeoutMinutes": 30}}
    job = build_job(syncjob, settings)
    await admitted(kube, namespace, as_pod(f"runner-{label}", job["spec"]["template"]))


# -- (c) every pod template the chart renders --------------------------------------------


CHART_VALUES: dict[str, dict[str, Any]] = {
    "defaults": {},
    # Every optional pod on: the migrate hook Job needs the database Secret.
    "with-database": {"database": {"existingSecret": "sync-db"},
                      "runner": {"database": {"existingSecret": "sync-runner-db"}}},
}


async def test_every_pod_template_of_the_chart_is_admitted(
        kube: KubeClient, namespace: str, cluster: LocalCluster) -> None:
    checked: list[str] = []
    for variant, values in CHART_VALUES.items():
        manifests = template(CHART, f"ps-{variant}", namespace, values)
        for account in (m for m in manifests if m["kind"] == "ServiceAccount"):
            # A pod naming a ServiceAccount that does not exist is refused (for that,
            # not for its securityContext): give it the chart's.
            body = {**account, "metadata": {**account["metadata"], "namespace": namespace}}
            if await kube.get_or_none(SERVICEACCOUNTS, body["metadata"]["name"],
                                      namespace) is None:
                await kube.create(SERVICEACCOUNTS, body, namespace)
        for manifest in manifests:
            if manifest["kind"] == "Pod":
                pod_template: Mapping[str, Any] = manifest
            elif manifest["kind"] in POD_TEMPLATE_PATHS:
                pod_template = manifest
                for key in POD_TEMPLATE_PATHS[manifest["kind"]]:
                    pod_template = pod_template[key]
            else:
                continue
            name = f"{variant}-{manifest['kind'].lower()}-{manifest['metadata']['name']}"
            await admitted(kube, namespace, as_pod(name[:63].rstrip("-"), pod_template))
            checked.append(f"{variant}: {manifest['kind']}/{manifest['metadata']['name']}")
    kinds = {entry.split(": ")[1].split("/")[0] for entry in checked}
    assert checked, "helm template rendered no pod template at all"
    assert {"Deployment", "Job"} <= kinds, checked  # the operator and the migrate hook
    assert any(entry.endswith("-migrate") for entry in checked), checked
    print(f"admitted under restricted: {checked}")
