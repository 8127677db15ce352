"""The five default SyncSchedules ship as valid manifests with the original system's timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_operator.api.syncschedule import ConcurrencyPolicy, SyncScheduleSpec
from sync_operator.syncschedule import validate

SCHEDULES = Path(__file__).resolve().parents[2] / "deploy" / "schedules"
# jobType: (schedule, priority, maxConcurrency), as in the original system.
ORIGINAL_DEFAULTS = {
    "quran": ("0 3 * * *", 1, 1),
    "prayer": ("0 */6 * * *", 2, 2),
    "hadith": ("0 2 * * 0", 3, 1),
    "audio": ("0 4 * * 0", 4, 1),
    "finance": ("0 4 * * *", 2, 1),
}


def manifests() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted(SCHEDULES.glob("*.yaml"))]


def test_there_is_one_schedule_per_job_type_with_the_original_timing() -> None:
    found = {}
    for doc in manifests():
        spec = SyncScheduleSpec.model_validate(doc["spec"])
        found[spec.job_type.value] = (spec.schedule, spec.priority, spec.max_concurrency)
    assert found == ORIGINAL_DEFAULTS


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: d["metadata"]["name"])
def test_each_default_schedule_is_a_valid_forbid_schedule_in_utc(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "sync.jobcontrol.io/v1alpha1"
    assert doc["kind"] == "SyncSchedule"
    assert doc["metadata"]["name"].startswith(doc["spec"]["jobType"] + "-")
    spec = SyncScheduleSpec.model_validate(doc["spec"])
    validate(spec.schedule, spec.time_zone)
    assert spec.time_zone == "UTC"
    assert spec.concurrency_policy == ConcurrencyPolicy.FORBID
    assert spec.timeout_minutes is not None
    assert spec.starting_deadline_seconds is not None
