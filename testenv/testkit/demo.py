"""`bash scripts/dev.sh demo`: the whole product on the local stack, end to end.

Starts the local control plane, Redis, PostgreSQL (migrated), the upstream source
server and the operator (with its mirror and admission webhooks); installs the CRDs
and the five default SyncSchedules; creates one SyncJob of each type (real sync
tasks) plus a long demo job that it pauses, resumes and cancels; shows them live
with `kubectl sync watch`; and prints the audit log from PostgreSQL.

With --keep it stays up until Ctrl-C and prints how to point kubectl at it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from sync_operator.api.common import SYNCJOBS, SYNCSCHEDULES
from sync_operator.kube import KubeClient, load_connection
from sync_operator.kube.resources import NAMESPACES
from sync_operator.mirror import upgrade
from testkit.build import ensure_kubectl_link
from testkit.cluster import LocalCluster
from testkit.operator import OperatorProcess
from testkit.ports import free_port
from testkit.servers import PostgresServer, RedisServer
from testkit.source_server import SourceServer
from testkit.syncjobs import REPO, install_crds, set_spec, syncjob, wait_phase

NAMESPACE = "sync-demo"


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


async def drive(kube: KubeClient, source_url: str, env: dict[str, str]) -> None:
    for path in sorted((REPO / "deploy" / "schedules").glob("*.yaml")):
        schedule = yaml.safe_load(path.read_text())
        schedule["metadata"].pop("namespace", None)
        await kube.create(SYNCSCHEDULES, schedule, NAMESPACE)
    say("installed the five default SyncSchedules (kubectl sync schedules)")
    table = await asyncio.create_subprocess_exec(
        "kubectl", "sync", "schedules", "-n", NAMESPACE, env=env)
    await table.wait()

    for body in sample_jobs(source_url):
        await kube.create(SYNCJOBS, body, NAMESPACE)
    say("created one SyncJob of each type and a long demo job; watching them live")
    watch = await asyncio.create_subprocess_exec(
        "kubectl", "sync", "watch", "-n", NAMESPACE, env=env)

    await wait_phase(kube, NAMESPACE, "long-demo", "Running", timeout=120)
    await asyncio.sleep(3)
    await set_spec(kube, NAMESPACE, "long-demo", paused=True)
    paused = await wait_phase(kube, NAMESPACE, "long-demo", "Paused", timeout=60)
    done = paused["status"]["progress"]["done"]
    await asyncio.sleep(2)
    await set_spec(kube, NAMESPACE, "long-demo", paused=False)
    await wait_phase(kube, NAMESPACE, "long-demo", "Running", timeout=60)
    await asyncio.sleep(2)
    await set_spec(kube, NAMESPACE, "long-demo", cancel=True)
    await asyncio.wait_for(watch.wait(), 600)
    say(f"long-demo was paused at {done} items, resumed from its checkpoint, then cancelled")


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
    cluster = LocalCluster(root / "cluster")
    redis = RedisServer(root / "redis")
    postgres = PostgresServer(root / "postgres")
    source = SourceServer()
    operator: OperatorProcess | None = None
    try:
        cluster.start()
        redis.start()
        postgres.start()
        database_url = postgres.sync_url()
        upgrade(database_url)
        source_url = await source.start(port=free_port())
        print(f"control plane up in {cluster.startup_seconds:.1f}s at {cluster.server}")
        env = dict(os.environ)
        bin_dir = root / "bin"
        ensure_kubectl_link(bin_dir)
        env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env["KUBECONFIG"] = str(cluster.admin_kubeconfig)
        async with KubeClient(load_connection(cluster.admin_kubeconfig)) as kube:
            await install_crds(kube)
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NAMESPACE}})
            cert, key = root / "webhook.crt", root / "webhook.key"
            cluster.pki.issue(cert, key, "sync-operator-webhook", ["IP:127.0.0.1"])
            operator = OperatorProcess(cluster.admin_kubeconfig, root / "operator.log", {
                "redis_url": redis.url, "database_url": database_url,
                "runner_database_url": database_url,
                "runner_env": json.dumps({"SYNC_SOURCE_URL": source_url}),
                "runner_image": "registry.local/sync-runner:0.1.0",
                "lease_namespace": NAMESPACE, "metrics_port": str(free_port()),
                "webhook_enabled": "true", "webhook_addr": "127.0.0.1",
                "webhook_host": "127.0.0.1", "webhook_port": str(free_port()),
                "webhook_cert_file": str(cert), "webhook_key_file": str(key),
                "webhook_ca_file": str(cluster.pki.ca_cert),
                "type_limits": json.dumps({"quran": 2, "prayer": 2, "hadith": 1,
                                           "audio": 1, "finance": 1}),
            })
            operator.start()
            await asyncio.sleep(3)
            await drive(kube, source_url, env)
        print_audit(database_url)
        if args.keep:
            say("the stack stays up; in another shell:")
            print(f"  export KUBECONFIG={cluster.admin_kubeconfig}")
            print(f"  export PATH={bin_dir}:{Path(sys.executable).parent}:$PATH")
            print(f"  kubectl sync list -n {NAMESPACE}; kubectl sync watch -n {NAMESPACE}")
            print("Ctrl-C stops everything.")
            await asyncio.Event().wait()
        return 0
    finally:
        if operator is not None:
            operator.stop()
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


if __name__ == "__main__":
    main()
