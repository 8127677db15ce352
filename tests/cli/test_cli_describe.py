"""`kubectl sync describe NAME`: the job's detail, then the recent Events about it and
its runner Job, newest first, and only theirs (no operator: the Events are posted as
the operator posts them)."""

from __future__ import annotations

import pytest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.events import EventRecorder
from sync_operator.kube.resources import JOBS
from testkit.kubectl_sync import ok
from testkit.syncjobs import syncjob

pytestmark = pytest.mark.cluster

RUNNER = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "described-run"},
          "spec": {"suspend": True, "template": {"spec": {
              "restartPolicy": "Never",
              "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}}}


async def test_describe_shows_the_events_of_the_job_and_its_runner_only(
        kube: KubeClient, namespace: str, kubectl_env: dict[str, str], crds: list[str]) -> None:
    job = await kube.create(SYNCJOBS, syncjob("described", "prayer"), namespace)
    other = await kube.create(SYNCJOBS, syncjob("someone-else", "prayer"), namespace)
    runner = await kube.create(JOBS, RUNNER, namespace)
    await kube.patch(SYNCJOBS, "described", {"status": {"jobRef": "described-run"}},
                     namespace, subresource="status")
    events = EventRecorder(client=kube, instance="test")
    await events.record(job, "Admitted", "admitted: 1 of 2 prayer slots in use")
    await events.record(runner, "SuccessfulCreate", "Created pod: described-run-x")
    await events.record(other, "NotMine", "an Event about another job")
    await events.record(job, "RunnerFailed", "attempt 1 failed: exit 3", warning=True)

    out = await ok(kubectl_env, "describe", "described", "-n", namespace)
    assert "Name:" in out
    assert "described" in out
    lines = out[out.index("Events:"):].splitlines()
    assert lines[1].split()[:2] == ["TYPE", "REASON"]
    reasons = [line.split()[1] for line in lines[2:] if line[:1].strip()]
    ours = [r for r in reasons if r in ("RunnerFailed", "SuccessfulCreate", "Admitted")]
    assert ours == ["RunnerFailed", "SuccessfulCreate", "Admitted"]
    assert set(reasons) - set(ours) <= {"Suspended"}  # the Job controller's, about the Job
    assert "NotMine" not in out
    assert "SyncJob/described" in out
    assert "Job/described-run" in out
    assert "Warning" in lines[2]

    quiet = await ok(kubectl_env, "describe", "someone-else", "-n", namespace)
    assert "NotMine" in quiet
    assert "Admitted" not in quiet
