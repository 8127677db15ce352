"""A SyncJob's runner pod, and its log read through the API server.

Shared by `kubectl sync logs` and the console, each with the user's own client: every
read (the SyncJob, its pods, pods/log) is the user's, so the API server's answer, a 403
included, is the answer, as it would be to kubectl logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sync_operator.api import SYNCJOBS, Phase
from sync_operator.kube import KubeClient
from sync_operator.kube.bodies import RawBody
from sync_operator.kube.resources import PODS
from sync_operator.syncjob.job_builder import CONTAINER_NAME, LABEL_JOB_UID


class NoRunnerPodError(Exception):
    """The SyncJob exists but has no pod (not started yet, or its pods are gone)."""

    def __init__(self, name: str, phase: Phase) -> None:
        when = "" if phase.is_terminal else " yet"
        super().__init__(f"SyncJob {name} has no runner pod{when} (phase {phase})")
        self.name, self.phase = name, phase


def newest(pods: list[RawBody]) -> RawBody:
    """The Job's latest attempt: the last created; at a tie (timestamps are to the
    second) one still running over one that ended."""
    def key(pod: RawBody) -> tuple[str, bool, str]:
        meta: dict[str, Any] = dict(pod.get("metadata") or {})
        phase = (pod.get("status") or {}).get("phase")
        return (str(meta.get("creationTimestamp", "")),
                phase not in ("Succeeded", "Failed"), str(meta.get("name", "")))

    return max(pods, key=key)


async def runner_pod(client: KubeClient, namespace: str, name: str) -> RawBody:
    """The newest pod the SyncJob's Jobs made (they carry its uid as a label, so a pod of
    an older SyncJob of the same name is never taken for one of this)."""
    job = await client.get(SYNCJOBS, name, namespace)
    uid = job["metadata"]["uid"]
    pods = (await client.list(PODS, namespace, label_selector=f"{LABEL_JOB_UID}={uid}")
            )["items"]
    if not pods:
        raise NoRunnerPodError(name, Phase.of(job))
    return newest(list(pods))


def log_params(*, follow: bool = False, tail_lines: int | None = None) -> dict[str, str]:
    params = {"container": CONTAINER_NAME}
    if follow:
        params["follow"] = "true"
    if tail_lines is not None:
        params["tailLines"] = str(tail_lines)
    return params


@contextlib.asynccontextmanager
async def runner_log(client: KubeClient, namespace: str, name: str, *, follow: bool = False,
                     tail_lines: int | None = None) -> AsyncIterator[AsyncIterator[bytes]]:
    """The runner's output as it comes (ApiError or NoRunnerPodError on entering)."""
    pod = await runner_pod(client, namespace, name)
    path = PODS.path(namespace, str(pod["metadata"]["name"]), "log")
    async with client.stream(path, log_params(follow=follow, tail_lines=tail_lines)) as chunks:
        yield chunks
