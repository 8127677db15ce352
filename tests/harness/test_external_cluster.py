"""The end-to-end tests (tests/e2e) take any cluster through a KUBECONFIG: here one started
by a separate process, which the inner run knows only by its kubeconfig file. Where no
Docker engine runs, their kind path says so in one line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from testkit.docker import docker_engine
from testkit.servers import RedisServer

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]


async def _pytest(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 480)
    return proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNC_E2E_")}


@pytest.mark.timeout(600)  # a cluster of its own, then the chart test on it
async def test_the_end_to_end_tests_run_on_a_cluster_known_only_by_its_kubeconfig(
        tmp_path: Path, redis_server: RedisServer, database_url: str) -> None:
    cluster = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testkit.cluster", "--dir", str(tmp_path / "cluster"),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert cluster.stdout is not None
        line = await asyncio.wait_for(cluster.stdout.readline(), 180)
        kubeconfig = line.decode().strip()
        assert kubeconfig.endswith("admin.yaml"), line
        code, out = await _pytest({
            **_clean_env(), "SYNC_E2E_KUBECONFIG": kubeconfig,
            "SYNC_E2E_REDIS_URL": redis_server.url, "SYNC_E2E_DATABASE_URL": database_url,
            "SYNC_E2E_PROCESS_PODS": "1"}, "tests/e2e", "--basetemp", str(tmp_path / "inner"))
    finally:
        cluster.terminate()
        await asyncio.wait_for(cluster.wait(), 60)
    assert code == 0, out[-8000:]
    assert "1 passed" in out, out[-4000:]
    assert "helm install --wait:" in out
    assert "local cluster up" not in out  # the inner run started no cluster of its own
    assert cluster.returncode == 0


async def test_without_docker_the_kind_path_skips_in_one_line(tmp_path: Path) -> None:
    if docker_engine():
        pytest.skip("a Docker engine runs here: SYNC_E2E_KIND=1 makes a real kind "
                    "cluster (minutes), outside this suite")
    code, out = await _pytest({**_clean_env(), "SYNC_E2E_KIND": "1"}, "-rs", "tests/e2e",
                              "--basetemp", str(tmp_path / "inner"))
    assert code == 0, out
    summary = out.strip().splitlines()[-1]
    assert " skipped" in summary, out  # every e2e test, and nothing ran or failed
    assert "passed" not in summary, out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert skips, out
    for line in skips:  # each test says the one reason, in one line
        assert "SYNC_E2E_KIND: no Docker engine here, so no kind cluster" in line, out
