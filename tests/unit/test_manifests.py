"""The batch/v1 Job built for a SyncJob: identity, deadline, failure policy, hardening."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from sync_operator.syncjob.job_builder import (
    LABEL_JOB_NAME,
    LABEL_JOB_TYPE,
    LABEL_JOB_UID,
    LABEL_MANAGED_BY,
    ContainerResources,
    JobSettings,
    build_job,
    job_name,
    label_value,
    remaining_deadline_seconds,
)
from sync_runner import contract

UID = "0b8f6c1e-2a57-4d3c-9f0e-6a1b2c3d4e5f"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SETTINGS = JobSettings(image="sync-runner", redis_url="redis://redis:6379/0")


def syncjob(name: str = "quran-nightly", uid: str = UID, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
        "metadata": {"name": name, "namespace": "content", "uid": uid, "generation": 1},
        "spec": {"jobType": "quran", "params": {"surah": 2, "lang": "ar"}, **spec},
    }


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    [c] = pod_spec(job)["containers"]
    assert isinstance(c, dict)
    return c


def env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(job)["env"]}


def test_job_is_owned_and_controlled_by_its_syncjob() -> None:
    job = build_job(syncjob(), SETTINGS)
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["namespace"] == "content"
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "sync.jobcontrol.io/v1alpha1", "kind": "SyncJob",
        "name": "quran-nightly", "uid": UID, "controller": True, "blockOwnerDeletion": True}]


def test_job_name_is_deterministic_and_a_dns_label() -> None:
    name = build_job(syncjob(), SETTINGS)["metadata"]["name"]
    assert name == build_job(syncjob(), SETTINGS)["metadata"]["name"]
    assert name.startswith("quran-nightly-")
    assert DNS_LABEL.match(name)


def test_long_or_dotted_syncjob_names_still_give_a_valid_job_name() -> None:
    for source in ["a" * 253, "sync.quran.nightly-2026-01-01", "x" * 54 + "-" + "y" * 20]:
        name = job_name(source, UID)
        assert len(name) <= 63
        assert DNS_LABEL.match(name), name


def test_recreated_syncjob_of_the_same_name_gets_a_new_job_name() -> None:
    assert job_name("quran-nightly", UID) != job_name("quran-nightly", "another-uid")


def test_labels_identify_the_syncjob_on_job_and_pods() -> None:
    job = build_job(syncjob(), SETTINGS)
    labels = job["metadata"]["labels"]
    assert labels[LABEL_MANAGED_BY] == "sync-operator"
    assert labels[LABEL_JOB_NAME] == "quran-nightly"
    assert labels[LABEL_JOB_UID] == UID
    assert labels[LABEL_JOB_TYPE] == "quran"
    assert job["spec"]["template"]["metadata"]["labels"] == labels


def test_long_syncjob_name_becomes_a_valid_label_value() -> None:
    long_name = "quran." + "x" * 100
    value = label_value(long_name)
    assert len(value) <= 63
    assert LABEL_VALUE.match(value)
    assert value == label_value(long_name)
    assert label_value("short") == "short"
    job = build_job(syncjob(name=long_name), SETTINGS)
    assert job["metadata"]["annotations"]["sync.jobcontrol.io/job-name"] == long_name


def test_backoff_limit_is_the_retry_attempts() -> None:
    assert build_job(syncjob(), SETTINGS)["spec"]["backoffLimit"] == 3
    assert build_job(syncjob(retryAttempts=0), SETTINGS)["spec"]["backoffLimit"] == 0


def test_no_timeout_means_no_active_deadline() -> None:
    assert "activeDeadlineSeconds" not in build_job(syncjob(), SETTINGS)["spec"]


def test_fresh_job_gets_the_whole_deadline() -> None:
    job = build_job(syncjob(timeoutMinutes=90), SETTINGS)
    assert job["spec"]["activeDeadlineSeconds"] == 5400


def test_resumed_job_gets_only_remaining_deadline() -> None:
    body = {**syncjob(timeoutMinutes=60), "status": {"runSeconds": 1200.7, "phase": "Paused"}}
    assert build_job(body, SETTINGS)["spec"]["activeDeadlineSeconds"] == 2399


@pytest.mark.parametrize("used", [3600, 3599.5, 99999])
def test_an_exhausted_budget_still_gives_a_positive_deadline(used: float) -> None:
    assert remaining_deadline_seconds(60, used) == 1


def test_pod_failure_policy_maps_the_runner_exit_codes() -> None:
    job = build_job(syncjob(), SETTINGS)
    rules = job["spec"]["podFailurePolicy"]["rules"]
    by_code = {r["onExitCodes"]["values"][0]: r["action"] for r in rules if "onExitCodes" in r}
    assert by_code == {contract.ExitCode.FATAL: "FailJob", contract.ExitCode.STOPPED: "Ignore"}
    assert all(r["onExitCodes"]["containerName"] == container(job)["name"]
               for r in rules if "onExitCodes" in r)
    assert {"action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules
    assert pod_spec(job)["restartPolicy"] == "Never"  # required by podFailurePolicy


def test_job_starts_unsuspended_and_is_kept_until_its_owner_goes() -> None:
    spec = build_job(syncjob(), SETTINGS)["spec"]
    assert spec["suspend"] is False
    assert "ttlSecondsAfterFinished" not in spec
    assert spec["completions"] == spec["parallelism"] == 1


def test_pod_is_hardened() -> None:
    job = build_job(syncjob(), SETTINGS)
    pod = pod_spec(job)
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"}}
    sc = container(job)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False


def test_tmp_is_a_writable_empty_dir() -> None:
    job = build_job(syncjob(), SETTINGS)
    [mount] = container(job)["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    [volume] = pod_spec(job)["volumes"]
    assert volume == {"name": mount["name"], "emptyDir": {}}
    sized = build_job(syncjob(), SETTINGS.model_copy(update={"tmp_size_limit": "1Gi"}))
    assert pod_spec(sized)["volumes"][0]["emptyDir"] == {"sizeLimit": "1Gi"}


def test_env_carries_the_wire_contract() -> None:
    values = env(build_job(syncjob(), SETTINGS))
    assert values[contract.ENV_JOB_UID] == UID
    assert values[contract.ENV_JOB_NAME] == "quran-nightly"
    assert values[contract.ENV_JOB_NAMESPACE] == "content"
    assert values[contract.ENV_JOB_TYPE] == "quran"
    assert json.loads(values[contract.ENV_JOB_PARAMS]) == {"surah": 2, "lang": "ar"}
    assert values[contract.ENV_REDIS_URL] == "redis://redis:6379/0"
    assert values[contract.ENV_POD_NAME] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert contract.ENV_DATABASE_URL not in values


def test_database_url_is_passed_when_set() -> None:
    settings = SETTINGS.model_copy(update={"database_url": "postgresql://db/sync"})
    assert env(build_job(syncjob(), settings))[contract.ENV_DATABASE_URL] == (
        "postgresql://db/sync")


def test_image_resources_and_grace_period_come_from_settings() -> None:
    settings = JobSettings(
        image="registry.example/sync-runner:1.2", redis_url="redis://r",
        termination_grace_seconds=90, service_account_name="sync-runner",
        env_from_secret="sync-credentials",
        resources=ContainerResources(requests={"cpu": "1"}, limits={"memory": "2Gi"}))
    job = build_job(syncjob(), settings)
    c = container(job)
    assert c["image"] == "registry.example/sync-runner:1.2"
    assert c["resources"] == {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}}
    assert c["envFrom"] == [{"secretRef": {"name": "sync-credentials"}}]
    assert pod_spec(job)["terminationGracePeriodSeconds"] == 90
    assert pod_spec(job)["serviceAccountName"] == "sync-runner"


def test_default_settings_give_thirty_seconds_grace_and_modest_resources() -> None:
    job = build_job(syncjob(), SETTINGS)
    assert pod_spec(job)["terminationGracePeriodSeconds"] == 30
    assert "serviceAccountName" not in pod_spec(job)
    assert container(job)["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        SETTINGS.image = "other"  # type: ignore[misc]


def test_the_syncjob_body_is_not_modified() -> None:
    body = syncjob(timeoutMinutes=5)
    snapshot = json.dumps(body, sort_keys=True)
    build_job(body, SETTINGS)
    assert json.dumps(body, sort_keys=True) == snapshot
