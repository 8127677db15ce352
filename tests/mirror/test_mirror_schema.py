"""Migrations against a real PostgreSQL: up, down, again, and the start-up check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from mirror_helpers import fetch, job_body, schedule_body, table_names
from sqlalchemy import NullPool, create_engine

from sync_operator.audit.outbox import append_entry, pending_entries
from sync_operator.mirror import (
    JobSnapshot,
    MirrorStore,
    ScheduleSnapshot,
    SchemaNotMigrated,
    check_schema,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from sync_operator.mirror.models import Base
from sync_operator.mirror.schema import migrations_dir
from sync_operator.mirror.urls import sync_url

REPO = Path(__file__).resolve().parents[2]
MIRROR_TABLES = {"sync_job_control", "sync_job_schedules", "sync_job_audit_logs"}
AT = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
HEAD = "0003_created_at_indexes"
# 0003: the original design's indexes by creation time (an audit row's is performed_at).
CREATED_AT_INDEXES = {"ix_sync_job_control_created_at", "ix_sync_job_audit_logs_performed_at"}


async def _index_names(url: str) -> set[str]:
    return {row["indexname"] for row in await fetch(
        url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


async def _populate(url: str) -> None:
    mirror = append_entry(None, "create", "alice", "Pending", {}, AT)
    job = job_body("uid-1", "quran-nightly", status={"phase": "Pending", "mirror": mirror})
    schedule = schedule_body("sched-1", "quran", generation=1, resource_version=10)
    store = MirrorStore(url)
    try:
        await store.apply_job(JobSnapshot.from_body(job), pending_entries(mirror))
        await store.apply_schedule(ScheduleSnapshot.from_body(schedule))
    finally:
        await store.close()


async def _mirror_counts(url: str) -> dict[str, int]:
    return {table: (await fetch(url, f"SELECT count(*) AS n FROM {table}"))[0]["n"]
            for table in sorted(MIRROR_TABLES)}


async def test_upgrade_then_downgrade_on_empty_database(database_url: str) -> None:
    assert current_revision(database_url) is None

    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    assert await table_names(database_url) >= MIRROR_TABLES | {"alembic_version"}
    indexes = {row["indexname"] for row in await fetch(
        database_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {
        "ix_sync_job_control_job_type_status", "ix_sync_job_control_namespace_job_name",
        "ix_sync_job_control_status", "uq_sync_job_control_job_uid",
        "uq_sync_job_schedules_schedule_uid", "ix_sync_job_audit_logs_job_uid_performed_at",
        "ix_sync_job_audit_logs_action", "ix_sync_job_audit_logs_performed_by",
        "uq_sync_job_audit_logs_idempotency_key",
    } | CREATED_AT_INDEXES <= indexes

    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    assert await table_names(database_url) == {"alembic_version"}


async def test_upgrade_downgrade_upgrade_on_populated_database_keeps_mirror_rows_above_base(
    database_url: str,
) -> None:
    upgrade(database_url)
    await _populate(database_url)
    before = await _mirror_counts(database_url)
    assert before == {"sync_job_audit_logs": 1, "sync_job_control": 1, "sync_job_schedules": 1}

    # Later revisions come and go without touching the mirror tables.
    downgrade(database_url, "0001_mirror")
    upgrade(database_url)
    assert await _mirror_counts(database_url) == before

    # Below 0001_mirror the mirror is gone by design (see the revision's docstring) ...
    downgrade(database_url, "base")
    assert not await table_names(database_url) & MIRROR_TABLES

    # ... and comes back empty, then rebuilds from the resources on the next apply.
    upgrade(database_url)
    assert await _mirror_counts(database_url) == dict.fromkeys(before, 0)
    await _populate(database_url)
    assert await _mirror_counts(database_url) == before


async def test_the_head_revision_adds_the_created_at_indexes_and_its_downgrade_drops_them(
    database_url: str,
) -> None:
    assert head_revision() == HEAD
    upgrade(database_url)
    await _populate(database_url)
    before = await _mirror_counts(database_url)
    assert await _index_names(database_url) >= CREATED_AT_INDEXES

    downgrade(database_url, "0002_content")
    assert current_revision(database_url) == "0002_content"
    assert not CREATED_AT_INDEXES & await _index_names(database_url)
    assert await _mirror_counts(database_url) == before

    upgrade(database_url)
    assert current_revision(database_url) == HEAD
    assert await _index_names(database_url) >= CREATED_AT_INDEXES


def test_check_schema_refuses_unmigrated_database_with_clear_message(database_url: str) -> None:
    with pytest.raises(SchemaNotMigrated) as refused:
        check_schema(database_url)

    message = str(refused.value)
    assert refused.value.current is None
    assert refused.value.required == head_revision()
    assert "/t_" in message
    assert "never migrated" in message
    assert f"operator needs {head_revision()}" in message
    assert "run `alembic upgrade head` or start the operator with --migrate" in message


def test_check_schema_refuses_a_database_behind_or_ahead_of_the_operator(
    database_url: str,
) -> None:
    upgrade(database_url)
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    engine.dispose()

    with pytest.raises(SchemaNotMigrated, match="9999_future, which this operator does not know"):
        check_schema(database_url)


def test_operator_started_with_migrate_brings_the_database_to_head(database_url: str) -> None:
    assert ensure_schema(database_url, migrate=True) == head_revision()
    assert check_schema(database_url) == head_revision()


def test_operator_replicas_migrating_at_once_all_start_at_head(database_url: str) -> None:
    # Separate processes, as replicas are (Alembic's context is process-global).
    code = ("import sys; from sync_operator.mirror import ensure_schema; "
            "print(ensure_schema(sys.argv[1], migrate=True))")
    replicas = [subprocess.Popen([sys.executable, "-c", code, database_url],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    outputs = [replica.communicate(timeout=120) for replica in replicas]

    assert [replica.returncode for replica in replicas] == [0, 0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [head_revision()] * 3


def test_migration_creates_exactly_what_the_models_declare(database_url: str) -> None:
    upgrade(database_url)  # the mirror's tables are 0001's, their later indexes 0003's
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True,
                                                       "compare_server_default": True}),
                Base.metadata,
            )
    finally:
        engine.dispose()

    # The runner's content tables (0002) are compared in tests/tasks.
    ours = [d for d in diff if not (d[0] == "remove_table" and d[1].name not in MIRROR_TABLES)
            and not (d[0] == "remove_index" and d[1].table.name not in MIRROR_TABLES)]
    assert ours == []


def test_migrations_directory_can_be_given_by_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    shipped = head_revision()
    # As in an image that copies migrations/ somewhere of its own.
    copied = shutil.copytree(REPO / "migrations", tmp_path / "migrations",
                             ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("SYNC_MIGRATIONS_DIR", str(copied))
    assert migrations_dir() == copied
    assert head_revision() == shipped

    monkeypatch.setenv("SYNC_MIGRATIONS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="set SYNC_MIGRATIONS_DIR"):
        head_revision()


def _alembic(*args: str, env: dict[str, str] | None = None) -> str:
    """The alembic command line, run from elsewhere than the repository."""
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), *args],
        capture_output=True, text=True, cwd="/", env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_alembic_command_line_takes_the_url_from_x_argument_or_environment(
    database_url: str,
) -> None:
    _alembic("-x", f"url={database_url}", "upgrade", "head")

    plain_url = database_url.replace("postgresql+psycopg://", "postgresql://")
    out = _alembic("current", env={"SYNC_DATABASE_URL": plain_url})
    assert f"{head_revision()} (head)" in out


def test_alembic_offline_mode_renders_the_sql_without_a_database() -> None:
    sql = _alembic("-x", "url=postgresql://nobody@192.0.2.1/none", "upgrade",
                   "base:0001_mirror", "--sql")

    assert "CREATE TABLE sync_job_control" in sql
    assert "CONSTRAINT uq_sync_job_audit_logs_idempotency_key UNIQUE (idempotency_key)" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001_mirror')" in sql


def test_alembic_without_a_url_says_how_to_give_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SYNC_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "current"],
        capture_output=True, text=True, cwd="/", env=env, timeout=60,
    )
    assert done.returncode != 0
    assert "set SYNC_DATABASE_URL or pass `alembic -x url=" in done.stderr
