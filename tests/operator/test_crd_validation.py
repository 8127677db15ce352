"""Bad SyncJob specs are rejected by the API server itself, with the message a user sees."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.conditions import get_condition
from sync_operator.syncjob.rejection import refused_fields, rejected_status, rejection_message
from testkit.syncjobs import syncjob

pytestmark = pytest.mark.cluster


async def rejected(kube: KubeClient, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as err:
        await kube.create(SYNCJOBS, body, namespace)
    assert err.value.status == 422
    return err.value.message


@pytest.mark.parametrize(("spec", "message"), [
    ({"jobType": "tafsir"},
     'spec.jobType: Unsupported value: "tafsir": supported values: "quran", "prayer", '
     '"hadith", "audio", "finance"'),
    ({"jobType": "quran", "priority": 11},
     "spec.priority: Invalid value: 11: spec.priority in body should be less than or "
     "equal to 10"),
    ({"jobType": "quran", "priority": 0},
     "spec.priority in body should be greater than or equal to 1"),
    ({"jobType": "quran", "timeoutMinutes": 0},
     "spec.timeoutMinutes in body should be greater than or equal to 1"),
    ({"jobType": "quran", "retryAttempts": 11},
     "spec.retryAttempts in body should be less than or equal to 10"),
    ({"priority": 3}, "spec.jobType: Required value"),
])
async def test_bad_spec_is_rejected_with_a_clear_message(
        kube: KubeClient, namespace: str, crds: list[str], spec: dict[str, Any],
        message: str) -> None:
    body = {"apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": "bad"}, "spec": spec}
    assert message in await rejected(kube, namespace, body)


async def test_defaults_come_from_the_schema(kube: KubeClient, namespace: str,
                                             crds: list[str]) -> None:
    created = await kube.create(SYNCJOBS, syncjob("defaults", "prayer"), namespace)
    spec = created["spec"]
    assert (spec["priority"], spec["paused"], spec["cancel"], spec["retryAttempts"]) \
        == (5, False, False, 3)


async def test_cancel_cannot_be_unset_and_fields_are_immutable_after_start(
        kube: KubeClient, namespace: str, crds: list[str]) -> None:
    await kube.create(SYNCJOBS, syncjob("fixed", "quran", dedupKey="k1",
                                        params={"a": 1}), namespace)
    await kube.patch(SYNCJOBS, "fixed", {"spec": {"cancel": True}}, namespace)
    cases = [
        ({"cancel": False}, "spec.cancel cannot be unset once a SyncJob is cancelled"),
        ({"jobType": "prayer"}, "spec.jobType is immutable"),
        ({"dedupKey": "k2"}, "spec.dedupKey is immutable"),
        ({"params": {"a": 2}}, "spec.params is immutable"),
    ]
    for patch, message in cases:
        with pytest.raises(ApiError) as err:
            await kube.patch(SYNCJOBS, "fixed", {"spec": patch}, namespace)
        assert err.value.status == 422
        assert message in err.value.message
    # Priority and pause stay editable.
    updated = await kube.patch(SYNCJOBS, "fixed", {"spec": {"priority": 2}}, namespace)
    assert updated["spec"]["priority"] == 2


async def test_a_refused_status_names_its_field_and_the_fallback_status_is_accepted(
        kube: KubeClient, namespace: str, crds: list[str]) -> None:
    """What the reconciler does on a 422 (syncjob/rejection.py), against the real schema:
    the fields come out of the API server's own answer, and the Failed status it writes
    instead is one the server accepts."""
    created = await kube.create(SYNCJOBS, syncjob("refused", "quran"), namespace)
    running = {"phase": "Running", "startedAt": "2026-03-01T10:00:00Z"}
    body = await kube.patch(SYNCJOBS, "refused", {"status": running}, namespace,
                            subresource="status")
    with pytest.raises(ApiError) as err:
        await kube.patch(SYNCJOBS, "refused", {"status": {
            "progress": {"done": 1, "unit": "u" * 65},
            "conditions": [{"type": "Failed", "status": "True", "reason": "not a reason",
                            "message": "", "lastTransitionTime": "2026-03-01T10:00:00Z"}]},
        }, namespace, subresource="status")
    assert err.value.status == 422
    assert set(refused_fields(err.value)) >= {"status.progress.unit",
                                              "status.conditions[0].reason"}
    message = rejection_message(err.value)
    assert "status.progress.unit" in message

    failed = rejected_status(body["status"], message, now=datetime.now(UTC),
                             generation=int(created["metadata"]["generation"]),
                             identity="sync-operator-test")
    stored = await kube.patch(SYNCJOBS, "refused", {"status": failed}, namespace,
                              subresource="status")
    assert stored["status"]["phase"] == "Failed"
    condition = get_condition(stored["status"]["conditions"], "Failed")
    assert condition is not None
    assert condition["reason"] == "StatusRejected"
