"""`bash scripts/dev.sh demo`: the product installed with its chart, used as its users use it.

Starts the local control plane, Redis, PostgreSQL and an upstream source server; then
installs the chart as a platform team would (`helm install --wait` into sync-system,
cluster-wide): the migrate hook brings the schema to head, two operator replicas run as
pods (one leads), the webhooks and the five default SyncSchedules come with it. alice,
bound to the built-in `edit` role in sync-demo, creates one SyncJob of each type (real
sync tasks) and a long demo job that she pauses, resumes and cancels with `kubectl sync`;
carol, bound to `view`, may watch but not pause. Prints the install time, the pods and
their memory, then the audit log from PostgreSQL, which names alice.

With --keep it stays up until Ctrl-C and prints how to point kubectl at it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import NAMESPACES
from testkit.build import ensure_kubectl_link
from testkit.cluster import LocalCluster
from testkit.ports import free_port
from testkit.release import (
    CHART,
    REPO,
    bind_user,
    create_secret,
    install,
    leader,
    operator_pods,
    pods_report,
    rss_mib,
)
from testkit.servers import PostgresServer, RedisServer
from testkit.source_server import SourceServer
from testkit.syncjobs import syncjob, wait_phase

NAMESPACE = "sync-demo"  # where alice runs her jobs
RELEASE_NAMESPACE = "sync-system"  # where the chart is installed
RELEASE = "sync-operator"


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def sample_jobs(source_url: str) -> list[dict[str, Any]]:
    today = datetime.now(UTC).date()
    source = {"sourceUrl": source_url}
    return [
        syncjob("quran-chapters", "quran", priority=1, params=source),
        syncjob("prayer-times", "prayer", priority=2, params={
            "dateFrom": today.isoformat(), "dateTo": (today + timedelta(days=6)).isoformat()}),
        syncjob("hadith-collection", "hadith", priority=3, params=source),
        syncjob("audio-tracks", "audio", priority=4, params=source),
        syncjob("finance-rates", "finance", priority=2, params=source),
        syncjob("long-demo", "quran", priority=5,
                params={"task": "demo", "items": 120, "unitSeconds": 0.1}),
    ]


async def kubectl(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run kubectl (and its `sync` plugin) as the user `env` names; echo the command."""
    print(f"$ kubectl {' '.join(args)}    # as {env['DEMO_USER']}", flush=True)
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode()
    print(text.rstrip(), flush=True)
    return proc.returncode or 0, text


async def drive(kube: KubeClient, alice: KubeClient, source_url: str,
                users: dict[str, dict[str, str]]) -> None:
    """What the users do: alice runs and steers jobs, carol only looks."""
    await kubectl(users["admin"], "get", "pods", "-n", RELEASE_NAMESPACE, "-o", "wide")
    await kubectl(users["admin"], "sync", "schedules", "-n", RELEASE_NAMESPACE)
    for body in sample_jobs(source_url):
        await alice.create(SYNCJOBS, body, NAMESPACE)
    say("alice (edit) created one SyncJob of each type and a long demo job; watching live")
    watch = await asyncio.create_subprocess_exec(
        "kubectl", "sync", "watch", "-n", NAMESPACE, env=users["alice"])

    await wait_phase(kube, NAMESPACE, "long-demo", "Running", timeout=120)
    await asyncio.sleep(3)
    code, _ = await kubectl(users["carol"], "sync", "pause", "long-demo", "-n", NAMESPACE)
    if code == 0:
        raise RuntimeError("carol, bound to `view`, was allowed to pause a job")
    await kubectl(users["alice"], "sync", "pause", "long-demo", "-n", NAMESPACE)
    paused = await wait_phase(kube, NAMESPACE, "long-demo", "Paused", timeout=60)
    done = paused["status"]["progress"]["done"]
    await asyncio.sleep(2)
    await kubectl(users["alice"], "sync", "resume", "long-demo", "-n", NAMESPACE)
    await wait_phase(kube, NAMESPACE, "long-demo", "Running", timeout=60)
    await asyncio.sleep(2)
    await kubectl(users["alice"], "sync", "cancel", "long-demo", "-n", NAMESPACE, "--yes")
    await asyncio.wait_for(watch.wait(), 600)
    say(f"long-demo was paused at {done} items, resumed from its checkpoint, then cancelled")


