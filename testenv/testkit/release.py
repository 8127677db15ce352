"""The chart installed as a user installs it: the database Secret, RoleBindings to the
built-in roles, `helm install --wait` and what to look at afterwards (the operator's
pods, the Lease holder, why --wait failed). Shared by the chart tests and the demo, so
the demo shows exactly the install the tests prove.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import LEASES, PODS, ROLEBINDINGS, SECRETS, SERVICEACCOUNTS
from testkit.helm import ensure_helm, helm_env
from testkit.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "sync-operator"
OPERATOR_POD = "app.kubernetes.io/component=operator"
LEASE = "sync-operator"  # the chart's default leaderElection.leaseName


async def helm(kubeconfig: Path, *args: str) -> str:
    """Run the real helm against the cluster; return its output, fail with it."""
    env = {**helm_env(), "KUBECONFIG": str(kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        str(ensure_helm()), *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{out.decode()}")
    return out.decode()


def set_values(values: Mapping[str, str]) -> list[str]:
    """`--set k=v` for each value (dotted keys, helm's own syntax)."""
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


async def create_secret(kube: KubeClient, namespace: str, name: str,
                        data: Mapping[str, str]) -> None:
    await kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": name}, "stringData": dict(data)},
                      namespace)


async def _bind(kube: KubeClient, namespace: str, name: str, role: tuple[str, str],
                subject: dict[str, str]) -> None:
    await kube.create(ROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role[0],
                    "name": role[1]},
        "subjects": [subject]}, namespace)


async def bind_user(kube: KubeClient, namespace: str, user: str, cluster_role: str) -> None:
    """Bind `user` to a built-in ClusterRole (`edit`, `view`) in `namespace`: the chart's
    aggregated roles are what give those roles the SyncJob verbs."""
    await _bind(kube, namespace, f"{user}-{cluster_role}", ("ClusterRole", cluster_role),
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user})


async def service_account_with(kube: KubeClient, namespace: str, name: str,
                               role: tuple[str, str]) -> None:
    """A ServiceAccount `name` bound to `role` ((kind, name)) in `namespace`: a user any
    cluster can mint tokens for (TokenRequest)."""
    await kube.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": name}}, namespace)
    await _bind(kube, namespace, f"{name}-{role[1]}", role,
                {"kind": "ServiceAccount", "name": name, "namespace": namespace})


async def install(kubeconfig: Path, release: str, namespace: str, values: Mapping[str, str],
                  *, timeout_seconds: int = 150) -> float:
    """`helm install --wait`; return the seconds it took."""
    started = time.monotonic()
    await helm(kubeconfig, "install", release, str(CHART), "--namespace", namespace,
               "--wait", "--timeout", f"{timeout_seconds}s", *set_values(values))
    return time.monotonic() - started


async def operator_pods(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """The operator's pods that are not being deleted."""
    pods = (await kube.list(PODS, namespace, label_selector=OPERATOR_POD))["items"]
    return [dict(p) for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready(pod: Mapping[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def leader(kube: KubeClient, namespace: str, *, lease: str = LEASE,
                 other_than: str | None = None, timeout: float = 60) -> str:
    """The live operator pod whose replica holds the Lease (not `other_than`)."""
    async def holder() -> str | None:
        body = await kube.get_or_none(LEASES, lease, namespace)
        identity = str(((body or {}).get("spec") or {}).get("holderIdentity") or "")
        pods = [p["metadata"]["name"] for p in await operator_pods(kube, namespace)]
        return next((p for p in pods if f"@{p}-" in identity and p != other_than), None)

    return await eventually(holder, timeout=timeout, what="an operator pod holding the Lease")


async def pods_report(kube: KubeClient, namespace: str, log_dir: Path | None) -> str:
    """Each pod's phase, container states and the end of its logs (why --wait failed)."""
    out = []
    for pod in (await kube.list(PODS, namespace))["items"]:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        out.append(f"pod {name}: {status.get('phase')} "
                   f"{[c.get('state') for c in status.get('containerStatuses') or []]}")
        for log in sorted(log_dir.glob(f"{namespace}_{name}_*")) if log_dir else []:
            out.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)


def rss_mib(pod: Mapping[str, Any]) -> float:
    """Resident memory of a pod's first container, a process of the process kubelet
    (containerID process://<pid>)."""
    pid = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("process://")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
