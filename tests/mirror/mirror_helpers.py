"""Helpers for the mirror tests: databases, and rows read back over fresh connections."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import create_async_engine

from sync_operator.mirror.urls import async_url
from testkit.servers import PostgresServer


def create_database(server: PostgresServer) -> str:
    """A new empty database on the session server; its psycopg URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user,
         "-d", "postgres", "-tAc", f"CREATE DATABASE {name}"],
        check=True, capture_output=True,
    )
    return f"postgresql+psycopg://{server.user}@127.0.0.1:{server.port}/{name}"


async def fetch(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of a query, as dicts, over a connection of its own."""
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    rows = await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def terminate_client_connections(server: PostgresServer) -> None:
    """Close every client session server-side, so a smart shutdown need not wait for
    pooled connections; the pools keep their now-dead connections, as after a crash."""
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user, "-d", "postgres",
         "-tAc", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"],
        check=True, capture_output=True,
    )


def job_body(uid: str, name: str, *, namespace: str = "content", job_type: str = "quran",
             priority: int = 5, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A SyncJob as the API server returns it."""
    return {
        "apiVersion": "sync.jobcontrol.io/v1alpha1",
        "kind": "SyncJob",
        "metadata": {"uid": uid, "namespace": namespace, "name": name,
                     "resourceVersion": "1", "generation": 1},
        "spec": {"jobType": job_type, "priority": priority},
        "status": status or {},
    }


def schedule_body(uid: str, name: str, *, generation: int, resource_version: int,
                  schedule: str = "0 3 * * *", suspend: bool = False,
                  status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A SyncSchedule as the API server returns it."""
    return {
        "apiVersion": "sync.jobcontrol.io/v1alpha1",
        "kind": "SyncSchedule",
        "metadata": {"uid": uid, "namespace": "content", "name": name,
                     "generation": generation, "resourceVersion": str(resource_version)},
        "spec": {"jobType": "quran", "schedule": schedule, "timeZone": "Asia/Riyadh",
                 "suspend": suspend, "priority": 1, "maxConcurrency": 1,
                 "concurrencyPolicy": "Forbid", "timeoutMinutes": 120, "retryAttempts": 3},
        "status": status or {},
    }
