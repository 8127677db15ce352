"""Property-based fuzzing of what comes from outside: SyncJob and SyncSchedule specs, and
the runner's messages in Redis.

Specs: every invalid one is refused with an error that names the field, every valid one
round-trips through the wire form. Runner messages: any bytes or field values parse to a
message or raise the one documented error (pydantic's ValidationError, which the
operator ignores), and whatever parses becomes a status the schema accepts and JSON can
carry. The strategies are shared with tests/operator/test_fuzz_cluster.py, which sends
the same kind of bodies to the real API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
import zoneinfo
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sync_operator.api.bounds import (
    PROGRESS_MESSAGE_MAX,
    PROGRESS_UNIT_MAX,
    RESULT_MAX_BYTES,
    bounded_result,
    clip,
    clip_middle,
    condition_reason,
    is_reason,
)
from sync_operator.api.common import JobType, Phase
from sync_operator.api.syncjob import (
    MAX_TIMEOUT_MINUTES,
    ProgressStatus,
    SyncJobSpec,
    SyncJobStatus,
)
from sync_operator.api.syncschedule import ConcurrencyPolicy, SyncScheduleSpec
from sync_operator.kube.timestamps import parse_time
from sync_operator.syncjob.progress_relay import estimate_eta
from sync_operator.syncjob.statemachine import (
    JobObservation,
    Observation,
    Timeouts,
    decide,
    progress_status,
)
from sync_operator.syncjob.validation import syncjob_update_error
from sync_operator.syncschedule.cron import next_tick, validate
from sync_operator.syncschedule.validation import schedule_error
from sync_runner.contract import (
    MAX_COUNT,
    MAX_UNIX_SECONDS,
    STATE_FIELD,
    Checkpoint,
    Control,
    Keys,
    RunnerState,
    RunnerStatus,
)
from testkit.waiting import eventually

# -- settings: one profile per kind of run, loaded by name (deterministic in CI) -----------

settings.register_profile(
    "fuzz-models", max_examples=150, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODELS = settings.get_profile("fuzz-models")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# -- JSON values, valid and junk -----------------------------------------------------------

# Text of every plane (no lone surrogates: JSON cannot carry them to the API server).
any_text = st.text(max_size=40)
huge_text = st.text(min_size=300, max_size=600).map(lambda s: s * 20)  # 6k-12k chars
json_scalars = (st.none() | st.booleans() | st.integers(INT64_MIN, INT64_MAX)
                | st.floats(allow_nan=False, allow_infinity=False) | any_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=25)
params = st.dictionaries(any_text, json_values, max_size=6)
# Anything, including what strict JSON cannot hold (NaN, infinities, huge integers).
junk_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | any_text
                | st.integers(min_value=2**62, max_value=10**400))
junk = st.recursive(
    junk_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8)

# Values that lax pydantic still coerces (a "5" is an int, a "yes" a bool): the invalid
# strategies avoid them, as the API server would refuse them anyway.
not_int = (st.text(min_size=1, max_size=20).filter(lambda s: not _coerces_to_int(s))
           | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f))
           | st.lists(st.integers(), min_size=1, max_size=3)
           | st.dictionaries(any_text, st.integers(), min_size=1, max_size=2))
_BOOL_WORDS = {"0", "1", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n"}
not_bool = (st.text(min_size=1, max_size=20).filter(lambda s: s.strip().lower()
                                                    not in _BOOL_WORDS)
            | st.integers().filter(lambda i: i not in (0, 1))
            | st.lists(st.booleans(), min_size=1, max_size=3))
not_str = (st.integers() | st.floats(allow_nan=False) | st.booleans()
           | st.lists(any_text, min_size=1, max_size=3)
           | st.dictionaries(any_text, any_text, min_size=1, max_size=2))
not_object = (any_text | st.integers() | st.booleans()
              | st.lists(json_scalars, min_size=1, max_size=3))


def _coerces_to_int(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- SyncJob specs -------------------------------------------------------------------------

job_types = st.sampled_from([t.value for t in JobType])
dns_keys = st.text(min_size=1, max_size=253)


@st.composite
def valid_syncjob_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the schema accepts: every optional field may appear, at its limits too."""
    spec: dict[str, Any] = {"jobType": draw(job_types)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "priority": st.integers(1, 10),
        "paused": st.booleans(),
        "cancel": st.booleans(),
        "params": params,
        "dedupKey": dns_keys,
        "timeoutMinutes": st.integers(1, MAX_TIMEOUT_MINUTES),
        "retryAttempts": st.integers(0, 10),
        "scheduleRef": dns_keys,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            spec[name] = draw(strategy)
    return spec


too_long_key = st.text(min_size=254, max_size=300) | huge_text
# field -> values the schema refuses for it.
SYNCJOB_INVALID: dict[str, st.SearchStrategy[Any]] = {
    "jobType": (any_text.filter(lambda s: s not in set(JobType)) | not_str | st.none()),
    "priority": (st.integers(max_value=0) | st.integers(min_value=11) | not_int),
    "paused": not_bool,
    "cancel": not_bool,
    "params": not_object,
    "dedupKey": st.just("") | too_long_key | not_str,
    "timeoutMinutes": (st.integers(max_value=0) | st.integers(min_value=MAX_TIMEOUT_MINUTES + 1)
                       | not_int),
    "retryAttempts": st.integers(max_value=-1) | st.integers(min_value=11) | not_int,
    "scheduleRef": st.just("") | too_long_key | not_str,
}


@st.composite
def invalid_syncjob_specs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid spec with one field made invalid; returns it and that field's name."""
    spec = draw(valid_syncjob_specs())
    field = draw(st.sampled_from(sorted(SYNCJOB_INVALID)))
    spec[field] = draw(SYNCJOB_INVALID[field])
    return spec, field


# -- SyncSchedule specs --------------------------------------------------------------------

ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
_FIELD_RANGES = ((0, 59), (0, 23), (1, 28), (1, 12), (0, 6))
_DESCRIPTORS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                "@hourly"]


