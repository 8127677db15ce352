"""A sync task's working session: prerequisites checked, the resource locked, a store.

Prerequisites come first and fail fast with FatalTaskError(PrerequisitesMissing) and a
message saying what to set or run, because no retry supplies a missing database URL
or an unmigrated schema. The lock comes next (see locks.py), then every write goes
through the store under the lease's fencing token.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from sync_runner import contract
from sync_runner.channel import connect
from sync_runner.content.params import SyncParams
from sync_runner.content.store import ContentStore, Fence
from sync_runner.locks import Lease, ResourceLock
from sync_runner.sdk import FatalTaskError, TaskContext
from sync_runner.services import Services

PREREQUISITES_MISSING = "PrerequisitesMissing"
FENCE_TABLE = "sync_fences"


class PrerequisitesMissing(FatalTaskError):  # noqa: N818  # the reason's own name
    def __init__(self, message: str) -> None:
        super().__init__(PREREQUISITES_MISSING, message)


@dataclass(frozen=True)
class SyncSession:
    store: ContentStore
    lease: Lease
    fence: Fence

    def check(self) -> None:
        """Raise LockLostError if the lease was lost; call between units of work."""
        self.lease.check()


def require_database(ctx: TaskContext) -> str:
    if not ctx.database_url:
        raise PrerequisitesMissing(
            f"no database: the runner needs {contract.ENV_DATABASE_URL} (a PostgreSQL URL, "
            "migrated with `alembic upgrade head`)")
    return ctx.database_url


async def require_tables(store: ContentStore, tables: Iterable[str]) -> None:
    missing = await store.missing_tables([*tables, FENCE_TABLE])
    if missing:
        raise PrerequisitesMissing(
            f"database {store.url} lacks table(s) {', '.join(missing)}: migrate it to "
            "revision 0002_content or later (`alembic upgrade head`, or start the operator "
            "with --migrate)")


@contextlib.asynccontextmanager
async def sync_session(ctx: TaskContext, services: Services, *, resource: str,
                       tables: Iterable[str], params: SyncParams) -> AsyncIterator[SyncSession]:
    """Check prerequisites, take the (job type, resource) lock, and yield the session."""
    database_url = require_database(ctx)
    if not services.redis_url:
        raise PrerequisitesMissing(
            f"no Redis for the resource lock: set {contract.ENV_REDIS_URL}")
    store = ContentStore(database_url)
    client = connect(services.redis_url)
    try:
        await require_tables(store, tables)
        lock = ResourceLock(client, ctx.job.job_type, resource, job=ctx.job.name, pod=ctx.pod,
                            settings=params.lock_settings(), between_tries=ctx.safe_point)
        async with lock.held() as lease:
            fence = Fence(lock.key, lease.fence, f"{ctx.job.namespace}/{ctx.job.name} {ctx.pod}")
            yield SyncSession(store, lease, fence)
    finally:
        await store.close()
        await client.aclose()
