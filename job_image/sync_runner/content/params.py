"""The params every sync task understands (spec.params), next to its own.

Unknown keys are ignored, so one params object can carry another task's keys (and
`task`, the registry's override). Bad values fail the job at once (InvalidParams):
retrying the same params cannot succeed.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_runner.locks import LockPolicy, LockSettings
from sync_runner.retry import RetryPolicy
from sync_runner.sdk import FatalTaskError, TaskContext

P = TypeVar("P", bound=BaseModel)


class SyncParams(BaseModel):
    """Failure threshold and lock behaviour, shared by all content tasks."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # More than this fraction of items skipped (bad records, unreachable pages, failed
    # cities) fails the job; up to it, the job succeeds with warnings.
    max_failure_ratio: float = Field(default=0.1, alias="maxFailureRatio", ge=0, le=1)
    lock_policy: LockPolicy = Field(default="wait", alias="lockPolicy")
    lock_wait_seconds: float = Field(default=600.0, alias="lockWaitSeconds", ge=0)
    lock_ttl_seconds: float = Field(default=30.0, alias="lockTtlSeconds", ge=0.3, le=3600)

    def lock_settings(self) -> LockSettings:
        return LockSettings(policy=self.lock_policy, wait_seconds=self.lock_wait_seconds,
                            ttl_seconds=self.lock_ttl_seconds)


class SourceParams(SyncParams):
    """Where and how to pull from the upstream source."""

    source_url: str | None = Field(default=None, alias="sourceUrl",
                                   pattern=r"^https?://\S+$")
    page_size: int = Field(default=100, alias="pageSize", ge=1, le=1000)
    request_timeout_seconds: float = Field(default=30.0, alias="requestTimeoutSeconds", gt=0)
    http_attempts: int = Field(default=5, alias="httpAttempts", ge=1, le=20)
    http_backoff_seconds: float = Field(default=0.5, alias="httpBackoffSeconds", ge=0)
    http_backoff_max_seconds: float = Field(default=30.0, alias="httpBackoffMaxSeconds", ge=0)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.http_attempts, base_seconds=self.http_backoff_seconds,
                           max_seconds=self.http_backoff_max_seconds)


def parse_params(model: type[P], ctx: TaskContext) -> P:
    """The job's params as `model`, or FatalTaskError(InvalidParams) naming each problem."""
    raw: dict[str, Any] = dict(ctx.job.params)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors())
        raise FatalTaskError("InvalidParams", problems) from exc
