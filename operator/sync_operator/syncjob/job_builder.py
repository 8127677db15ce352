"""The batch/v1 Job that runs one SyncJob, built as a plain dict from the SyncJob body.

The Job is owned by its SyncJob (deleted with it, never by a TTL), restartPolicy Never
with a podFailurePolicy that maps the runner's exit codes (sync_runner.contract) to
Kubernetes actions, and a hardened pod (non-root, read-only root, no capabilities).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sync_operator.api.common import API_VERSION, GROUP, SYNCJOB
from sync_operator.api.syncjob import SyncJobSpec
from sync_runner.contract import (
    ENV_DATABASE_URL,
    ENV_JOB_NAME,
    ENV_JOB_NAMESPACE,
    ENV_JOB_PARAMS,
    ENV_JOB_TYPE,
    ENV_JOB_UID,
    ENV_POD_NAME,
    ENV_REDIS_URL,
    ExitCode,
)

MANAGED_BY = "sync-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_JOB_NAME = f"{GROUP}/job-name"
LABEL_JOB_UID = f"{GROUP}/job-uid"
LABEL_JOB_TYPE = f"{GROUP}/job-type"
ANNOTATION_JOB_NAME = f"{GROUP}/job-name"  # the full name, when the label had to shorten it
CONTAINER_NAME = "sync-runner"
TMP_VOLUME = "tmp"

_MAX_NAME = 63
_HASH_LEN = 8
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class ContainerResources(BaseModel):
    """Requests and limits of the runner container (Kubernetes quantity strings)."""

    model_config = ConfigDict(frozen=True)

    requests: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "100m", "memory": "128Mi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "512Mi"})


class JobSettings(BaseModel):
    """Operator-wide inputs of every Job: image, endpoints, pod shape."""

    model_config = ConfigDict(frozen=True)

    image: str
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    redis_url: str
    database_url: str | None = None
    termination_grace_seconds: int = Field(default=30, ge=0)
    resources: ContainerResources = Field(default_factory=ContainerResources)
    service_account_name: str | None = None
    env_from_secret: str | None = None  # a Secret whose keys become env (e.g. credentials)
    extra_env: dict[str, str] = Field(default_factory=dict)  # e.g. SYNC_SOURCE_URL
    run_as_user: int = Field(default=10001, ge=1)
    fs_group: int = Field(default=10001, ge=0)
    tmp_size_limit: str | None = None


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LEN]


def job_name(syncjob_name: str, uid: str) -> str:
    """The Job's name: the SyncJob's name plus a hash of its uid, at most 63 characters.

    The uid part means a SyncJob deleted and re-created under the same name never
    collides with its predecessor's Job while the garbage collector removes it.
    """
    prefix = re.sub(r"[^a-z0-9-]", "-", syncjob_name.lower())
    prefix = prefix[: _MAX_NAME - _HASH_LEN - 1].strip("-") or "sync"
    return f"{prefix}-{_short_hash(uid)}"


def label_value(value: str) -> str:
    """value if it is a valid label value, else a shortened form with a hash (deterministic)."""
    if len(value) <= _MAX_NAME and _LABEL_VALUE.match(value):
        return value
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[: _MAX_NAME - _HASH_LEN - 1]
    head = head.strip("-_.")
    return f"{head}-{_short_hash(value)}" if head else _short_hash(value)


def job_labels(syncjob_name: str, uid: str, job_type: str) -> dict[str, str]:
    """Labels of the Job and its pods; LABEL_JOB_UID selects one SyncJob's objects."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_NAME: CONTAINER_NAME,
        LABEL_JOB_NAME: label_value(syncjob_name),
        LABEL_JOB_UID: uid,
        LABEL_JOB_TYPE: job_type,
    }


def remaining_deadline_seconds(timeout_minutes: int | None, run_seconds: float) -> int | None:
    """What is left of the running-time budget, at least 1 second; None for no limit.

    A resumed Job's activeDeadlineSeconds timer starts from zero, so it must be given
    only what the earlier runs did not use.
    """
    if timeout_minutes is None:
        return None
    return max(1, math.floor(timeout_minutes * 60 - max(0.0, run_seconds)))


def _pod_failure_policy() -> dict[str, Any]:
    def on_exit(code: ExitCode, action: str) -> dict[str, Any]:
        return {"action": action, "onExitCodes": {
            "containerName": CONTAINER_NAME, "operator": "In", "values": [int(code)]}}

    return {"rules": [
        on_exit(ExitCode.FATAL, "FailJob"),  # retrying cannot help
        on_exit(ExitCode.STOPPED, "Ignore"),  # stopped on request: not a failure
        {"action": "Ignore",  # evicted or preempted: not the task's fault
         "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]}


def _env(name: str, namespace: str, uid: str, spec: SyncJobSpec,
         settings: JobSettings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": ENV_JOB_UID, "value": uid},
        {"name": ENV_JOB_NAME, "value": name},
        {"name": ENV_JOB_NAMESPACE, "value": namespace},
        {"name": ENV_JOB_TYPE, "value": str(spec.job_type)},
        {"name": ENV_JOB_PARAMS,
         "value": json.dumps(spec.params, sort_keys=True, separators=(",", ":"))},
        {"name": ENV_REDIS_URL, "value": settings.redis_url},
    ]
    if settings.database_url:
        env.append({"name": ENV_DATABASE_URL, "value": settings.database_url})
    env.append({"name": ENV_POD_NAME,
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    env += [{"name": k, "value": v} for k, v in sorted(settings.extra_env.items())]
    return env


def _pod_spec(env: list[dict[str, Any]], settings: JobSettings) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "env": env,
        "resources": {"requests": dict(settings.resources.requests),
                      "limits": dict(settings.resources.limits)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.env_from_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.env_from_secret}}]
    empty_dir = {"sizeLimit": settings.tmp_size_limit} if settings.tmp_size_limit else {}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",  # required by podFailurePolicy
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "automountServiceAccountToken": False,  # the runner never calls the API server
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": empty_dir}],
    }
    if settings.service_account_name:
        pod["serviceAccountName"] = settings.service_account_name
    return pod


def build_job(syncjob: Mapping[str, Any], settings: JobSettings) -> dict[str, Any]:
    """The batch/v1 Job for a SyncJob body (metadata, spec and, on resume, status)."""
    meta = syncjob["metadata"]
    name, namespace, uid = str(meta["name"]), str(meta["namespace"]), str(meta["uid"])
    spec = SyncJobSpec.model_validate(syncjob.get("spec") or {})
    run_seconds = float((syncjob.get("status") or {}).get("runSeconds") or 0)
    labels = job_labels(name, uid, str(spec.job_type))
    job_spec: dict[str, Any] = {
        "suspend": False,
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": spec.retry_attempts,
        "podReplacementPolicy": "Failed",  # no second pod while the first still stops
        "podFailurePolicy": _pod_failure_policy(),
        "template": {
            "metadata": {"labels": dict(labels),
                         "annotations": {ANNOTATION_JOB_NAME: name}},
            "spec": _pod_spec(_env(name, namespace, uid, spec, settings), settings),
        },
    }
    deadline = remaining_deadline_seconds(spec.timeout_minutes, run_seconds)
    if deadline is not None:
        job_spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name, uid),
            "namespace": namespace,
            "labels": labels,
            "annotations": {ANNOTATION_JOB_NAME: name},
            "ownerReferences": [{
                "apiVersion": API_VERSION,
                "kind": SYNCJOB.kind,
                "name": name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "spec": job_spec,
    }
