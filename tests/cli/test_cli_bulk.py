"""`kubectl sync` bulk actions: -l SELECTOR on pause, resume, cancel, priority and delete,
one result line per job, confirmation for the destructive ones, and per-job refusals
that do not stop the rest (no operator needed: these only state the wish)."""

from __future__ import annotations

import pytest

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from testkit.cluster import LocalCluster
from testkit.kubectl_sync import ksync, ok
from testkit.syncjobs import grant_users, syncjob

pytestmark = pytest.mark.cluster


async def _jobs(kube: KubeClient, namespace: str) -> dict[str, dict[str, object]]:
    return {j["metadata"]["name"]: j["spec"] for j in (await kube.list(SYNCJOBS, namespace))[
        "items"]}


async def test_selector_actions_print_one_line_per_job(
        kube: KubeClient, namespace: str, kubectl_env: dict[str, str], crds: list[str]) -> None:
    env, ns = kubectl_env, ["-n", namespace]
    for name, batch in (("n-1", "nightly"), ("n-2", "nightly"), ("w-1", "weekly")):
        body = syncjob(name, "prayer")
        body["metadata"]["labels"] = {"batch": batch}
        await kube.create(SYNCJOBS, body, namespace)

    assert await ok(env, "pause", "-l", "batch=nightly", *ns) == (
        "syncjob.sync.jobcontrol.io/n-1 paused\nsyncjob.sync.jobcontrol.io/n-2 paused\n")
    assert await ok(env, "priority", "-l", "batch=nightly", "2", *ns) == (
        "syncjob.sync.jobcontrol.io/n-1 priority set to 2\n"
        "syncjob.sync.jobcontrol.io/n-2 priority set to 2\n")
    assert await ok(env, "priority", "w-1", "n-1", "9", *ns) == (
        "syncjob.sync.jobcontrol.io/w-1 priority set to 9\n"
        "syncjob.sync.jobcontrol.io/n-1 priority set to 9\n")
    specs = await _jobs(kube, namespace)
    assert [(specs[n].get("paused"), specs[n]["priority"]) for n in ("n-1", "n-2", "w-1")] == [
        (True, 9), (True, 2), (False, 9)]  # the CRD defaults paused to false

    # Destructive and in bulk: refused without --yes when nobody can be asked.
    refused = await ksync(env, "cancel", "-l", "batch=nightly", *ns)
    assert refused.code == 2
    assert "pass --yes" in refused.err
    refused = await ksync(env, "delete", "-l", "batch=nightly", *ns)
    assert refused.code == 2
    assert len(await _jobs(kube, namespace)) == 3
    assert await ok(env, "cancel", "-l", "batch=nightly", "--yes", *ns) == (
        "syncjob.sync.jobcontrol.io/n-1 cancel requested\n"
        "syncjob.sync.jobcontrol.io/n-2 cancel requested\n")
    none = await ksync(env, "resume", "-l", "batch=none", *ns)
    assert (none.code, none.out) == (0, "")
    assert "no SyncJob" in none.err
    # One named deletion is not bulk: no confirmation, as with kubectl delete.
    assert await ok(env, "delete", "w-1", *ns) == "syncjob.sync.jobcontrol.io/w-1 deleted\n"
    assert await ok(env, "delete", "-l", "batch=nightly", "--yes", *ns) == (
        "syncjob.sync.jobcontrol.io/n-1 deleted\nsyncjob.sync.jobcontrol.io/n-2 deleted\n")


@pytest.mark.parametrize("args", [["pause"], ["pause", "a", "-l", "x=y"],
                                  ["priority", "-l", "x=y"], ["priority", "a", "high"],
                                  ["delete"]])
async def test_names_or_a_selector_exactly_one(
        kubectl_env: dict[str, str], args: list[str]) -> None:
    result = await ksync(kubectl_env, *args)
    assert result.code == 2, result
    assert "error:" in result.err


async def test_a_refused_job_does_not_stop_the_others(
        kube: KubeClient, namespace: str, kubectl_env: dict[str, str], cluster: LocalCluster,
        crds: list[str]) -> None:
    """bob may edit here; a job name that does not exist is refused on its own line."""
    await grant_users(kube, namespace)
    await kube.create(SYNCJOBS, syncjob("real", "prayer"), namespace)
    env = {**kubectl_env, "KUBECONFIG": str(cluster.user_kubeconfig("bob", namespace))}
    result = await ksync(env, "pause", "missing", "real")
    assert result.code == 1
    assert result.out == "syncjob.sync.jobcontrol.io/real paused\n"
    assert '"missing" not found' in result.err