@st.composite
def cron_field(draw: st.DrawFn, index: int) -> str:
    """One field of robfig's grammar: *, a value, a range, a step or a list of those."""
    low, high = _FIELD_RANGES[index]
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["star", "value", "range", "step"]))
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        parts.append({"star": "*", "value": str(a), "range": f"{a}-{b}",
                      "step": f"{draw(st.sampled_from(['*', f'{a}-{b}']))}/"
                              f"{draw(st.integers(1, high))}"}[kind])
    return ",".join(parts)


cron_expressions = (st.sampled_from(_DESCRIPTORS)
                    | st.tuples(*(cron_field(i) for i in range(5))).map(" ".join))


@st.composite
def valid_schedule_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"jobType": draw(job_types), "schedule": draw(cron_expressions)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "timeZone": st.sampled_from(ZONES),
        "suspend": st.booleans(),
        "priority": st.integers(1, 10),
        "maxConcurrency": st.integers(1, 100),
        "timeoutMinutes": st.integers(1, MAX_TIMEOUT_MINUTES),
        "retryAttempts": st.integers(0, 10),
        "concurrencyPolicy": st.sampled_from([p.value for p in ConcurrencyPolicy]),
        "startingDeadlineSeconds": st.integers(0, INT64_MAX),
        "successfulJobsHistoryLimit": st.integers(0, 100),
        "failedJobsHistoryLimit": st.integers(0, 100),
        "jobTemplate": st.fixed_dictionaries({}, optional={"params": params,
                                                           "dedupKey": dns_keys}),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            spec[name] = draw(strategy)
    return spec


# Schedules the schema's pattern refuses (not five fields, not a known @-macro, too long,
# TZ= inside); what only the cron parser refuses is in BAD_CRON below.
schema_bad_schedules = (
    st.just("")
    | st.lists(st.sampled_from(["*", "0", "5", "1-3"]), min_size=1, max_size=4).map(" ".join)
    | st.lists(st.sampled_from(["*", "0", "5"]), min_size=6, max_size=8).map(" ".join)
    | st.sampled_from(["@every 5m", "@reboot", "@Yearly x", "TZ=UTC 0 3 * * *"])
    | st.text(st.characters(whitelist_categories=["Ll"]), min_size=129, max_size=200)
    .map(lambda s: f"{s} * * * *")
    | not_str)
