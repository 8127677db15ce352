"""Runner test fixtures: a private Redis the outage tests may stop and start."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.servers import RedisServer


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, so stopping it disturbs no other test."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def uid() -> str:
    """A fresh SyncJob uid, so each test has its own Redis keys."""
    return str(uuid.uuid4())
