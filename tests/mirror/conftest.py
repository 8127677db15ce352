"""Fixtures for the mirror tests: migrated databases and a store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mirror_helpers import create_database

from sync_operator.mirror import MirrorStore, upgrade
from testkit.servers import PostgresServer


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
