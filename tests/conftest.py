"""Fixtures per layer: real Redis, real PostgreSQL and the real local cluster.

Each server starts once per test session on a free loopback port, under a
temporary directory, and stops at the end. Tests get isolation from unique
namespaces, databases and SyncJob uids, not from restarting servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import NAMESPACES
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.podsecurity import namespace_labels
from testkit.ports import free_port
from testkit.servers import PostgresServer, RedisServer
from testkit.syncjobs import install_crds, release_finalizers

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


# -- Redis ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(work_root: Path) -> Iterator[RedisServer]:
    server = RedisServer(work_root / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


# -- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(work_root: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(work_root / "postgres")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """A new, empty database for this test; returns its psycopg (sync) SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U",
         postgres_server.user, "-d", "postgres", "-tAc", f"CREATE DATABASE {name}"],
        check=True, capture_output=True,
    )
    return f"postgresql+psycopg://{postgres_server.user}@127.0.0.1:{postgres_server.port}/{name}"


# -- Kubernetes -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cluster(work_root: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(work_root / "cluster")
    try:
        local.start()
    except BaseException:
        local.stop()
        raise
    print(f"\nlocal cluster up in {local.startup_seconds:.1f}s at {local.server}",
          file=sys.stderr)
    yield local
    local.stop()


@pytest.fixture(scope="session")
async def kube(cluster: LocalCluster) -> AsyncIterator[KubeClient]:
    """An admin client (system:masters)."""
    async with KubeClient(load_connection(cluster.admin_kubeconfig)) as client:
        yield client


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards (its objects go with it).

    Pod Security Admission enforces `restricted` in it (and warns and audits the same):
    every pod a test makes here must be compliant (testkit.podsecurity). A test that
    needs a pod `restricted` refuses makes its own namespace without these labels.
    """
    name = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name, "labels": namespace_labels()}})
    yield name
    await release_finalizers(kube, name)
    await kube.delete(NAMESPACES, name)


@pytest.fixture(scope="session")
def kubectl_env(cluster: LocalCluster, work_root: Path) -> dict[str, str]:
    """Environment with the built kubectl on PATH and the admin kubeconfig."""
    from testkit.build import ensure_kubectl_link

    bin_dir = work_root / "bin"
    ensure_kubectl_link(bin_dir)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["KUBECONFIG"] = str(cluster.admin_kubeconfig)
    return env


# -- The operator (shared by tests/operator and tests/cli) ------------------------------

OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture(scope="session")
async def crds(kube: KubeClient) -> list[str]:
    """The CRDs, and the admission policies that stamp who did what on them."""
    from testkit.policies import install_policies

    names = await install_crds(kube)
    await install_policies(kube)
    return names


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
            "metrics_port": str(free_port()),
            "health_port": str(free_port()),
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
