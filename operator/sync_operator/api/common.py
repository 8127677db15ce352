"""Vocabulary shared by both kinds: group/version, enums, the Condition shape, reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sync_operator.kube.resources import Resource

GROUP = "sync.jobcontrol.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "sync"
# Held on both kinds while the operator still has to record a deletion.
FINALIZER = f"{GROUP}/finalizer"

# metav1.Condition's reason syntax (CamelCase words, no spaces); empty is allowed here.
REASON_PATTERN = r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$"

# Schema extensions of a conditions list: one entry per type (server-side apply merges by it).
CONDITIONS_LIST_MAP: dict[str, Any] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


@dataclass(frozen=True)
class CustomKind:
    """One custom resource kind: its names for the CRD, the kube client and kopf."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def resource(self) -> Resource:
        """For sync_operator.kube.KubeClient calls."""
        return Resource(GROUP, VERSION, self.plural)

    @property
    def kopf(self) -> tuple[str, str, str]:
        """For kopf decorators: ``@kopf.on.create(*SYNCJOB.kopf)``."""
        return (GROUP, VERSION, self.plural)


SYNCJOB = CustomKind("SyncJob", "syncjobs", "syncjob", ("sj",))
SYNCSCHEDULE = CustomKind("SyncSchedule", "syncschedules", "syncschedule", ("ssched",))
SYNCJOBS = SYNCJOB.resource
SYNCSCHEDULES = SYNCSCHEDULE.resource


class ApiModel(BaseModel):
    """Base of every API object part: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore",
    )

    def to_body(self) -> dict[str, Any]:
        """The JSON the API server expects: camelCase keys, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, *, reason: str | None = None,
        field_path: str | None = None) -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry, so rules read the same everywhere."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if reason:
        out["reason"] = reason
    if field_path:
        out["fieldPath"] = field_path
    return out


def immutable_if_set(field: str, path: str) -> dict[str, Any]:
    """A spec-level rule: an optional field can be neither added, removed nor changed."""
    return cel(
        f"has(self.{field}) == has(oldSelf.{field})"
        f" && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"{path} is immutable",
        reason="FieldValueForbidden", field_path=f".{field}",
    )


class JobType(StrEnum):
    """The content a sync job brings in; each type has its own runner task and limit."""

    QURAN = "quran"
    PRAYER = "prayer"
    HADITH = "hadith"
    AUDIO = "audio"
    FINANCE = "finance"


class Phase(StrEnum):
    """Where a SyncJob is in its life; one word for humans and printer columns."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Phase:
        """The phase of a SyncJob body; Pending when unset or unknown."""
        try:
            return cls((body.get("status") or {}).get("phase") or cls.PENDING)
        except ValueError:
            return cls.PENDING

    @property
    def is_terminal(self) -> bool:
        """Nothing more will happen to the job (its batch Job may still be cleaned up)."""
        return self in _TERMINAL

    @property
    def holds_pod(self) -> bool:
        """A pod may exist, so the job counts against concurrency limits."""
        return self in _HOLDS_POD

    @property
    def is_waiting(self) -> bool:
        """Not started yet: a candidate for admission."""
        return self in _WAITING


_TERMINAL = frozenset({Phase.CANCELLED, Phase.SUCCEEDED, Phase.FAILED})
_HOLDS_POD = frozenset({Phase.RUNNING, Phase.PAUSING, Phase.CANCELLING})
_WAITING = frozenset({Phase.PENDING, Phase.QUEUED})


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """Condition types (status.conditions[].type) of SyncJob and SyncSchedule."""

    ADMITTED = "Admitted"  # the queue let the job start (capacity taken)
    RUNNING = "Running"  # a pod is working on it
    PROGRESSING = "Progressing"  # progress arrives (heartbeat fresh)
    PAUSED = "Paused"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    READY = "Ready"  # SyncSchedule: the schedule is valid and ticking


class Reason(StrEnum):
    """Condition reasons: CamelCase, stable, meant for automation (metav1 style)."""

    CREATED = "Created"
    QUEUED = "Queued"
    HELD_WHILE_PAUSED = "HeldWhilePaused"
    ADMITTED = "Admitted"
    JOB_CREATED = "JobCreated"
    STARTED = "Started"
    PROGRESS_REPORTED = "ProgressReported"
    HEARTBEAT_STALE = "HeartbeatStale"
    PAUSE_REQUESTED = "PauseRequested"
    PAUSED_AT_CHECKPOINT = "PausedAtCheckpoint"
    RESUMED = "Resumed"
    CANCEL_REQUESTED = "CancelRequested"
    CANCELLED_BY_USER = "CancelledByUser"
    FORCED_CANCEL = "ForcedCancel"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    FATAL_ERROR = "FatalError"
    PREREQUISITES_MISSING = "PrerequisitesMissing"
    JOB_FAILED = "JobFailed"
    JOB_DELETED = "JobDeleted"
    INTERRUPTED = "Interrupted"
    DUPLICATE = "Duplicate"
    COMPLETED = "Completed"
    STATUS_REJECTED = "StatusRejected"  # the API server refused a status write (422)
    # SyncSchedule
    SCHEDULED = "Scheduled"
    SUSPENDED = "Suspended"
    INVALID_SCHEDULE = "InvalidSchedule"
    INVALID_TIME_ZONE = "InvalidTimeZone"
    MISSED_SCHEDULE = "MissedSchedule"
    CONCURRENCY_FORBIDDEN = "ConcurrencyForbidden"


class Condition(ApiModel):
    """A metav1.Condition: one observed aspect of the object, with when it last flipped."""

    type: str = Field(min_length=1, max_length=316, description="Condition type, e.g. Running.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="", max_length=1024, pattern=REASON_PATTERN,
        description="CamelCase reason for the last transition, for automation.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed (not when it was last checked).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from.",
    )
