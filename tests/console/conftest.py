"""The console on the real stack: in this process (uvicorn on a free port), under a
ServiceAccount of its own with only what it needs (review tokens and access, read
SyncJobs), with users alice (edit here and in a second namespace), bob (edit here
only) and carol (view here)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from console_helpers import ConsoleUnderTest

from sync_operator.console.server import console as build_console
from sync_operator.console.server import uvicorn_server
from sync_operator.console.settings import ConsoleSettings
from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    NAMESPACES,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
)
from sync_operator.mirror import upgrade
from testkit.cluster import LocalCluster
from testkit.ports import free_port
from testkit.syncjobs import grant_users, release_finalizers
from testkit.waiting import eventually

# What the console's own ServiceAccount may do (the chart's console role, to come).
CONSOLE_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
     "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
     "verbs": ["create"]},
    {"apiGroups": ["sync.jobcontrol.io"], "resources": ["syncjobs"],
     "verbs": ["list", "watch"]},
]


async def _role(kube: KubeClient, namespace: str, name: str, verbs: list[str],
                users: list[str]) -> None:
    await kube.create(ROLES, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["sync.jobcontrol.io"], "resources": ["syncjobs"],
                   "verbs": verbs}]}, namespace)
    await kube.create(ROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "User", "name": u, "apiGroup": "rbac.authorization.k8s.io"}
                     for u in users]}, namespace)


@pytest.fixture
async def console(cluster: LocalCluster, kube: KubeClient, namespace: str,
                  crds: list[str], database_url: str) -> AsyncIterator[ConsoleUnderTest]:
    other = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": other}})
    role = f"sync-console-{namespace}"
    await grant_users(kube, namespace)  # alice and bob edit here
    await _role(kube, other, "alice-edit", ["get", "list", "watch", "create", "patch",
                                            "delete"], ["alice"])
    await _role(kube, namespace, "carol-view", ["get", "list", "watch"], ["carol"])
    await kube.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": "sync-console"}}, namespace)
    await kube.create(CLUSTERROLES, {"apiVersion": "rbac.authorization.k8s.io/v1",
                                     "kind": "ClusterRole", "metadata": {"name": role},
                                     "rules": CONSOLE_RULES})
    await kube.create(CLUSTERROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "sync-console",
                      "namespace": namespace}]})
    upgrade(database_url)
    port = free_port()
    settings = ConsoleSettings(listen_addr="127.0.0.1", port=port, database_url=database_url,
                               cookie_secure=False, recheck_seconds=1.0)
    connection = load_connection(cluster.service_account_kubeconfig(namespace, "sync-console"))
    try:
        async with build_console(settings, connection) as parts:
            server = uvicorn_server(parts)
            task = asyncio.create_task(server.serve())
            await eventually(lambda: asyncio.sleep(0, server.started), timeout=30,
                             what="the console listening")
            try:
                yield ConsoleUnderTest(f"http://127.0.0.1:{port}", namespace, other,
                                       dict(cluster.tokens))
            finally:
                server.should_exit = True
                await asyncio.wait_for(task, 30)
    finally:
        await release_finalizers(kube, other)
        await kube.delete(NAMESPACES, other)
        await kube.delete(CLUSTERROLEBINDINGS, role)
        await kube.delete(CLUSTERROLES, role)
