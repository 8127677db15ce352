"""Install the stamp admission policies (the repository's policies/) on a real cluster,
for tests, the demo and the benchmark, and wait until the API server enforces them.

A policy object is enforced a moment after it is stored (the API server's informer
picks it up), so the waits probe admission itself with a dry-run SyncJob that carries
a forged stamp: the mutating policy replaces it, the validating one alone refuses it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

import yaml

from sync_operator.api.common import API_VERSION, SYNCJOBS
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.resources import Resource
from testkit.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
FORGED = "actions.sync.jobcontrol.io/999"
_GROUP, _VERSION = "admissionregistration.k8s.io", "v1"
RESOURCES = {kind: Resource(_GROUP, _VERSION, plural, namespaced=False) for kind, plural in {
    "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
    "MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
}.items()}
# What the probe sees: stamped by the mutating policy, refused by the validating one
# alone, or let through as sent (no policy).
Enforcement = Literal["mutating", "validating", "none"]


def policy_manifests(directory: Path = POLICIES) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))]


def _is_mutating(manifest: dict[str, Any]) -> bool:
    return str(manifest["kind"]).startswith("Mutating")


async def _apply(client: KubeClient, manifest: dict[str, Any]) -> None:
    res, name = RESOURCES[manifest["kind"]], manifest["metadata"]["name"]
    existing = await client.get_or_none(res, name)
    if existing is None:
        await client.create(res, manifest)
    else:
        body = {**manifest, "metadata": {**manifest["metadata"],
                                         "resourceVersion": existing["metadata"]
                                         ["resourceVersion"]}}
        await client.replace(res, name, body)


async def enforcement(client: KubeClient, namespace: str = "default") -> Enforcement:
    """Which of the policies admission applies right now (a dry run: nothing is stored)."""
    probe = {"apiVersion": API_VERSION, "kind": "SyncJob",
             "metadata": {"name": f"policy-probe-{uuid.uuid4().hex[:8]}",
                          "annotations": {FORGED: "cancel||nobody"}},
             "spec": {"jobType": "quran"}}
    try:
        created = await client.request("POST", SYNCJOBS.path(namespace), body=probe,
                                       params={"dryRun": "All"})
    except ApiError as err:
        if err.status == 403 and "protect-stamps" in err.message:
            return "validating"
        raise
    annotations = (created.get("metadata") or {}).get("annotations") or {}
    return "none" if FORGED in annotations else "mutating"


async def wait_enforced(client: KubeClient, expected: Enforcement,
                        timeout: float = 30.0) -> None:
    async def reached() -> bool:
        try:
            return await enforcement(client) == expected
        except ApiError as err:
            if err.status in (404, 503):  # a CRD just created is served a moment later
                return False
            raise

    await eventually(reached, timeout=timeout, what=f"admission policies: {expected}")


async def install_policies(client: KubeClient, *, mutating: bool = True,
                           validating: bool = True) -> list[str]:
    """Create or update the chosen policies and their bindings; return once admission
    enforces them. Returns the names installed."""
    names = []
    for manifest in policy_manifests():
        if (mutating if _is_mutating(manifest) else validating):
            await _apply(client, manifest)
            names.append(manifest["metadata"]["name"])
    await wait_enforced(client, "mutating" if mutating else
                        "validating" if validating else "none")
    return names


async def remove_policies(client: KubeClient, *, mutating: bool = True,
                          validating: bool = True) -> None:
    """Delete the chosen policies and bindings; return once admission no longer applies
    them (what a cluster without the API, or with only one of them, behaves like)."""
    for manifest in policy_manifests():
        if (mutating if _is_mutating(manifest) else validating):
            await client.delete(RESOURCES[manifest["kind"]], manifest["metadata"]["name"])
    left_mutating = await client.get_or_none(
        RESOURCES["MutatingAdmissionPolicyBinding"], "sync-operator-stamp-actions")
    left_validating = await client.get_or_none(
        RESOURCES["ValidatingAdmissionPolicyBinding"], "sync-operator-protect-stamps")
    await wait_enforced(client, "mutating" if left_mutating else
                        "validating" if left_validating else "none")