SCHEDULE_INVALID: dict[str, st.SearchStrategy[Any]] = {
    "jobType": SYNCJOB_INVALID["jobType"],
    "schedule": schema_bad_schedules,
    "timeZone": st.just("") | st.text(min_size=65, max_size=100) | not_str,
    "suspend": not_bool,
    "priority": SYNCJOB_INVALID["priority"],
    "maxConcurrency": st.integers(max_value=0) | st.integers(min_value=101) | not_int,
    "concurrencyPolicy": (any_text.filter(lambda s: s not in set(ConcurrencyPolicy))
                          | not_str),
    "startingDeadlineSeconds": st.integers(max_value=-1) | not_int,
    "successfulJobsHistoryLimit": st.integers(max_value=-1) | st.integers(min_value=101),
    "failedJobsHistoryLimit": st.integers(max_value=-1) | st.integers(min_value=101),
    "jobTemplate": not_object,
}


@st.composite
def invalid_schedule_specs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    spec = draw(valid_schedule_specs())
    field = draw(st.sampled_from(sorted(SCHEDULE_INVALID)))
    spec[field] = draw(SCHEDULE_INVALID[field])
    return spec, field


# Cron expressions with five fields that the parser refuses, in every field position:
# atoms no field accepts, and a value just past the field's range.
BAD_CRON_ATOMS = ["5-3", "*/0", "L", "W", "1#2", "H", "?/x", "jan-", "-1", "1,,2", "abc",
                  "\u0663", "\uff11", "2/", "/2", "99999999999999999999", "1-2-3", "*-5"]
_FIELD_MAX = (59, 23, 31, 12, 6)


@st.composite
def bad_cron(draw: st.DrawFn) -> str:
    fields = ["0", "0", "1", "1", "*"]
    index = draw(st.integers(0, 4))
    atom = draw(st.sampled_from([*BAD_CRON_ATOMS, str(_FIELD_MAX[index] + 1)])
                | st.text(min_size=1, max_size=8).filter(
                    lambda s: not s.isascii() and s.split() == [s]))
    fields[index] = atom
    return " ".join(fields)


bad_zones = (st.sampled_from(["Mars/Olympus", "Local", "../../etc/passwd", "UTC\n", "utc ",
                              "/etc/localtime", "Europe/", "\x00", "Europe/Berlin/"])
             | st.text(min_size=1, max_size=64).filter(lambda z: z not in ZONES))


# -- runner messages -----------------------------------------------------------------------


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a well-formed value, sometimes junk of any type."""
    return st.one_of(good, good, junk)


# Times around every edge a datetime or a comparison has (NaN, infinities, year 10000).
edge_times = st.sampled_from([math.nan, math.inf, -math.inf, -1e12, -1.0, 1e300,
                              MAX_UNIX_SECONDS, MAX_UNIX_SECONDS + 1, 10**20])
timestamps = st.floats(0, 4e9) | edge_times | st.floats() \
    | st.integers(min_value=-(10**20), max_value=10**20)
counts = st.integers(0, 10**6) | st.integers(MAX_COUNT - 5, MAX_COUNT + 5) | st.integers()
def _progress_dicts(field: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "done": field(counts), "total": field(counts | st.none()),
        "unit": field(any_text | huge_text), "message": field(any_text | huge_text),
        "updated_at": field(timestamps)})


def _runner_dicts(field: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"state": field(st.sampled_from([s.value for s in RunnerState]))},
        optional={
            "progress": field(_progress_dicts(field)), "pod": field(any_text),
            "heartbeat_at": field(timestamps), "started_at": field(timestamps | st.none()),
            "acked_generation": field(counts), "checkpoint_at": field(timestamps | st.none()),
            "warnings": field(counts), "error": field(any_text | huge_text | st.none()),
            "summary": field(st.dictionaries(any_text, junk, max_size=4)),
        })


def _checkpoint_dicts(field: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "data": field(st.dictionaries(any_text, junk, max_size=3)),
        "progress": field(_progress_dicts(field)), "saved_at": field(timestamps),
        "pod": field(any_text)})


def _typed(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return good


# Well-typed reports with extreme values (most of them parse), and reports with junk of
# any type in any field (most of them do not).
runner_dicts = _runner_dicts(_typed) | _runner_dicts(maybe)
checkpoint_dicts = _checkpoint_dicts(_typed) | _checkpoint_dicts(maybe)


def wire(value: Any) -> str:
    """As the hash would hold it: JSON, with NaN and infinities as bare words."""
    return json.dumps(value)


raw_payloads = (st.binary(max_size=200) | any_text
                | runner_dicts.map(wire).map(str.encode)
                | runner_dicts.map(wire).map(lambda s: s[: len(s) // 2]))


def strict_json(value: Any) -> bool:
    """Whether the API server can decode `value`: no NaN or infinity, ints within int64."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False

    def ints_fit(v: Any) -> bool:
        if isinstance(v, bool):
            return True
        if isinstance(v, int):
            return INT64_MIN <= v <= INT64_MAX
        if isinstance(v, dict):
            return all(ints_fit(x) for x in v.values())
        if isinstance(v, list):
            return all(ints_fit(x) for x in v)
        return True

    return ints_fit(value)


