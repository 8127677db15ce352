"""Tests' RBAC: a Role with these rules, bound to these users, in one namespace.

Every test that gives a user (or a ServiceAccount) some right builds the same two
objects; here they are built once, so a test says only who may do what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import ROLEBINDINGS, ROLES

RBAC = "rbac.authorization.k8s.io"


def rule(group: str, resources: Sequence[str], verbs: Sequence[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": RBAC}


def service_account(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


async def grant(kube: KubeClient, namespace: str, name: str,
                rules: Iterable[Mapping[str, Any]], subjects: Iterable[Mapping[str, str]]
                ) -> None:
    """Role `name` with `rules`, and a RoleBinding of the same name to `subjects`."""
    await kube.create(ROLES, {"apiVersion": f"{RBAC}/v1", "kind": "Role",
                              "metadata": {"name": name}, "rules": [dict(r) for r in rules]},
                      namespace)
    await kube.create(ROLEBINDINGS, {
        "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
        "subjects": [dict(s) for s in subjects]}, namespace)
