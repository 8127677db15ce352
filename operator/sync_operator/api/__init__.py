"""The sync.jobcontrol.io/v1alpha1 API: SyncJob and SyncSchedule as pydantic models.

The models are the single source of the API's shape: the CRDs under crds/ are generated
from them (sync_operator.api.generate), and the operator parses bodies with them.
"""

from sync_operator.api.common import (
    API_VERSION,
    CATEGORY,
    GROUP,
    SYNCJOB,
    SYNCJOBS,
    SYNCSCHEDULE,
    SYNCSCHEDULES,
    VERSION,
    Condition,
    ConditionStatus,
    ConditionType,
    CustomKind,
    JobType,
    Phase,
    Reason,
)
from sync_operator.api.syncjob import (
    AuditEntry,
    CheckpointSummary,
    MirrorStatus,
    ProgressStatus,
    SyncJob,
    SyncJobSpec,
    SyncJobStatus,
)
from sync_operator.api.syncschedule import (
    ActiveJobRef,
    ConcurrencyPolicy,
    JobTemplate,
    SyncSchedule,
    SyncScheduleSpec,
    SyncScheduleStatus,
)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "SYNCJOB",
    "SYNCJOBS",
    "SYNCSCHEDULE",
    "SYNCSCHEDULES",
    "VERSION",
    "ActiveJobRef",
    "AuditEntry",
    "CheckpointSummary",
    "ConcurrencyPolicy",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "CustomKind",
    "JobTemplate",
    "JobType",
    "MirrorStatus",
    "Phase",
    "ProgressStatus",
    "Reason",
    "SyncJob",
    "SyncJobSpec",
    "SyncJobStatus",
    "SyncSchedule",
    "SyncScheduleSpec",
    "SyncScheduleStatus",
]
