"""Test helpers for SyncJobs on a real cluster: install CRDs, create, wait for phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sync_operator.api.common import API_VERSION, FINALIZER, SYNCJOBS
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.bodies import RawBody
from sync_operator.kube.resources import CRDS, EVENTS
from testkit.rbac import grant, rule, user
from testkit.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


async def install_crds(client: KubeClient, directory: Path = REPO / "crds") -> list[str]:
    """Create or update every CRD in `directory` and wait until each is Established."""
    names = []
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        names.append(name)
        existing = await client.get_or_none(CRDS, name)
        if existing is None:
            await client.create(CRDS, crd)
        else:
            crd["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await client.replace(CRDS, name, crd)

        async def established(name: str = name) -> bool:
            got = await client.get(CRDS, name)
            return any(c["type"] == "Established" and c["status"] == "True"
                       for c in (got.get("status") or {}).get("conditions") or [])

        await eventually(established, timeout=30, what=f"CRD {name} Established")
    return names


def syncjob(name: str, job_type: str = "quran", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "SyncJob", "metadata": {"name": name},
            "spec": {"jobType": job_type, **spec}}


async def wait_phase(client: KubeClient, namespace: str, name: str, *phases: str,
                     timeout: float = 60.0) -> RawBody:
    """Wait until the SyncJob is in one of `phases`; return its body."""
    async def probe() -> RawBody | None:
        body = await client.get(SYNCJOBS, name, namespace)
        return body if body.get("status", {}).get("phase") in phases else None

    try:
        return await eventually(probe, timeout=timeout, what=f"{name} in {phases}")
    except AssertionError:
        body = await client.get_or_none(SYNCJOBS, name, namespace)
        raise AssertionError(f"{name} not in {phases} after {timeout}s; status: "
                             f"{(body or {}).get('status')}") from None


async def events_of(client: KubeClient, namespace: str, name: str) -> list[RawBody]:
    listed = await client.list(EVENTS, namespace,
                               field_selector=f"involvedObject.name={name}")
    return sorted(listed["items"], key=lambda e: str(dict(e).get("eventTime") or ""))


async def set_spec(client: KubeClient, namespace: str, name: str, **spec: Any) -> RawBody:
    return await client.patch(SYNCJOBS, name, {"spec": spec}, namespace)


async def create_syncjob(client: KubeClient, namespace: str,
                         body: dict[str, Any]) -> RawBody:
    return await client.create(SYNCJOBS, body, namespace)


async def grant_users(kube: KubeClient, namespace: str) -> None:
    """alice and bob may edit SyncJobs and SyncSchedules in `namespace` (not status)."""
    await grant(kube, namespace, "sync-user",
                [rule("sync.jobcontrol.io", ["syncjobs", "syncschedules"],
                      ["get", "list", "watch", "create", "patch", "update", "delete"])],
                [user("alice"), user("bob")])


async def release_finalizers(client: KubeClient, namespace: str) -> None:
    """Take the operator's finalizer off the namespace's SyncJobs, for a test's teardown:
    the API server puts it on at create (policies/mutating-finalize-syncjobs), and with
    no operator left to remove it the namespace could never finish deleting."""
    try:
        items = (await client.list(SYNCJOBS, namespace))["items"]
    except ApiError as err:
        if err.status == 404:  # no CRD in this cluster (a harness test)
            return
        raise
    for item in items:
        finalizers = item["metadata"].get("finalizers") or []
        if FINALIZER in finalizers:
            try:
                await client.patch(SYNCJOBS, item["metadata"]["name"], {"metadata": {
                    "finalizers": [f for f in finalizers if f != FINALIZER] or None,
                    "resourceVersion": item["metadata"]["resourceVersion"]}}, namespace)
            except ApiError as err:
                if err.status not in (404, 409):  # gone, or changed: the next list sees
                    raise


async def grant_pod_logs(kube: KubeClient, namespace: str, users: list[str], *,
                         logs: bool = True) -> None:
    """`users` may find pods in `namespace` and (with `logs`) read their logs: what
    `kubectl sync logs` needs beyond reading the SyncJob."""
    rules = [rule("", ["pods"], ["get", "list"])]
    if logs:
        rules.append(rule("", ["pods/log"], ["get"]))
    await grant(kube, namespace, "pod-logs" if logs else "pods-only", rules,
                [user(u) for u in users])