def error_locations(err: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in err.errors() if e["loc"]}


# == properties: SyncJob =================================================================


@MODELS
@given(valid_syncjob_specs())
def test_a_valid_syncjob_spec_is_accepted_and_round_trips(spec: dict[str, Any]) -> None:
    model = SyncJobSpec.model_validate(spec)
    body = model.to_body()
    assert SyncJobSpec.model_validate(body) == model
    for name, value in spec.items():  # what was given is what goes out on the wire
        assert body[name] == value
    assert strict_json(body)


@MODELS
@given(invalid_syncjob_specs())
def test_an_invalid_syncjob_spec_is_refused_naming_the_field(
        case: tuple[dict[str, Any], str]) -> None:
    spec, field = case
    with pytest.raises(ValidationError) as refused:
        SyncJobSpec.model_validate(spec)
    assert error_locations(refused.value) == {field}
    assert field in str(refused.value)


@MODELS
@given(old=valid_syncjob_specs(), new=valid_syncjob_specs(),
       phase=st.none() | st.sampled_from([p.value for p in Phase]) | any_text,
       name=dns_keys)
def test_syncjob_update_rules_name_the_field_they_refuse(
        old: dict[str, Any], new: dict[str, Any], phase: str | None, name: str) -> None:
    """The webhook's update check never raises; a refusal names spec.params or the
    control field that has no effect on a finished job."""
    new["jobType"] = old["jobType"]
    old_body = {"metadata": {"name": name}, "spec": old, "status": {"phase": phase}}
    new_body = {"metadata": {"name": name}, "spec": new}
    error = syncjob_update_error(old_body, new_body)
    params_changed = json.dumps(old.get("params", {}), sort_keys=True) \
        != json.dumps(new.get("params", {}), sort_keys=True)
    if params_changed:
        assert error == "spec.params is immutable"
        return
    finished = phase in {p.value for p in Phase if p.is_terminal}
    changed = [f for f in ("paused", "priority") if old.get(f) != new.get(f)]
    if finished and changed:
        assert error is not None
        assert f"spec.{changed[0]}" in error
        assert name in error
    else:
        assert error is None


# == properties: SyncSchedule ============================================================


@MODELS
@given(valid_schedule_specs())
def test_a_valid_schedule_spec_is_accepted_round_trips_and_ticks(spec: dict[str, Any]) -> None:
    model = SyncScheduleSpec.model_validate(spec)
    assert SyncScheduleSpec.model_validate(model.to_body()) == model
    assert schedule_error(spec) is None
    tick = next_tick(model.schedule, model.time_zone, NOW)
    assert tick is not None
    assert tick > NOW


@MODELS
@given(invalid_schedule_specs())
def test_an_invalid_schedule_spec_is_refused_naming_the_field(
        case: tuple[dict[str, Any], str]) -> None:
    spec, field = case
    with pytest.raises(ValidationError) as refused:
        SyncScheduleSpec.model_validate(spec)
    assert field in error_locations(refused.value)
    assert field in str(refused.value)


@MODELS
@given(expression=bad_cron() | schema_bad_schedules.filter(lambda s: isinstance(s, str)),
       zone=st.sampled_from(ZONES))
def test_a_cron_that_does_not_parse_is_refused_naming_the_schedule(
        expression: str, zone: str) -> None:
    with pytest.raises(ValueError, match=r"^schedule ") as refused:
        validate(expression, zone)
    assert type(refused.value) is ValueError  # not an IndexError, a KeyError, ...
    error = schedule_error({"schedule": expression, "timeZone": zone})
    assert error is not None
    assert error.startswith("schedule ")


@MODELS
@given(expression=cron_expressions, zone=bad_zones)
def test_an_unknown_time_zone_is_refused_naming_the_time_zone(expression: str,
                                                               zone: str) -> None:
    error = schedule_error({"schedule": expression, "timeZone": zone})
    assert error is not None
    assert error.startswith("timeZone ")


