"""The stamp format `actions.sync.jobcontrol.io/<n>: action|details|user`: what the
reader accepts, what it ignores without wedging the object, and that the webhook's
writer and the policies in policies/ (and the chart's copy) agree on it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_operator.api.generate import POLICIES, policy_files
from sync_operator.api.generate import main as generate_main
from sync_operator.audit.actions import (
    MAX_UNSEEN,
    STAMP_PREFIX,
    decode_details,
    encode_details,
    escape,
    parse_stamp,
    recorded_actions,
    schedule_actions,
    stamp_patch,
    stamp_value,
    syncjob_actions,
    unseen_actions,
)
from sync_operator.audit.recording import audit_unattributed, move_actions

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def body(stamps: dict[str, Any], seen: int = 0, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j", "annotations": dict(stamps)},
            "spec": {"jobType": "quran", **spec}, "status": {"actionsSeen": seen}}


def key(n: int | str) -> str:
    return f"{STAMP_PREFIX}{n}"


def test_a_stamp_reads_as_number_action_user_and_typed_details() -> None:
    [action] = recorded_actions(body({key(4): "priority_change|from=5,to=1|alice"}))
    assert action == {"n": 4, "action": "priority_change", "by": "alice",
                      "details": {"from": 5, "to": 1}}
    update = parse_stamp(key(9), "schedule_update|fields=jobTemplate+schedule,"
                                 "from.schedule=0 3 * * *,to.schedule=30 2 * * *|bob")
    assert update is not None
    assert update["details"] == {"fields": ["jobTemplate", "schedule"],
                                 "from": {"schedule": "0 3 * * *"},
                                 "to": {"schedule": "30 2 * * *"}}
    toggle = parse_stamp(key(10), "schedule_toggle|suspend=true|bob")
    assert toggle is not None
    assert toggle["details"] == {"suspend": True}


@pytest.mark.parametrize("user", [
    "alice", "system:serviceaccount:sync-system:sync-operator", "a|b", "x,y=z", "100%",
    "https://issuer.example#sub|%7C"])
def test_any_user_name_survives_the_round_trip(user: str) -> None:
    value = stamp_value({"action": "pause", "details": {}}, user)
    assert value.count("|") == 2
    parsed = parse_stamp(key(1), value)
    assert parsed is not None
    assert parsed["by"] == user


def test_details_round_trip_through_the_escapes() -> None:
    details = {"fields": ["schedule", "timeZone"], "from": {"schedule": "a,b=c|d%"},
               "to": {"schedule": "@daily", "timeZone": "Europe/Berlin"}}
    text = encode_details(details)
    assert text == ("fields=schedule+timeZone,from.schedule=a%2Cb%3Dc%7Cd%25,"
                    "to.schedule=@daily,to.timeZone=Europe/Berlin")
    assert decode_details(text) == details
    assert encode_details({"jobType": "quran", "priority": 5, "none": None}) == \
        "jobType=quran,priority=5"
    assert escape("%|,=") == "%25%7C%2C%3D"


@pytest.mark.parametrize(("bad_key", "bad_value"), [
    (key(0), "pause||alice"),            # numbers start at 1
    (key("01"), "pause||alice"),         # one spelling per number
    (key("x"), "pause||alice"),
    (key(1234567890), "pause||alice"),   # longer than the policy accepts
    ("actions.sync.jobcontrol.io-1", "pause||alice"),
    (key(2), "pause|alice"),             # two fields
    (key(2), "pause|||alice"),           # four fields
    (key(2), "|x|alice"),                # no action
    (key(2), "Pause||alice"),            # not an action name
    (key(2), "pause||"),                 # no user
    (key(2), None),
])
def test_malformed_stamps_are_ignored(bad_key: str, bad_value: Any) -> None:
    assert recorded_actions(body({bad_key: bad_value})) == []


def test_a_malformed_stamp_does_not_wedge_the_ones_after_it() -> None:
    """The reconciler moves the good stamp after the bad one; actionsSeen passes the bad
    one, so the next stamping drops it and nothing waits on it forever."""
    stored = body({key(3): "pause||alice", key(4): "garbage", key(5): "resume||bob",
                   key(6): "cancel|not-a-pair,=x|carol"})
    status = move_actions(stored, {"actionsSeen": 2}, "Running", NOW)
    moved = [(e["action"], e["performedBy"], e["details"]) for e in status["mirror"]["pending"]]
    assert moved == [("pause", "alice", {}), ("resume", "bob", {}), ("cancel", "carol", {})]
    assert status["actionsSeen"] == 6
    after = body(stored["metadata"]["annotations"], seen=6)
    assert unseen_actions(after) == []
    patch = stamp_patch(after, after, [{"action": "pause"}], "dave")
    assert patch == {key(3): None, key(4): None, key(5): None, key(6): None,
                     key(7): "pause||dave"}


def test_moved_actions_are_dated_when_the_reconciler_first_sees_them() -> None:
    """To the second, like the API server's own timestamps (deletionTimestamp)."""
    status = move_actions(body({key(1): "pause||alice"}), {}, "Running",
                          NOW.replace(microsecond=654321))
    assert status["mirror"]["pending"][0]["at"] == "2026-11-25T12:00:00.000000Z"