async def install_product(cluster: LocalCluster, kube: KubeClient, database_url: str,
                          redis_url: str, source_url: str) -> None:
    """What the platform team does: namespaces, the database Secret, RoleBindings for
    the users, and the chart."""
    for name in (RELEASE_NAMESPACE, NAMESPACE):
        await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name}})
    await create_secret(kube, RELEASE_NAMESPACE, "sync-db", {
        "database-url": database_url, "runner-database-url": database_url})
    await bind_user(kube, NAMESPACE, "alice", "edit")
    await bind_user(kube, NAMESPACE, "carol", "view")
    values = {"database.existingSecret": "sync-db", "runner.database.existingSecret": "sync-db",
              "redis.url": redis_url, "runner.env.SYNC_SOURCE_URL": source_url,
              "limits.typeLimits.quran": "2", "listenOnPodIP": "true"}
    say(f"helm install {RELEASE} {CHART.relative_to(REPO)} -n {RELEASE_NAMESPACE} --wait")
    try:
        seconds = await install(cluster.admin_kubeconfig, RELEASE, RELEASE_NAMESPACE, values)
    except AssertionError as err:
        report = await pods_report(kube, RELEASE_NAMESPACE, cluster.root / "kubelet" / "logs")
        raise RuntimeError(f"{err}\n{report}") from None
    pods = await operator_pods(kube, RELEASE_NAMESPACE)
    lead = await leader(kube, RELEASE_NAMESPACE)
    print(f"installed in {seconds:.1f} s: " + ", ".join(
        f"{p['metadata']['name']} ({'leader' if p['metadata']['name'] == lead else 'standby'}"
        f", {p['status']['podIP']}, {rss_mib(p):.0f} MiB)" for p in pods))


def print_audit(database_url: str) -> None:
    say("the audit log in PostgreSQL (sync_job_audit_logs)")
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "select job_name, action, performed_by, to_char(performed_at, 'HH24:MI:SS') "
            "from sync_job_audit_logs order by performed_at, id").fetchall()
        for name, action, who, at in rows:
            print(f"  {at}  {name:<20} {action:<18} {who}")
        say("the control table (sync_job_control)")
        for name, status, pct in conn.execute(
                "select job_name, status, progress_percentage from sync_job_control "
                "order by job_name").fetchall():
            print(f"  {name:<20} {status:<10} {pct}%")


async def amain(args: argparse.Namespace) -> int:
    root = Path(args.dir or tempfile.mkdtemp(prefix="sync-demo-"))
    if root.exists() and args.dir:
        shutil.rmtree(root)
    say(f"starting the local stack under {root}")
    # SIGTERM (a `kill`, a CI timeout) tears the stack down like Ctrl-C, not orphaning it.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    cluster = LocalCluster(root / "cluster")
    redis = RedisServer(root / "redis")
    postgres = PostgresServer(root / "postgres")
    source = SourceServer()
    try:
        cluster.start()
        redis.start()
        postgres.start()
        database_url = postgres.sync_url()
        source_url = await source.start(port=free_port())
        print(f"control plane up in {cluster.startup_seconds:.1f}s at {cluster.server}")
        bin_dir = root / "bin"
        ensure_kubectl_link(bin_dir)
        path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        users = {user: {**os.environ, "PATH": path, "KUBECONFIG": str(config),
                        "DEMO_USER": user}
                 for user, config in (("admin", cluster.admin_kubeconfig),
                                      ("alice", cluster.user_kubeconfig("alice", NAMESPACE)),
                                      ("carol", cluster.user_kubeconfig("carol", NAMESPACE)))}
        async with KubeClient(load_connection(cluster.admin_kubeconfig)) as kube, \
                KubeClient(load_connection(Path(users["alice"]["KUBECONFIG"]))) as alice:
            await install_product(cluster, kube, database_url, redis.url, source_url)
            await drive(kube, alice, source_url, users)
        print_audit(database_url)
        if args.keep:
            say("the stack stays up; in another shell:")
            print(f"  export PATH={path.split(':', 2)[0]}:{Path(sys.executable).parent}:$PATH")
            for user, env in users.items():
                print(f"  export KUBECONFIG={env['KUBECONFIG']}   # as {user}")
            print(f"  kubectl sync list -n {NAMESPACE}; kubectl sync watch -n {NAMESPACE}")
            print("Ctrl-C stops everything.")
            await asyncio.Event().wait()
        return 0
    finally:
        await source.stop()
        cluster.stop()
        postgres.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument("--dir", help="state directory (default: a new temporary one)")
    try:
        sys.exit(asyncio.run(amain(parser.parse_args())))
    except KeyboardInterrupt:
        sys.exit(130)
    except asyncio.CancelledError:  # SIGTERM
        sys.exit(143)


if __name__ == "__main__":
    main()
