"""Chart fixtures: the real helm (built once), the chart's CRDs, and installs of the
rendered chart into a test namespace with the real kubectl (server-side apply)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, CLUSTER_SCOPED, Installer, Release, kubectl, render

from sync_operator.kube import KubeClient
from testkit.helm import ensure_helm
from testkit.syncjobs import install_crds


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    return ensure_helm()


@pytest.fixture(scope="session")
async def chart_crds(kube: KubeClient) -> list[str]:
    """The chart's own CRDs (byte-identical to crds/, which a test asserts)."""
    return await install_crds(kube, CHART / "crds")


@pytest.fixture
async def install(kubectl_env: dict[str, str], chart_crds: list[str],
                  namespace: str) -> AsyncIterator[Installer]:
    """Render the chart into the test namespace and apply it server-side with kubectl;
    cluster-scoped objects are deleted afterwards (namespaced ones go with the namespace).
    """
    applied: list[dict[str, Any]] = []

    async def apply(values: Mapping[str, Any] | None = None, *,
                    skip_kinds: frozenset[str] = frozenset()) -> Release:
        release = render(namespace, values)
        docs = [m for m in release.manifests
                if m["kind"] not in skip_kinds and not _uninstall_hook(m)]
        applied.extend(m for m in docs if m["kind"] in CLUSTER_SCOPED)
        await kubectl(kubectl_env, "apply", "--server-side", "--field-manager=chart-test",
                      "-f", "-", stdin=yaml.safe_dump_all(docs))
        return release

    yield apply
    for manifest in applied:
        await kubectl(kubectl_env, "delete", "--ignore-not-found", "--wait=false",
                      _resource(manifest), manifest["metadata"]["name"], check=False)


def _uninstall_hook(manifest: Mapping[str, Any]) -> bool:
    """A hook that Helm runs only at uninstall (applied here, it would run at once)."""
    hooks = (manifest["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return bool(hooks) and set(hooks.split(",")) <= {"pre-delete", "post-delete"}


def _resource(manifest: Mapping[str, Any]) -> str:
    """kind.group, as kubectl names a resource unambiguously."""
    kind, api_version = str(manifest["kind"]).lower(), str(manifest["apiVersion"])
    return f"{kind}.{api_version.split('/')[0]}" if "/" in api_version else kind
