"""The console on the real stack: in this process (uvicorn on a free port), under a
ServiceAccount of its own with the chart's console rights (testkit.console; a chart
test holds the two equal), with users alice (edit here and in a second namespace),
bob (edit here only) and carol (view here)."""

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
)
from sync_operator.mirror import upgrade
from testkit.cluster import LocalCluster
from testkit.console import CONSOLE_ACCOUNT, install_console_account
from testkit.ports import free_port
from testkit.rbac import grant, rule, user
from testkit.syncjobs import grant_users, release_finalizers
from testkit.waiting import eventually


async def _role(kube: KubeClient, namespace: str, name: str, verbs: list[str],
                users: list[str]) -> None:
    await grant(kube, namespace, name, [rule("sync.jobcontrol.io", ["syncjobs"], verbs)],
                [user(u) for u in users])


@pytest.fixture
async def console(cluster: LocalCluster, kube: KubeClient, namespace: str,
                  crds: list[str], database_url: str) -> AsyncIterator[ConsoleUnderTest]:
    other = f"t-{uuid.uuid4().hex[:8]}"
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": other}})
    await grant_users(kube, namespace)  # alice and bob edit here
    await _role(kube, other, "alice-edit", ["get", "list", "watch", "create", "patch",
                                            "delete"], ["alice"])
    await _role(kube, namespace, "carol-view", ["get", "list", "watch"], ["carol"])
    role = await install_console_account(kube, namespace)  # the chart's rights
    upgrade(database_url)
    port = free_port()
    settings = ConsoleSettings(listen_addr="127.0.0.1", port=port, database_url=database_url,
                               cookie_secure=False, recheck_seconds=1.0)
    connection = load_connection(cluster.service_account_kubeconfig(namespace,
                                                                   CONSOLE_ACCOUNT))
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
