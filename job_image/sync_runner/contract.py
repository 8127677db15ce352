"""The wire contract between the operator and the sync runner, imported by both sides.

Everything that crosses Redis or the pod's environment is defined here: key names,
environment variables, exit codes and the JSON messages. Changing a name here changes
it for both sides at once, so the two can never disagree.

Redis layout for one SyncJob (keyed by the SyncJob's uid, so a re-created job of the
same name never sees a predecessor's state):

    syncjob:{uid}:state       hash    runner -> operator: status, progress, heartbeat, ack
    syncjob:{uid}:control     hash    operator -> runner: paused, cancel, generation
    syncjob:{uid}:checkpoint  string  runner's latest checkpoint (JSON), survives pods
    syncjob:{uid}:events      pubsub  runner publishes a RunnerStatus on every change
    syncjob:{uid}:control-ch  pubsub  operator publishes a Control on every change

The hashes are the durable truth (the operator catches up from them after a restart);
pub/sub only lowers latency, and a lost message costs nothing but a poll interval.
"""

from __future__ import annotations

import time
from enum import IntEnum, StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# -- environment of the runner's container -------------------------------------------

ENV_JOB_UID = "SYNC_JOB_UID"
ENV_JOB_NAME = "SYNC_JOB_NAME"
ENV_JOB_NAMESPACE = "SYNC_JOB_NAMESPACE"
ENV_JOB_TYPE = "SYNC_JOB_TYPE"
ENV_JOB_PARAMS = "SYNC_JOB_PARAMS"  # JSON object: spec.params
ENV_REDIS_URL = "SYNC_REDIS_URL"
ENV_DATABASE_URL = "SYNC_DATABASE_URL"
ENV_POD_NAME = "SYNC_POD_NAME"

# -- Redis keys -------------------------------------------------------------------------

KEY_PREFIX = "syncjob"
EVENTS_PATTERN = f"{KEY_PREFIX}:*:events"
STATE_TTL_SECONDS = 7 * 24 * 3600


class Keys:
    """The Redis key names of one SyncJob."""

    def __init__(self, job_uid: str) -> None:
        if not job_uid:
            raise ValueError("a SyncJob uid is required for its Redis keys")
        self.job_uid = job_uid
        base = f"{KEY_PREFIX}:{job_uid}"
        self.state = f"{base}:state"
        self.control = f"{base}:control"
        self.checkpoint = f"{base}:checkpoint"
        self.events = f"{base}:events"
        self.control_channel = f"{base}:control-ch"

    @staticmethod
    def uid_from_channel(channel: str) -> str:
        """The job uid inside an events channel name."""
        prefix, uid, _ = channel.split(":", 2)
        if prefix != KEY_PREFIX:
            raise ValueError(f"not a sync job channel: {channel!r}")
        return uid

    def all(self) -> list[str]:
        return [self.state, self.control, self.checkpoint]


# -- exit codes ---------------------------------------------------------------------------


class ExitCode(IntEnum):
    """Runner exit codes; the Job's podFailurePolicy maps them to Kubernetes actions."""

    SUCCEEDED = 0
    FAILED = 1  # retryable: counts against backoffLimit
    FATAL = 3  # not retryable (bad params, prerequisites missing): FailJob
    STOPPED = 4  # stopped on request (pause/cancel acknowledged): Ignore


# -- messages ---------------------------------------------------------------------------


class RunnerState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"  # stopped at a safe point after a pause request, checkpoint saved
    CANCELLED = "cancelled"  # stopped at a safe point after a cancel request
    INTERRUPTED = "interrupted"  # SIGTERM outside a request: checkpointed, then exited
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# What a report's numbers may be. Counts fit the CRD's int64 integers (the operator
# copies them into status); times are finite Unix seconds a datetime can hold (up to
# 9999-12-31T23:59:59Z). Past either, a report is malformed (a ValidationError, which
# readers ignore) rather than a crash, a refused status write or a heartbeat that never
# goes stale (NaN compares false, infinity is forever fresh) where it is used.
MAX_COUNT = 2**63 - 1
MAX_UNIX_SECONDS = 253_402_300_799.0
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
UnixTime = Annotated[float, Field(ge=0, le=MAX_UNIX_SECONDS, allow_inf_nan=False)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Progress(_Message):
    """Units done out of total (total None when unknown yet), with a human message."""

    done: Count = 0
    total: Count | None = None
    unit: str = "items"
    message: str = ""
    updated_at: UnixTime = Field(default_factory=time.time)

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, int(self.done * 100 / self.total))


class RunnerStatus(_Message):
    """What the runner publishes about itself; the whole value, never a delta."""

    state: RunnerState
    progress: Progress = Field(default_factory=Progress)
    pod: str = ""
    heartbeat_at: UnixTime = Field(default_factory=time.time)
    started_at: UnixTime | None = None
    # The control generation the runner has acted on: the operator waits for
    # acked_generation >= the generation of its pause/cancel request.
    acked_generation: int = 0
    # saved_at of the latest checkpoint actually stored in Redis (None: none yet), so
    # a paused/interrupted status never claims a checkpoint that did not land.
    checkpoint_at: UnixTime | None = None
    warnings: Count = 0
    error: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


class Control(_Message):
    """What the operator asks of the runner. generation only ever grows."""

    paused: bool = False
    cancel: bool = False
    generation: int = 0

    @property
    def stop_requested(self) -> bool:
        return self.paused or self.cancel


class Checkpoint(_Message):
    """A task's resumable position: opaque task data plus the progress at that point."""

    data: dict[str, Any] = Field(default_factory=dict)
    progress: Progress = Field(default_factory=Progress)
    saved_at: UnixTime = Field(default_factory=time.time)
    pod: str = ""


# Hash field holding the JSON message in the state and control hashes.
STATE_FIELD = "status"
CONTROL_FIELD = "control"