def test_unseen_stamps_are_capped() -> None:
    stamps = {key(n): "priority_change|from=5,to=5|alice" for n in range(1, MAX_UNSEEN + 11)}
    stored = body(stamps)
    patch = stamp_patch(stored, stored, [{"action": "pause"}], "bob")
    dropped = sorted(int(k.rsplit("/", 1)[1]) for k, v in patch.items() if v is None)
    assert dropped == list(range(1, 11))
    assert patch[key(MAX_UNSEEN + 11)] == "pause||bob"


def test_a_change_whose_stamp_was_dropped_is_audited_as_unknown() -> None:
    first = audit_unattributed(body({}, priority=5), {}, "Running", NOW)
    later = {**body({}, priority=2), "status": first}
    [entry] = audit_unattributed(later, first, "Running", NOW)["mirror"]["pending"]
    assert (entry["action"], entry["performedBy"]) == ("priority_change", "unknown")
    assert entry["details"]["note"] == "not attributed: no admission stamp"


def test_the_webhook_writes_what_the_policy_writes() -> None:
    """The same strings tests/operator/test_admission_policies.py reads back from the
    API server's MutatingAdmissionPolicy."""
    old = {"spec": {"jobType": "quran", "priority": 5, "paused": False}}
    new = {"spec": {"jobType": "quran", "priority": 1, "paused": True, "cancel": True}}
    assert [stamp_value(a, "alice") for a in syncjob_actions("UPDATE", old, new)] == [
        "pause||alice", "cancel||alice", "priority_change|from=5,to=1|alice"]
    assert [stamp_value(a, "bob") for a in syncjob_actions("CREATE", None, old)] == [
        "create|jobType=quran,priority=5|bob"]
    before = {"spec": {"schedule": "0 3 * * *", "suspend": False, "jobTemplate": {}}}
    after = {"spec": {"schedule": "30 2 * * *", "suspend": True,
                      "jobTemplate": {"params": {"x": 1}}, "timeoutMinutes": 9}}
    assert [stamp_value(a, "bob") for a in schedule_actions("UPDATE", before, after)] == [
        "schedule_toggle|suspend=true|bob",
        "schedule_update|fields=jobTemplate+schedule+timeoutMinutes,from.schedule=0 3 * * *,"
        "to.schedule=30 2 * * *,to.timeoutMinutes=9|bob"]


def test_the_chart_ships_the_policies_byte_for_byte(tmp_path: Path) -> None:
    """policies/ is the one source; the generator's copy in the chart cannot drift."""
    chart = POLICIES.parent / "charts" / "sync-operator" / "policies"
    assert policy_files(chart) == policy_files(), (
        "charts/sync-operator/policies/ differs from policies/: run "
        "`python -m sync_operator.api.generate`")
    assert generate_main(["--check", "--out", str(tmp_path / "crds"),
                          "--policies-out", str(tmp_path / "p")]) == 1
    assert generate_main(["--out", str(tmp_path / "crds"),
                          "--policies-out", str(tmp_path / "p")]) == 0
    assert policy_files(tmp_path / "p") == policy_files()


def test_the_policies_use_the_readers_prefix_and_cap() -> None:
    docs = {d["kind"]: d for d in (yaml.safe_load(t) for t in policy_files().values())}
    assert set(docs) == {"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
                         "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for kind in ("MutatingAdmissionPolicy", "ValidatingAdmissionPolicy"):
        variables = {v["name"]: v["expression"] for v in docs[kind]["spec"]["variables"]}
        assert variables["prefix"] == f"'{STAMP_PREFIX}'"
        cap = "kept" if kind.startswith("Mutating") else "lost"
        assert f"variables.top - {MAX_UNSEEN}" in variables[cap]
        assert docs[kind]["spec"]["failurePolicy"] == "Fail"
    assert docs["ValidatingAdmissionPolicyBinding"]["spec"]["validationActions"] == ["Deny"]
