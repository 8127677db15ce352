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


async def test_webhooks_are_registered_by_service_reference(
        cluster: LocalCluster, kube: KubeClient, namespace: str, tmp_path: Path,
        start_operator: Callable[..., OperatorProcess]) -> None:
    cert, key = tmp_path / "webhook.crt", tmp_path / "webhook.key"
    cluster.pki.issue(cert, key, "sync-operator-webhook", ["DNS:sync-webhook.sync.svc"])
    name = f"sync.jobcontrol.io-{namespace}"
    start_operator(webhook_enabled="true", webhook_addr="127.0.0.1",
                   webhook_port=str(free_port()), webhook_cert_file=str(cert),
                   webhook_key_file=str(key), webhook_ca_file=str(cluster.pki.ca_cert),
                   webhook_service_name="sync-webhook", webhook_service_namespace="sync",
                   webhook_service_port="9443", webhook_configuration_name=name)

    async def registered() -> dict[str, Any] | None:
        # kopf creates the configuration empty, then patches its webhooks in.
        config = await kube.get_or_none(MUTATING, name)
        other = await kube.get_or_none(VALIDATING, name)
        return config if config and config.get("webhooks") and other and other.get(
            "webhooks") else None

    try:
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
            await kube.delete(res, name)
