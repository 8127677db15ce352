"""Fixtures for the sync tasks: migrated databases, the local source server, Redis."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sync_operator.mirror.schema import upgrade
from testkit.servers import PostgresServer
from testkit.source_server import SourceServer


@pytest.fixture(scope="session")
def work_root(work_root: Path) -> Path:
    """The session's work_root, traversable by the `postgres` user (as tests/mirror does:
    as root, postgres runs as `postgres` and cannot enter pytest's 0700 directories)."""
    if os.geteuid() == 0:
        for directory in (work_root, *work_root.parents[:2]):
            mode = directory.stat().st_mode
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    return work_root


def _psql(server: PostgresServer, sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user,
                    "-d", "postgres", "-tAc", sql], check=True, capture_output=True)


def _url(server: PostgresServer, name: str) -> str:
    return f"postgresql+psycopg://{server.user}@127.0.0.1:{server.port}/{name}"


@pytest.fixture(scope="session")
def migrated_template(postgres_server: PostgresServer) -> str:
    """A database migrated to head once per session, copied for each test (fast)."""
    name = f"tmpl_{uuid.uuid4().hex[:10]}"
    _psql(postgres_server, f"CREATE DATABASE {name}")
    upgrade(_url(postgres_server, name))
    return name


@pytest.fixture
def content_db(postgres_server: PostgresServer, migrated_template: str) -> str:
    """A fresh database at the schema head (mirror + content tables), for this test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    _psql(postgres_server, f"CREATE DATABASE {name} TEMPLATE {migrated_template}")
    return _url(postgres_server, name)


@pytest.fixture
async def source() -> AsyncIterator[SourceServer]:
    """The local upstream source, fault-free until a test sets faults."""
    async with SourceServer(seed=7) as server:
        yield server


@pytest.fixture
def uid() -> str:
    return str(uuid.uuid4())
