"""Fixtures for the mirror tests: migrated databases and a store."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mirror_helpers import create_database
from sync_operator.mirror import MirrorStore, upgrade
from testkit.servers import PostgresServer


@pytest.fixture(scope="session")
def work_root(work_root: Path) -> Path:
    """The session's work_root, traversable by the `postgres` user.

    Workaround: as root, PostgresServer runs postgres as `postgres`, but pytest
    creates its temporary directories 0700, so initdb cannot reach its data
    directory. Remove once testkit.servers grants that traversal itself.
    """
    if os.geteuid() == 0:
        for directory in (work_root, *work_root.parents[:2]):
            mode = directory.stat().st_mode
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    return work_root


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """database_url, upgraded to this operator's head."""
    upgrade(database_url)
    return database_url


@pytest.fixture
def second_migrated_url(postgres_server: PostgresServer) -> str:
    """Another migrated database, for comparing two runs."""
    url = create_database(postgres_server)
    upgrade(url)
    return url


@pytest.fixture
async def store(migrated_url: str) -> AsyncIterator[MirrorStore]:
    mirror = MirrorStore(migrated_url)
    yield mirror
    await mirror.close()
