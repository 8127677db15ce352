"""status.conditions helpers: metav1 transition semantics, no mutation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from sync_operator.api import ConditionType, Reason
from sync_operator.kube.conditions import get_condition, is_true, remove_condition, set_condition
from sync_operator.kube.timestamps import format_time

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _running(now: datetime = T0) -> list[dict[str, Any]]:
    return set_condition([], ConditionType.RUNNING, True, Reason.STARTED, "pod a", 1, now)


def test_new_condition_is_added_with_the_current_time() -> None:
    assert _running() == [{"type": "Running", "status": "True", "reason": "Started",
                           "message": "pod a", "lastTransitionTime": "2026-01-01T12:00:00Z",
                           "observedGeneration": 1}]


def test_lasttransitiontime_kept_when_status_unchanged() -> None:
    again = set_condition(_running(), "Running", "True", "ProgressReported", "50%", 2, T1)
    assert again[0]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_reason_message_and_generation_refresh_without_a_transition() -> None:
    [cond] = set_condition(_running(), "Running", True, "ProgressReported", "50%", 2, T1)
    assert (cond["reason"], cond["message"], cond["observedGeneration"]) == (
        "ProgressReported", "50%", 2)


def test_lasttransitiontime_moves_when_status_flips() -> None:
    [cond] = set_condition(_running(), "Running", False, "PausedAtCheckpoint", "", 2, T1)
    assert cond["status"] == "False"
    assert cond["lastTransitionTime"] == "2026-01-01T12:05:00Z"


def test_input_list_is_not_mutated() -> None:
    before = _running()
    snapshot = copy.deepcopy(before)
    set_condition(before, "Running", False, "Interrupted", "", 2, T1)
    set_condition(before, "Paused", True, "PauseRequested", "", 2, T1)
    assert before == snapshot


def test_setting_the_same_condition_again_changes_nothing() -> None:
    before = _running()
    assert set_condition(before, "Running", True, "Started", "pod a", 1, T1) == before


def test_other_conditions_keep_their_place() -> None:
    conds = set_condition(_running(), "Admitted", True, "Admitted", "", 1, T0)
    conds = set_condition(conds, "Running", False, "Interrupted", "", 1, T1)
    assert [c["type"] for c in conds] == ["Running", "Admitted"]


def test_observed_generation_is_left_out_when_unknown() -> None:
    [cond] = set_condition(None, "Complete", "Unknown", "Queued", now=T0)
    assert "observedGeneration" not in cond
    assert cond["message"] == ""


def test_status_must_be_true_false_or_unknown() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], "Running", "yes", "Started", now=T0)


def test_get_condition_and_is_true() -> None:
    conds = set_condition(_running(), "Paused", False, "Resumed", "", 1, T0)
    assert get_condition(conds, ConditionType.PAUSED) == conds[1]
    assert get_condition(conds, "Complete") is None
    assert is_true(conds, ConditionType.RUNNING)
    assert not is_true(conds, "Paused")
    assert not is_true(None, "Running")


def test_remove_condition_drops_only_that_type() -> None:
    conds = set_condition(_running(), "Paused", False, "Resumed", "", 1, T0)
    assert [c["type"] for c in remove_condition(conds, "Running")] == ["Paused"]


def test_enum_arguments_become_plain_strings_that_yaml_can_dump() -> None:
    conds = _running()
    assert type(conds[0]["type"]) is str
    assert type(conds[0]["reason"]) is str
    yaml.safe_dump(conds)


def test_times_are_rfc3339_utc_with_whole_seconds() -> None:
    assert format_time(datetime(2026, 1, 1, 12, 0, 0, 999999)) == "2026-01-01T12:00:00Z"
    plus_three = datetime(2026, 1, 1, 15, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Riyadh"))
    assert format_time(plus_three) == "2026-01-01T15:00:00Z"
