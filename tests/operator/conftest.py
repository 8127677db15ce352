"""Operator-layer fixtures: CRDs installed, and the operator as a real process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sync_operator.kube import KubeClient
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.servers import RedisServer
from testkit.syncjobs import install_crds

OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture(scope="session")
async def crds(kube: KubeClient) -> list[str]:
    return await install_crds(kube)


@pytest.fixture
def start_operator(cluster: LocalCluster, redis_server: RedisServer, crds: list[str],
                   namespace: str, tmp_path: Path) -> Iterator[OperatorFactory]:
    """Start the operator for this test's namespace; settings may be overridden."""
    started: list[OperatorProcess] = []

    def start(**overrides: str) -> OperatorProcess:
        settings = {
            "namespace": namespace,
            "redis_url": redis_server.url,
            "runner_image": "registry.local/sync-runner:test",
            "runner_grace_seconds": "10",
            "pause_grace_seconds": "20",
            "cancel_grace_seconds": "5",
            "admission_interval_seconds": "2",
            "lease_namespace": namespace,
            **overrides,
        }
        op = OperatorProcess(cluster.admin_kubeconfig, tmp_path / f"operator-{len(started)}.log",
                             settings)
        op.start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
async def operator(start_operator: OperatorFactory) -> AsyncIterator[OperatorProcess]:
    return start_operator()
