"""In a cluster the webhooks are registered by Service reference, which the API server
resolves itself (no cluster DNS needed); the API server accepts what kopf writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import Resource
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.ports import free_port
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
MUTATING = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
                    namespaced=False)
VALIDATING = Resource("admissionregistration.k8s.io", "v1",
                      "validatingwebhookconfigurations", namespaced=False)


def _start(cluster: LocalCluster, tmp_path: Path, name: str,
           start_operator: Callable[..., OperatorProcess], **settings: str) -> None:
    cert, key = tmp_path / "webhook.crt", tmp_path / "webhook.key"
    cluster.pki.issue(cert, key, "sync-operator-webhook", ["DNS:sync-webhook.sync.svc"])
    start_operator(webhook_enabled="true", webhook_addr="127.0.0.1",
                   webhook_port=str(free_port()), webhook_cert_file=str(cert),
                   webhook_key_file=str(key), webhook_ca_file=str(cluster.pki.ca_cert),
                   webhook_service_name="sync-webhook", webhook_service_namespace="sync",
                   webhook_service_port="9443", webhook_configuration_name=name, **settings)


async def _registered(kube: KubeClient, name: str) -> tuple[Any, Any]:
    """Both configurations (the mutating one possibly absent or empty) once kopf has
    patched webhooks into the validating one (it creates them empty first)."""
    async def probe() -> tuple[Any, Any] | None:
        mutating = await kube.get_or_none(MUTATING, name)
        validating = await kube.get_or_none(VALIDATING, name)
        ok = validating is not None and validating.get("webhooks")
        return (mutating or {}, validating) if ok else None

    return await eventually(probe, timeout=30, what="webhook configurations")


async def test_webhooks_are_registered_by_service_reference(
        cluster: LocalCluster, kube: KubeClient, namespace: str, tmp_path: Path,
        start_operator: Callable[..., OperatorProcess]) -> None:
    name = f"sync.jobcontrol.io-{namespace}"
    _start(cluster, tmp_path, name, start_operator)

    async def registered() -> dict[str, Any] | None:
        config = await kube.get_or_none(MUTATING, name)
        return config if config and config.get("webhooks") else None

    try:
        await _registered(kube, name)
        config = await eventually(registered, timeout=30, what="mutating configuration")
        services = {w["name"]: w["clientConfig"] for w in config["webhooks"]}
        stamp = next(c for n, c in services.items() if n.startswith("stamp-syncjob-actor"))
        assert stamp["service"] == {"name": "sync-webhook", "namespace": "sync",
                                    "port": 9443, "path": "/stamp-syncjob-actor"}
        assert "url" not in stamp
        assert stamp["caBundle"]

        # The failure policies the README promises: only schedule validation blocks.
        validating = await kube.get(VALIDATING, name)
        policies = {w["name"].split(".")[0]: w["failurePolicy"]
                    for w in [*config["webhooks"], *validating["webhooks"]]}
        assert policies == {"stamp-syncjob-actor": "Ignore",
                            "stamp-schedule-actor": "Ignore",
                            "validate-schedule": "Fail", "validate-syncjob": "Ignore",
                            "record-deleter": "Ignore", "record-schedule-deleter": "Ignore"}
    finally:
        for res in (MUTATING, VALIDATING):
            if await kube.get_or_none(res, name) is not None:
                await kube.delete(res, name)


async def test_where_the_api_server_stamps_no_stamp_webhook_is_registered(
        cluster: LocalCluster, kube: KubeClient, namespace: str, tmp_path: Path,
        start_operator: Callable[..., OperatorProcess]) -> None:
    """stamp_webhooks=false (what the chart sets where it installs the stamp policies):
    validation and the deleter's record stay, and no webhook writes stamps beside the
    API server."""
    name = f"sync.jobcontrol.io-{namespace}"
    _start(cluster, tmp_path, name, start_operator, stamp_webhooks="false")
    try:
        mutating, validating = await _registered(kube, name)
        assert not mutating.get("webhooks")
        assert {w["name"].split(".")[0] for w in validating["webhooks"]} == {
            "validate-schedule", "validate-syncjob", "record-deleter",
            "record-schedule-deleter"}
    finally:
        for res in (MUTATING, VALIDATING):
            if await kube.get_or_none(res, name) is not None:
                await kube.delete(res, name)
