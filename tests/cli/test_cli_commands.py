"""`kubectl sync ...` end to end: the real kubectl finds the plugin on PATH and runs it as a
process against the real control plane, with the real operator moving the jobs."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_operator.api.common import API_VERSION, SYNCJOBS, SYNCSCHEDULES
from sync_operator.cli import queueview
from sync_operator.cli import rows as cli_rows
from sync_operator.cli.objects import parse_jobs
from sync_operator.kube import KubeClient
from testkit.kubectl_sync import ksync, ok
from testkit.operator import OperatorProcess
from testkit.syncjobs import wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
DEMO = ["--param", "task=demo"]


def demo(items: int, unit_seconds: float) -> list[str]:
    return [*DEMO, f"--param=items={items}", f"--param=unitSeconds={unit_seconds}"]


def table(out: str) -> dict[str, list[str]]:
    """A printed table as {NAME: cells}, cut at the header's column offsets (cells may be
    empty, e.g. ETA of a finished job)."""
    lines = [line for line in out.splitlines() if line.strip()]
    spans = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    header = [lines[0][a:b].strip() for a, b in zip(spans, [*spans[1:], None], strict=True)]
    name_col = header.index("NAME")
    rows = [[line[a:b].strip() for a, b in zip(spans, [*spans[1:], None], strict=True)]
            for line in lines[1:]]
    return {row[name_col]: row for row in rows}


async def test_kubectl_finds_the_plugin(kubectl_env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "plugin", "list", env=kubectl_env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, _ = await proc.communicate()
    assert "kubectl-sync" in out.decode()
    result = await ksync(kubectl_env, "--help")
    assert result.code == 0
    assert "usage: kubectl sync" in result.out


async def test_create_list_get_a_job_that_succeeds(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        kubectl_env: dict[str, str]) -> None:
    env, ns = kubectl_env, ["-n", namespace]
    out = await ok(env, "create", "quran", "--name", "q1", *demo(5, 0.05), "--priority", "3",
                   "--retry-attempts", "1", "--timeout-minutes", "5", *ns)
    assert out == "syncjob.sync.jobcontrol.io/q1 created\n"
    created = await kube.get(SYNCJOBS, "q1", namespace)
    assert created["spec"]["params"] == {"task": "demo", "items": 5, "unitSeconds": 0.05}
    assert (created["spec"]["priority"], created["spec"]["retryAttempts"],
            created["spec"]["timeoutMinutes"]) == (3, 1, 5)
    generated = (await ok(env, "create", "prayer", "--generate-name", *demo(2, 0.05),
                          "-o", "name", *ns)).strip()
    assert re.fullmatch(r"syncjob\.sync\.jobcontrol\.io/prayer-[a-z0-9]{5}", generated)

    await wait_phase(kube, namespace, "q1", "Succeeded", timeout=90)
    await wait_phase(kube, namespace, generated.split("/")[1], "Succeeded", timeout=90)
    listed = table(await ok(env, "list", *ns))
    assert listed["q1"][:3] == ["q1", "quran", "Succeeded"]
    assert listed["q1"][3].endswith("100%")
    assert listed["q1"][4] == "3"

    wide = table(await ok(env, "list", "-o", "wide", *ns))
    assert wide["q1"][7] == "1"  # ATTEMPTS
    assert wide["q1"][8].startswith("q1-")  # JOB

    out = await ok(env, "list", "-A", "--type", "quran")
    everywhere = table(out)
    # Other tests' namespaces may hold a "q1" too: ours is among the rows of that name.
    q1_namespaces = {line.split()[0] for line in out.splitlines()[1:]
                     if len(line.split()) > 1 and line.split()[1] == "q1"}
    assert namespace in q1_namespaces
    assert everywhere["q1"][1] == "q1"
    assert generated.split("/")[1] not in everywhere
    assert await ok(env, "list", "--phase", "running,queued", *ns) == ""

    as_json = json.loads(await ok(env, "list", "-o", "json", "--type", "prayer", *ns))
    assert [i["spec"]["jobType"] for i in as_json["items"]] == ["prayer"]

    details = await ok(env, "get", "q1", *ns)
    for expected in ("Name:", "q1", "Phase:", "Succeeded", "(5/5 items)", "Attempts:",
                     "Started:", "Completed:", "Conditions:", "Complete", "Admitted"):
        assert expected in details
    body = yaml.safe_load(await ok(env, "get", "q1", "-o", "yaml", *ns))
    assert body["status"]["phase"] == "Succeeded"


async def test_pause_resume_and_cancel(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        kubectl_env: dict[str, str]) -> None:
    env, ns = kubectl_env, ["-n", namespace]
    await ok(env, "create", "audio", "--name", "long", *demo(300, 0.2), *ns)
    await wait_phase(kube, namespace, "long", "Running", timeout=30)

    assert await ok(env, "pause", "long", *ns) == "syncjob.sync.jobcontrol.io/long paused\n"
    await wait_phase(kube, namespace, "long", "Paused", timeout=40)
    assert table(await ok(env, "list", *ns))["long"][2] == "Paused"
    assert "PausedAtCheckpoint" in await ok(env, "get", "long", *ns)

    assert await ok(env, "resume", "long", *ns) == "syncjob.sync.jobcontrol.io/long resumed\n"
    await wait_phase(kube, namespace, "long", "Running", timeout=40)

    # Not a terminal and no --yes: refused, nothing sent.
    refused = await ksync(env, "cancel", "long", *ns)
    assert refused.code == 2
    assert "pass --yes" in refused.err
    assert not (await kube.get(SYNCJOBS, "long", namespace))["spec"].get("cancel")

    out = await ok(env, "cancel", "long", "--yes", *ns)
    assert out == "syncjob.sync.jobcontrol.io/long cancel requested\n"
    await wait_phase(kube, namespace, "long", "Cancelled", timeout=40)
    assert table(await ok(env, "list", *ns))["long"][2] == "Cancelled"

    again = await ksync(env, "pause", "long", *ns)
    assert again.code == 0
    assert "long has already finished (Cancelled): pause has no effect" in again.err


async def test_api_server_rejections_are_shown_verbatim_with_exit_1(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        kubectl_env: dict[str, str]) -> None:
    env, ns = kubectl_env, ["-n", namespace]
    await ok(env, "create", "hadith", "--name", "held", "--paused", *ns)

    low = await ksync(env, "priority", "held", "0", *ns)
    assert low.code == 1
    assert low.out == ""
    assert low.err.startswith("Error from server (Invalid): ")
    assert "spec.priority: Invalid value: 0: spec.priority in body should be greater than " \
           "or equal to 1" in low.err

    high = await ksync(env, "create", "quran", "--name", "x", "--priority", "11", *ns)
    assert high.code == 1
    assert "spec.priority in body should be less than or equal to 10" in high.err

    assert await ok(env, "priority", "held", "2", *ns) == \
        "syncjob.sync.jobcontrol.io/held priority set to 2\n"
    assert (await kube.get(SYNCJOBS, "held", namespace))["spec"]["priority"] == 2

    missing = await ksync(env, "get", "ghost", *ns)
    assert missing.code == 1
    assert missing.err.strip() == \
        'Error from server (NotFound): syncjobs.sync.jobcontrol.io "ghost" not found'

    # Pausing two jobs where one does not exist: the other is still paused, exit 1.
    both = await ksync(env, "cancel", "ghost", "held", "--yes", *ns)
    assert both.code == 1
    assert "held cancel requested" in both.out
    assert '"ghost" not found' in both.err

    bad_type = await ksync(env, "create", "nope", *ns)
    assert bad_type.code == 2
    assert "unknown job type 'nope'" in bad_type.err


async def test_list_shows_queue_positions(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        kubectl_env: dict[str, str]) -> None:
    """The operator writes no positions (a queued job's status says only that it waits);
    kubectl sync computes them on read, in the admitter's order."""
    env, ns = kubectl_env, ["-n", namespace]
    await ok(env, "create", "quran", "--name", "first", *demo(300, 0.2), *ns)
    await wait_phase(kube, namespace, "first", "Running", timeout=30)
    # quran's only slot is taken: these three wait, and line up by priority, not age.
    await ok(env, "create", "quran", "--name", "later", "--priority", "8", *ns)
    await ok(env, "create", "quran", "--name", "middle", "--priority", "5", *ns)
    await ok(env, "create", "quran", "--name", "urgent", "--priority", "1", *ns)

    async def listed() -> dict[str, list[str]] | None:
        rows = table(await ok(env, "list", "-o", "wide", *ns))
        queued = [name for name, row in rows.items() if row[2].startswith("Queued")]
        return rows if len(queued) == 3 and rows["later"][2] == "Queued #3" else None

    rows = await eventually(listed, timeout=30, what="three queue positions in the list")
    phases = {name: row[2] for name, row in rows.items()}
    assert phases == {"first": "Running", "urgent": "Queued #1", "middle": "Queued #2",
                      "later": "Queued #3"}
    # The same on-read computation over the objects themselves gives what was printed.
    jobs = parse_jobs((await kube.list(SYNCJOBS, namespace))["items"])
    queue = queueview.queue_view(jobs)
    for job in jobs:
        spot = queue.of(job)
        name = str(job.metadata["name"])
        assert phases[name] == cli_rows.phase_text(job, spot)
        if spot is not None:  # (a running job's message is its progress, still moving)
            assert rows[name][-1] == cli_rows.job_message(job, spot)
    assert rows["middle"][-1] == "#2 in line (2nd of its type) · 1 quran running · " \
                                 "1 running in all"

    details = await ok(env, "get", "urgent", *ns)
    assert "Queued #1" in details
    assert "#1 in line (1st of its type) · 1 quran running · 1 running in all" in details
    await ok(env, "cancel", "first", "urgent", "middle", "later", "--yes", *ns)


async def test_watch_prints_progress_lines_until_the_job_succeeds(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        kubectl_env: dict[str, str]) -> None:
    env, ns = kubectl_env, ["-n", namespace]
    await ok(env, "create", "prayer", "--name", "quick", *demo(15, 0.2), *ns)
    out = await ok(env, "watch", "quick", "--once", *ns, timeout=90)
    lines = out.splitlines()
    assert lines, "no lines"
    assert all(line.startswith("quick  ") for line in lines)
    assert re.fullmatch(r"quick  Succeeded  100%  15/15 \S+.*", lines[-1])
    percents = {int(m.group(1)) for line in lines if "Running" in line
                for m in [re.search(r"  (\d+)%", line)] if m}
    assert len(percents) >= 2, f"expected several progress steps, got:\n{out}"
    assert any("ETA" in line for line in lines)
    assert len(lines) == len(set(lines)), "a line per change, no repeats"

    # Without names (and stdout a pipe) it follows the namespace until all are terminal.
    await ok(env, "create", "hadith", "--name", "second", *demo(3, 0.1), *ns)
    out = await ok(env, "watch", *ns, timeout=90)
    last = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "Succeeded" in last["quick"]
    assert "Succeeded" in last["second"]

    missing = await ksync(env, "watch", "ghost", *ns)
    assert missing.code == 1
    assert '"ghost" not found' in missing.err


async def test_schedules_suspend_and_trigger(
        kube: KubeClient, namespace: str, operator: OperatorProcess,
        kubectl_env: dict[str, str]) -> None:
    env, ns = kubectl_env, ["-n", namespace]
    schedule: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": {"name": "nightly"},
        "spec": {"jobType": "finance", "schedule": "0 4 * * *", "timeZone": "Asia/Riyadh",
                 "priority": 2, "retryAttempts": 1,
                 "jobTemplate": {"params": {"task": "demo", "items": 3, "unitSeconds": 0.05}}}}
    await kube.create(SYNCSCHEDULES, schedule, namespace)

    row = table(await ok(env, "schedules", *ns))["nightly"]
    assert row[:5] == ["nightly", "finance", "0 4 * * *", "Asia/Riyadh", "False"]

    assert await ok(env, "suspend", "nightly", *ns) == \
        "syncschedule.sync.jobcontrol.io/nightly suspended\n"
    assert (await kube.get(SYNCSCHEDULES, "nightly", namespace))["spec"]["suspend"] is True
    assert table(await ok(env, "schedules", *ns))["nightly"][4] == "True"
    await ok(env, "unsuspend", "nightly", *ns)
    assert (await kube.get(SYNCSCHEDULES, "nightly", namespace))["spec"]["suspend"] is False

    name = (await ok(env, "trigger", "nightly", "-o", "name", *ns)).strip().split("/")[1]
    assert re.fullmatch(r"nightly-manual-\d{8}-\d{6}", name)
    job = await kube.get(SYNCJOBS, name, namespace)
    assert job["metadata"]["labels"]["sync.jobcontrol.io/schedule"] == "nightly"
    assert job["spec"]["scheduleRef"] == "nightly"
    assert (job["spec"]["jobType"], job["spec"]["priority"], job["spec"]["retryAttempts"]) \
        == ("finance", 2, 1)
    assert job["spec"]["params"] == schedule["spec"]["jobTemplate"]["params"]
    await wait_phase(kube, namespace, name, "Succeeded", timeout=90)
    by_label = await ok(env, "list", "-l", "sync.jobcontrol.io/schedule=nightly", "-o", "name",
                        *ns)
    assert by_label == f"syncjob.sync.jobcontrol.io/{name}\n"

    missing = await ksync(env, "trigger", "ghost", *ns)
    assert missing.code == 1
    assert 'syncschedules.sync.jobcontrol.io "ghost" not found' in missing.err


async def test_global_flags_kubeconfig_and_context(
        namespace: str, crds: list[str], kubectl_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(kubectl_env)
    kubeconfig = env.pop("KUBECONFIG")
    context = yaml.safe_load(Path(kubeconfig).read_text())["current-context"]
    out = await ok(env, "--kubeconfig", kubeconfig, "--context", context, "list", "-n", namespace)
    assert out == ""
    wrong = await ksync(env, "list", "--kubeconfig", kubeconfig, "--context", "nope")
    assert wrong.code == 1
    assert "no context named 'nope'" in wrong.err
    # The context's namespace is the default namespace.
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    for entry in doc["contexts"]:
        entry["context"]["namespace"] = namespace
    scoped = tmp_path / "scoped.yaml"
    scoped.write_text(yaml.safe_dump(doc))
    env["KUBECONFIG"] = str(scoped)
    assert await ok(env, "create", "quran", "--name", "here", "--paused", "-o", "name") == \
        "syncjob.sync.jobcontrol.io/here\n"
    assert "here" in table(await ok(env, "list"))
