"""Shared by the chart tests: where the chart is, rendering it with the real helm, and
running the testenv's kubectl."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from testkit.helm import template
from testkit.release import CHART, REPO, helm

__all__ = ["CHART", "REPO", "Installer", "Release", "helm", "kubectl", "operator_deployment",
           "render"]
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


@dataclass
class Release:
    """One rendering of the chart: its name, namespace and manifests."""

    name: str
    namespace: str
    manifests: list[dict[str, Any]]

    @property
    def fullname(self) -> str:
        return f"{self.name}-sync-operator"

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    @property
    def service_account(self) -> str:
        """The operator's ServiceAccount (the console has one of its own)."""
        found = [m for m in self.of_kind("ServiceAccount") if (m["metadata"].get("labels") or {})
                 .get("app.kubernetes.io/component") != "console"]
        assert len(found) == 1, found
        return str(found[0]["metadata"]["name"])

    @property
    def operator_deployment(self) -> dict[str, Any]:
        return operator_deployment(self.manifests)

    def operator_env(self) -> dict[str, str]:
        """The SYNC_OPERATOR_* values the Deployment sets (literal values only)."""
        container = self.operator_deployment["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: str(e["value"]) for e in container["env"] if "value" in e}


def operator_deployment(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator's Deployment (the console has one of its own)."""
    found = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["labels"].get(
        "app.kubernetes.io/component", "operator") != "console"]
    assert len(found) == 1, [m["metadata"]["name"] for m in found]
    return found[0]


def render(namespace: str, values: Mapping[str, Any] | None = None, *,
           release: str | None = None) -> Release:
    """`helm template` the chart as release `release` (default: the namespace's name)."""
    name = release or namespace
    return Release(name, namespace, template(CHART, name, namespace, values))


async def kubectl(env: Mapping[str, str], *args: str, stdin: str | None = None,
                  check: bool = True) -> tuple[int, str]:
    """Run the testenv's kubectl; return (exit code, combined output)."""
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=dict(env), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate(stdin.encode() if stdin is not None else None)
    text = out.decode()
    code = proc.returncode if proc.returncode is not None else -1
    if check and code != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({code}):\n{text}")
    return code, text


# install(values, skip_kinds=...) -> Release: the `install` fixture's factory.
Installer = Callable[..., Awaitable[Release]]
