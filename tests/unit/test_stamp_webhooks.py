"""The stamp webhook (clusters without MutatingAdmissionPolicy) also puts the operator's
finalizer on at create, as policies/mutating-finalize-syncjobs does."""

from __future__ import annotations

from typing import Any

import kopf

from sync_operator.api.common import FINALIZER
from sync_operator.app.stamp_webhooks import stamp_syncjob

ALICE: kopf.UserInfo = {"username": "alice", "uid": "", "groups": []}


def _body(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": "j", **meta}, "spec": {"jobType": "quran"}}


def _patch(operation: str, new: dict[str, Any], old: dict[str, Any] | None = None
           ) -> kopf.Patch:
    patch = kopf.Patch()
    stamp_syncjob(userinfo=ALICE, patch=patch, operation=operation, new=new, old=old)
    return patch


def test_a_create_gets_the_finalizer_beside_the_users_own() -> None:
    assert _patch("CREATE", _body())["metadata"]["finalizers"] == [FINALIZER]
    assert _patch("CREATE", _body(finalizers=["example.com/keep"]))["metadata"][
        "finalizers"] == ["example.com/keep", FINALIZER]
    assert "finalizers" not in _patch("CREATE", _body(finalizers=[FINALIZER]))["metadata"]


def test_an_update_leaves_the_finalizers_as_they_are() -> None:
    body = _body()
    patch = _patch("UPDATE", {**body, "spec": {"jobType": "quran", "paused": True}}, body)
    assert "finalizers" not in patch.get("metadata", {})
