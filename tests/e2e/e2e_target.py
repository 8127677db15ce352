"""The end-to-end tests' target cluster (chosen in conftest.py): a kubeconfig, the
Redis and PostgreSQL its pods reach, and what differs between clusters."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.config import Connection
from testkit.docker import docker_engine
from testkit.release import REPO, bind_user, create_secret

KIND_IMAGE = "sync-runner:e2e"
BACKING = REPO / "deploy" / "e2e" / "backing-services.yaml"


@dataclass
class Target:
    """A cluster reached through a kubeconfig, with the services its pods use."""

    kubeconfig: Path
    redis_url: str  # as the cluster's pods reach Redis
    database_url: str  # as the cluster's pods reach PostgreSQL (this run's database)
    local_database_url: str  # as this process reaches the same database
    values: dict[str, str] = field(default_factory=dict)  # extra chart values
    process_pods: bool = False  # pods are processes of this machine
    log_dir: Path | None = None  # the process kubelet's container logs

    def connection(self, user: str | None = None) -> Connection:
        """The admin's connection, or the same acting as `user` (impersonation)."""
        admin = load_connection(self.kubeconfig)
        return admin if user is None else admin.as_user(user)


async def prepare_release(kube: KubeClient, target: Target, namespace: str,
                          webhook_name: str, **values: str) -> dict[str, str]:
    """What every installed-chart test does first: the database Secret, alice bound to
    `edit` and carol to `view`; and the chart values pointing at the target's services
    (`values` added, the target's own last)."""
    await create_secret(kube, namespace, "sync-db", {"database-url": target.database_url})
    await bind_user(kube, namespace, "alice", "edit")
    await bind_user(kube, namespace, "carol", "view")
    return {"watchNamespace": namespace, "database.existingSecret": "sync-db",
            "database.key": "database-url", "redis.url": target.redis_url,
            "webhook.configurationName": webhook_name, **values, **target.values}


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(f"SYNC_E2E_KUBECONFIG is set, so {name} must be too "
                                "(see tests/e2e/conftest.py)")
    return value


def existing() -> Target:
    database = _required("SYNC_E2E_DATABASE_URL")
    process_pods = os.environ.get("SYNC_E2E_PROCESS_PODS") == "1"
    values = json.loads(os.environ.get("SYNC_E2E_VALUES") or "{}")
    if process_pods:
        values.setdefault("listenOnPodIP", "true")
    return Target(Path(os.environ["SYNC_E2E_KUBECONFIG"]), _required("SYNC_E2E_REDIS_URL"),
                  database, os.environ.get("SYNC_E2E_LOCAL_DATABASE_URL") or database,
                  values={str(k): str(v) for k, v in values.items()},
                  process_pods=process_pods)


@contextlib.contextmanager
def kind() -> Iterator[Target]:
    """A kind cluster with the image loaded and Redis and PostgreSQL running in it."""
    docker = docker_engine()
    if docker is None:
        pytest.skip("SYNC_E2E_KIND: no Docker engine here, so no kind cluster; "
                    "the end-to-end tests run on the local cluster by default")
    from pytest_kind import KindCluster  # only where Docker runs

    kind = KindCluster(f"sync-e2e-{uuid.uuid4().hex[:6]}")
    kind.create()
    try:
        subprocess.run([docker, "build", "-f", "job_image/Dockerfile", "-t", KIND_IMAGE,
                        "."], cwd=REPO, check=True)
        kind.load_docker_image(KIND_IMAGE)
        kind.kubectl("apply", "-f", str(BACKING))
        for app in ("redis", "postgres"):
            kind.kubectl("-n", "sync-e2e-backing", "rollout", "status",
                         f"deployment/{app}", "--timeout=300s")
        with kind.port_forward("service/postgres", 5432, "-n", "sync-e2e-backing") as port:
            in_cluster = "sync-e2e-backing.svc.cluster.local"
            yield Target(
                kind.kubeconfig_path, f"redis://redis.{in_cluster}:6379/0",
                f"postgresql+psycopg://postgres:e2e@postgres.{in_cluster}:5432/sync",
                f"postgresql+psycopg://postgres:e2e@127.0.0.1:{port}/sync",
                values={"image.repository": "sync-runner", "image.tag": "e2e",
                        "runner.image.repository": "sync-runner", "runner.image.tag": "e2e"})
    finally:
        kind.delete()