@MODELS
@given(st.dictionaries(st.sampled_from(["schedule", "timeZone", "jobType", "x"]), junk,
                       max_size=3))
def test_schedule_validation_of_any_junk_returns_a_message_or_none(spec: dict[str, Any]) -> None:
    """The webhook's check never raises, whatever the spec holds."""
    error = schedule_error(spec)
    assert error is None or error.startswith(("schedule ", "timeZone "))


# == properties: runner messages =========================================================


@MODELS
@given(raw_payloads)
def test_any_bytes_in_the_state_hash_parse_or_raise_only_a_validation_error(
        raw: bytes | str) -> None:
    for model in (RunnerStatus, Checkpoint, Control):
        with contextlib.suppress(ValidationError):
            model.model_validate_json(raw)


@MODELS
@given(st.text(max_size=60))
def test_a_channel_name_yields_a_uid_or_a_value_error(channel: str) -> None:
    try:
        uid = Keys.uid_from_channel(channel)
    except ValueError:
        return
    assert channel.startswith(f"syncjob:{uid}:")


def _parsed(value: dict[str, Any], model: type[RunnerStatus] | type[Checkpoint]) -> Any:
    try:
        return model.model_validate_json(wire(value))
    except ValidationError:
        return None


@MODELS
@given(runner_dicts)
def test_a_parsed_runner_status_becomes_progress_within_the_schema(value: dict[str, Any]) -> None:
    runner = _parsed(value, RunnerStatus)
    if runner is None:
        return
    progress = progress_status(runner, {"etaSeconds": 5, "done": runner.progress.done})
    assert len(progress["unit"]) <= PROGRESS_UNIT_MAX
    assert len(progress["message"]) <= PROGRESS_MESSAGE_MAX
    assert parse_time(progress["updatedAt"]) is not None
    assert strict_json(progress)
    ProgressStatus.model_validate(progress)
    p = runner.progress
    eta = estimate_eta((p.updated_at - 10, 0), p.updated_at, p.done, p.total)
    assert eta is None or eta >= 0
    assert math.isfinite(runner.heartbeat_at)


SUCCEEDED_JOB = JobObservation("sj-1234abcd", False, 0, 0, 1, True, None, None)
FAILED_JOBS = [JobObservation("sj-1234abcd", False, 0, 1, 0, False, reason, "msg")
               for reason in ("PodFailurePolicy", "BackoffLimitExceeded", "DeadlineExceeded",
                              "SomethingNew")]


@MODELS
@given(value=runner_dicts, checkpoint=checkpoint_dicts,
       job=st.sampled_from([None, SUCCEEDED_JOB, *FAILED_JOBS]),
       phase=st.sampled_from(["Running", "Pausing", "Cancelling"]))
def test_any_parsed_runner_report_decides_a_status_the_api_server_accepts(
        value: dict[str, Any], checkpoint: dict[str, Any], job: JobObservation | None,
        phase: str) -> None:
    """Whatever a runner wrote, the state machine decides without raising, and the status
    it would write validates against the CRD's model and is strict JSON."""
    runner = _parsed(value, RunnerStatus)
    saved = _parsed(checkpoint, Checkpoint)
    spec = SyncJobSpec(job_type=JobType.QURAN, paused=phase == "Pausing",
                       cancel=phase == "Cancelling")
    status = {"phase": phase, "runStartedAt": "2026-11-25T11:00:00Z",
              "control": {"paused": phase == "Pausing", "cancel": phase == "Cancelling",
                          "generation": 1}}
    decision = decide(Observation(generation=1, spec=spec, status=status, now=NOW, job=job,
                                  runner=runner, checkpoint=saved, job_name="sj-1234abcd"),
                      Timeouts())
    SyncJobStatus.model_validate(decision.status)
    assert strict_json(decision.status)


@MODELS
@given(st.dictionaries(any_text, junk, max_size=5)
       | st.dictionaries(any_text, huge_text, min_size=3, max_size=5))
def test_a_bounded_result_is_strict_json_and_small(summary: dict[str, Any]) -> None:
    result = bounded_result(summary)
    assert strict_json(result)
    assert len(json.dumps(result, ensure_ascii=False).encode()) <= RESULT_MAX_BYTES


