"""Pod Security Admission for the test namespaces: the labels that make the API server
enforce the `restricted` Pod Security Standard, and the securityContexts a test's own
pods carry to be admitted under it.

`restricted` (as of `latest`) wants, on every container or inherited from the pod:
runAsNonRoot true (and no runAsUser 0), allowPrivilegeEscalation false, all
capabilities dropped (only NET_BIND_SERVICE may be added back), a RuntimeDefault or
Localhost seccomp profile; and no privileged containers, host namespaces, hostPath or
other non-core volume types, host ports, or unsafe sysctls.

The process kubelet honours runAsUser/runAsGroup and readOnlyRootFilesystem where it
can (testkit.containers) and nothing else of the securityContext, so what these change
is mostly what the API server admits.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

RESTRICTED = "restricted"
PSA = "pod-security.kubernetes.io"
# A user no image or host account owns (the "nonroot" uid of distroless images).
RESTRICTED_UID = 65532


def namespace_labels(level: str = RESTRICTED, version: str = "latest") -> dict[str, str]:
    """enforce, warn and audit at `level`, each pinned to `version`."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "warn", "audit"):
        labels[f"{PSA}/{mode}"] = level
        labels[f"{PSA}/{mode}-version"] = version
    return labels


# The pod-level part: the user and the seccomp profile every container inherits.
RESTRICTED_POD: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RESTRICTED_UID,
    "runAsGroup": RESTRICTED_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}

# The container-level part (the fields restricted checks per container).
RESTRICTED_CONTAINER: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def restricted_pod_context(**extra: Any) -> dict[str, Any]:
    """A fresh copy of RESTRICTED_POD, with `extra` fields (e.g. fsGroup) over it."""
    return {**copy.deepcopy(RESTRICTED_POD), **extra}


def restricted_container_context(**extra: Any) -> dict[str, Any]:
    """A fresh copy of RESTRICTED_CONTAINER, with `extra` fields (e.g. runAsUser,
    readOnlyRootFilesystem) over it."""
    return {**copy.deepcopy(RESTRICTED_CONTAINER), **extra}


def restricted(pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a PodSpec made restricted-compliant: RESTRICTED_POD under the pod's own
    securityContext, RESTRICTED_CONTAINER under each (init) container's."""
    spec = copy.deepcopy(dict(pod_spec))
    spec["securityContext"] = {**restricted_pod_context(),
                               **(spec.get("securityContext") or {})}
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            container["securityContext"] = {**restricted_container_context(),
                                            **(container.get("securityContext") or {})}
    return spec
