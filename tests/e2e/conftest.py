"""Which cluster the end-to-end tests run on. They need only what a user has: a
KUBECONFIG (users are impersonated, as `kubectl --as` does), and a Redis and a PostgreSQL
that the cluster's pods can reach.

- default: the suite's local cluster, Redis and PostgreSQL;
- `SYNC_E2E_KUBECONFIG=path`: an existing cluster. Also set `SYNC_E2E_REDIS_URL` and
  `SYNC_E2E_DATABASE_URL` (as the pods reach them; the database is the run's own),
  `SYNC_E2E_LOCAL_DATABASE_URL` where this machine reaches it differently,
  `SYNC_E2E_VALUES` (a JSON object of extra `--set` values, e.g. the image), and
  `SYNC_E2E_PROCESS_PODS=1` when its pods are processes of this machine (the
  process kubelet: each listens on its pod IP, and their memory can be read);
- `SYNC_E2E_KIND=1`: a kind cluster made by pytest-kind, where a Docker engine runs
  (the image is built and loaded, Redis and PostgreSQL run in it); without one, the
  tests skip with one line saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from e2e_target import Target, existing, kind

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import NAMESPACES
from testkit.syncjobs import release_finalizers


@pytest.fixture(scope="session")
def e2e_cluster(request: pytest.FixtureRequest) -> Iterator[Target | None]:
    """The chosen cluster, or None for the suite's own (filled in per test)."""
    if os.environ.get("SYNC_E2E_KUBECONFIG"):
        yield existing()
    elif os.environ.get("SYNC_E2E_KIND") == "1":
        with kind() as target:
            yield target
    else:
        yield None


@pytest.fixture
def target(e2e_cluster: Target | None, request: pytest.FixtureRequest) -> Target:
    """This test's cluster; on the suite's own, with a new database of its own."""
    if e2e_cluster is not None:
        return e2e_cluster
    cluster = request.getfixturevalue("cluster")
    database_url = request.getfixturevalue("database_url")
    return Target(cluster.admin_kubeconfig, request.getfixturevalue("redis_server").url,
                  database_url, database_url, values={"listenOnPodIP": "true"},
                  process_pods=True, log_dir=cluster.root / "kubelet" / "logs")


@pytest.fixture
async def e2e_kube(target: Target) -> AsyncIterator[KubeClient]:
    async with KubeClient(target.connection()) as client:
        yield client


@pytest.fixture
async def e2e_namespace(e2e_kube: KubeClient) -> AsyncIterator[str]:
    """A namespace of this test's own on the target cluster, deleted afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    await e2e_kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name}})
    yield name
    await release_finalizers(e2e_kube, name)
    await e2e_kube.delete(NAMESPACES, name)