def test_a_nan_or_huge_number_in_a_runner_summary_is_carried_as_text() -> None:
    """Regression: bounded_result passed NaN and integers past int64 through, so the final
    status write was a body the API server cannot decode."""
    result = bounded_result({"ratio": math.nan, "big": 10**30, "ok": [1, 2.5, True]})
    assert result == {"ratio": "nan", "big": str(10**30), "ok": [1, 2.5, True]}
    assert strict_json(result)


@pytest.mark.parametrize("report", [
    '{"state": "running", "progress": {"updated_at": 1e300}}',
    '{"state": "running", "progress": {"updated_at": NaN}}',
    '{"state": "running", "progress": {"updated_at": -1e12}}',
    '{"state": "running", "heartbeat_at": Infinity}',
    '{"state": "running", "progress": {"done": 1%s, "total": 1}}' % ("0" * 400),
    '{"state": "succeeded", "warnings": 99999999999999999999}',
    '{"state": "succeeded", "warnings": -1}',
])
def test_a_report_with_numbers_no_status_can_hold_is_malformed(report: str) -> None:
    """Regression: such reports parsed, then crashed progress_status (OverflowError,
    ValueError from datetime.fromtimestamp or a float division) in the progress relay,
    which restarted the leader's work in a loop, or made a status the API server refuses."""
    with pytest.raises(ValidationError):
        RunnerStatus.model_validate_json(report)


def test_the_largest_report_a_status_can_hold_still_parses() -> None:
    report = RunnerStatus.model_validate_json(json.dumps({
        "state": "running", "heartbeat_at": MAX_UNIX_SECONDS, "warnings": MAX_COUNT,
        "progress": {"done": MAX_COUNT, "total": MAX_COUNT, "updated_at": MAX_UNIX_SECONDS}}))
    progress = progress_status(report, None)
    assert progress["updatedAt"] == "9999-12-31T23:59:59Z"
    assert progress["percent"] == 100


@MODELS
@given(text=st.text() | huge_text, limit=st.integers(1, 5000))
def test_clipping_always_fits_and_reasons_are_always_valid(text: str, limit: int) -> None:
    assert len(clip(text, limit)) <= limit
    assert len(clip_middle(text, max(limit, 2))) <= max(limit, 2)
    assert is_reason(condition_reason(text, fallback="FatalError"))


# == runner messages through the real Redis: bytes that are not UTF-8 ===================

NOT_UTF8 = b'\xff\xfe{"state": "running"}'


async def test_a_state_hash_or_checkpoint_that_is_not_utf8_reads_as_malformed(
        redis_server: Any) -> None:
    from sync_operator.syncjob.runner_link import RunnerLink

    uid = f"fuzz-{uuid.uuid4()}"
    raw = aioredis.Redis.from_url(redis_server.url)
    link = RunnerLink(redis_server.url)
    try:
        await raw.hset(Keys(uid).state, STATE_FIELD, NOT_UTF8)
        await raw.set(Keys(uid).checkpoint, NOT_UTF8)
        assert await link.status(uid) is None
        assert await link.checkpoint(uid) is None
    finally:
        await link.close()
        await raw.aclose()


async def test_an_event_that_is_not_utf8_does_not_end_the_follower(redis_server: Any) -> None:
    from sync_operator.syncjob.runner_link import RunnerLink

    uid = f"fuzz-{uuid.uuid4()}"
    raw = aioredis.Redis.from_url(redis_server.url)
    link = RunnerLink(redis_server.url)
    seen: asyncio.Queue[RunnerStatus] = asyncio.Queue()

    async def on_status(job_uid: str, status: RunnerStatus) -> None:
        if job_uid == uid:
            await seen.put(status)

    follower = asyncio.create_task(link.follow(on_status))
    try:
        good = RunnerStatus(state=RunnerState.RUNNING).model_dump_json()

        async def delivered() -> bool:
            await raw.publish(Keys(uid).events, good)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.get(), 0.2)
                return True
            return False

        await eventually(delivered, timeout=10, what="the follower subscribed")
        await raw.publish(Keys(uid).events, NOT_UTF8)
        await raw.publish(Keys(uid).events, good)
        done, _ = await asyncio.wait({follower, asyncio.ensure_future(seen.get())},
                                     timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if follower in done:
            follower.result()  # re-raises what ended it
        assert done, "the good event after the bad one never arrived"
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, UnicodeDecodeError):
            await follower
        await link.close()
        await raw.aclose()
