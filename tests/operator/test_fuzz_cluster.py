"""Fuzzed bodies and runner messages against the real API server and the real operator.

The strategies are tests/unit/test_fuzz_models.py's. Hypothesis runs in a worker thread
and hands each example to the session's event loop, so a failing example is shrunk
against the real API server like any other. Properties:

- a fuzzed SyncJob or SyncSchedule body the schema refuses is answered 422 with a
  message naming the field; a valid one is stored;
- odd but valid SyncJobs (priorities 1 and 10, names at 62/63/64/253 characters, unicode
  and junk in params, params of hundreds of KiB) each reach a terminal phase, and the
  operator is still alive with nothing failed in its log;
- fuzzed reports written into a running job's Redis hash and channel never make a status
  write the API server refuses, never stop the progress relay, and leave the job
  cancellable.

Bytes that are not UTF-8 are left out of the Redis fuzz here: the unit file checks them
against RunnerLink on the real Redis (they once raised from every read).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_operator.api.common import API_VERSION, SYNCJOBS, SYNCSCHEDULES
from sync_operator.api.syncjob import ProgressStatus, SyncJobStatus
from sync_operator.kube import ApiError, KubeClient
from sync_runner.contract import STATE_FIELD, Keys, Progress, RunnerState, RunnerStatus
from testkit.operator import OperatorProcess
from testkit.servers import RedisServer
from testkit.syncjobs import set_spec, wait_phase
from testkit.waiting import eventually

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_fuzz_models import (  # the strategies live with the unit properties
    any_text,
    invalid_schedule_specs,
    invalid_syncjob_specs,
    json_values,
    runner_dicts,
    valid_schedule_specs,
    valid_syncjob_specs,
)

pytestmark = pytest.mark.cluster

# -- settings: small and deterministic, the whole file in about a minute on 2 cores ------

_COMMON: dict[str, Any] = {"deadline": None, "derandomize": True, "database": None,
                           "suppress_health_check": list(HealthCheck)}
settings.register_profile("fuzz-cluster-bodies", max_examples=60, **_COMMON)
settings.register_profile("fuzz-cluster-batch", max_examples=8, **_COMMON)
settings.register_profile("fuzz-cluster-redis", max_examples=40, **_COMMON)
BODIES = settings.get_profile("fuzz-cluster-bodies")
BATCH = settings.get_profile("fuzz-cluster-batch")
REDIS = settings.get_profile("fuzz-cluster-redis")

SIM_IMAGE_REF = "local/sync-sim:dev"  # runs in-process in the kubelet (testkit.sim_runner)
TERMINAL = {"Succeeded", "Failed", "Cancelled"}
T = TypeVar("T")


async def fuzz(profile: settings, strategy: st.SearchStrategy[T],
               check: Callable[[T], Awaitable[None]]) -> None:
    """Run `check` on examples of `strategy` under `profile`, on this event loop."""
    loop = asyncio.get_running_loop()

    @profile
    @given(strategy)
    def prop(example: T) -> None:
        asyncio.run_coroutine_threadsafe(check(example), loop).result(timeout=60)

    await asyncio.to_thread(prop)


def operator_log_is_clean(op: OperatorProcess) -> None:
    """Nothing crashed or looped in the operator: no traceback, no failed loop."""
    assert op.process is not None
    op.process.check_alive()
    text = op.log_path.read_text(errors="replace")
    for sign in ("Traceback", "leader work failed", "reconcile of", "StatusRejected",
                 "status write refused"):
        assert sign not in text, f"{sign!r} in the operator log:\n{op.log()}"


def same_json(stored: Any, sent: Any) -> bool:
    """Equal as the API server stores JSON: an integral float past 2**53 comes back as an
    int64 near it (the server's number conversion), so numbers compare to 15 digits."""
    if isinstance(sent, bool) or isinstance(stored, bool):
        return stored is sent
    if isinstance(sent, int | float) and isinstance(stored, int | float):
        return math.isclose(float(stored), float(sent), rel_tol=1e-15)
    if isinstance(sent, dict) and isinstance(stored, dict):
        return stored.keys() == sent.keys() and all(same_json(stored[k], v)
                                                    for k, v in sent.items())
    if isinstance(sent, list) and isinstance(stored, list):
        return len(stored) == len(sent) and all(map(same_json, stored, sent))
    return bool(stored == sent)


_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


# == bodies: the API server refuses what the schema refuses, naming the field ===========


async def test_fuzzed_syncjob_bodies_are_refused_naming_the_field_or_stored(
        kube: KubeClient, namespace: str, crds: list[str]) -> None:
    async def valid(spec: dict[str, Any]) -> None:
        name = unique("ok")
        created = await kube.create(SYNCJOBS, {"apiVersion": API_VERSION, "kind": "SyncJob",
                                               "metadata": {"name": name}, "spec": spec},
                                    namespace)
        assert created["spec"]["jobType"] == spec["jobType"]
        assert same_json(created["spec"].get("params", {}), spec.get("params", {}))

    async def invalid(case: tuple[dict[str, Any], str]) -> None:
        spec, field = case
        with pytest.raises(ApiError) as refused:
            await kube.create(SYNCJOBS, {"apiVersion": API_VERSION, "kind": "SyncJob",
                                         "metadata": {"name": unique("bad")}, "spec": spec},
                              namespace)
        assert refused.value.status == 422, refused.value
        assert f"spec.{field}" in refused.value.message

    await fuzz(BODIES, valid_syncjob_specs(), valid)
    await fuzz(BODIES, invalid_syncjob_specs(), invalid)


async def test_fuzzed_schedule_bodies_are_refused_naming_the_field_or_stored(
        kube: KubeClient, namespace: str, crds: list[str]) -> None:
    def body(spec: dict[str, Any], name: str) -> dict[str, Any]:
        # suspend: stored without ever ticking, whoever watches the namespace.
        return {"apiVersion": API_VERSION, "kind": "SyncSchedule",
                "metadata": {"name": name}, "spec": {"suspend": True, **spec}}

    async def valid(spec: dict[str, Any]) -> None:
        created = await kube.create(SYNCSCHEDULES, body(spec, unique("ok")), namespace)
        assert created["spec"]["schedule"] == spec["schedule"]

    async def invalid(case: tuple[dict[str, Any], str]) -> None:
        spec, field = case
        with pytest.raises(ApiError) as refused:
            await kube.create(SYNCSCHEDULES, body(spec, unique("bad")), namespace)
        assert refused.value.status == 422, refused.value
        assert f"spec.{field}" in refused.value.message

    await fuzz(BODIES, valid_schedule_specs().map(lambda s: {**s, "suspend": True}), valid)
    await fuzz(BODIES, invalid_schedule_specs().filter(lambda c: c[1] != "suspend"), invalid)


# == odd but valid SyncJobs, run by the operator ========================================

# Lengths at the edges: 62/63/64 around the label and Job name limit, 253 the maximum.
NAME_LENGTHS = [12, 62, 63, 64, 200, 253]
PREFIX = 8  # "o000042-"


@st.composite
def odd_syncjobs(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    """(name, spec, expected terminal phase) of a job the schema accepts but nobody
    would write by hand."""
    length = draw(st.sampled_from(NAME_LENGTHS))
    # The first PREFIX characters are made unique at creation (never by a draw: hypothesis
    # needs the same draws to give the same example).
    chars = list("x" * PREFIX + draw(st.text("abc9-", min_size=length - PREFIX - 1,
                                             max_size=length - PREFIX - 1)) + "z")
    for i in draw(st.lists(st.integers(PREFIX + 1, length - 2), max_size=8)):
        if chars[i - 1].isalnum() and chars[i + 1].isalnum():
            chars[i] = "."  # a DNS subdomain: labels between dots start and end alnum
    name = "".join(chars)
    junk = draw(st.dictionaries(any_text.filter(lambda k: k not in {"items", "unitSeconds",
                                                                    "fatal", "failAt",
                                                                    "ignoreStop", "units"}),
                                json_values, max_size=5))
    params: dict[str, Any] = {**junk, "items": draw(st.integers(0, 2)), "unitSeconds": 0.01}
    if draw(st.booleans()):
        # Up to 160 KB of UTF-8 in the Job's environment (600 KB: the test below).
        params["blob"] = draw(st.sampled_from(["ü", "ß", "😀", "x"])) * 40_000
    expected = "Succeeded"
    if draw(st.booleans()):
        params["items"] = draw(st.sampled_from(["many", -1, [1], {"n": 1}]))
        expected = "Failed"  # the task refuses its params: a fatal failure, not a retry
    spec: dict[str, Any] = {"jobType": draw(st.sampled_from(["quran", "audio", "finance"])),
                            "priority": draw(st.sampled_from([1, 10])), "params": params,
                            "retryAttempts": draw(st.sampled_from([0, 10]))}
    if draw(st.booleans()):
        spec["dedupKey"] = draw(st.text(min_size=253, max_size=253))
    if draw(st.integers(0, 3)) == 0:
        spec["cancel"] = True
        expected = "Cancelled"
    return name, spec, expected


async def test_odd_but_valid_syncjobs_each_reach_a_terminal_phase(
        kube: KubeClient, namespace: str,
        start_operator: Callable[..., OperatorProcess]) -> None:
    operator = start_operator(runner_image=SIM_IMAGE_REF)
    batch: list[tuple[str, dict[str, Any], str]] = []

    async def create(job: tuple[str, dict[str, Any], str]) -> None:
        template, spec, expected = job
        name = f"o{next(_names):06d}-{template[PREFIX:]}"
        await kube.create(SYNCJOBS, {"apiVersion": API_VERSION, "kind": "SyncJob",
                                     "metadata": {"name": name}, "spec": spec}, namespace)
        batch.append((name, spec, expected))

    await fuzz(BATCH, odd_syncjobs(), create)
    assert len(batch) >= 4
    lengths = {len(name) for name, _, _ in batch}
    assert max(lengths) >= 63, lengths
    for name, spec, expected in batch:
        body = await wait_phase(kube, namespace, name, *TERMINAL, timeout=90)
        status = body["status"]
        assert status["phase"] == expected, (name, spec.get("params", {}).get("items"),
                                             status)
        SyncJobStatus.model_validate(status)
    operator_log_is_clean(operator)


async def test_params_of_600_kb_do_not_restart_the_operators_loops(
        kube: KubeClient, namespace: str,
        start_operator: Callable[..., OperatorProcess]) -> None:
    """A watch event over aiohttp's 512 KiB line limit (the Job's SYNC_JOB_PARAMS env)
    once raised LineTooLong in the operator's Job watch and restarted its loops."""
    operator = start_operator(runner_image=SIM_IMAGE_REF)
    await kube.create(SYNCJOBS, {"apiVersion": API_VERSION, "kind": "SyncJob",
                                 "metadata": {"name": "big"},
                                 "spec": {"jobType": "quran", "params": {
                                     "items": 1, "unitSeconds": 0.01,
                                     "blob": "x" * 600_000}}}, namespace)
    await wait_phase(kube, namespace, "big", *TERMINAL, timeout=60)
    operator_log_is_clean(operator)


# == fuzzed runner messages into a running job ==========================================


async def test_fuzzed_runner_reports_never_stall_a_running_job_or_the_operator(
        kube: KubeClient, namespace: str, redis_server: RedisServer,
        start_operator: Callable[..., OperatorProcess]) -> None:
    operator = start_operator(runner_image=SIM_IMAGE_REF, progress_interval_seconds="0.2")
    # One unit of 10 minutes: the runner reports once, then only beats its heart.
    await kube.create(SYNCJOBS, {"apiVersion": API_VERSION, "kind": "SyncJob",
                                 "metadata": {"name": "target"},
                                 "spec": {"jobType": "hadith",
                                          "params": {"items": 1, "unitSeconds": 600}}},
                      namespace)
    body = await wait_phase(kube, namespace, "target", "Running", timeout=30)
    keys = Keys(body["metadata"]["uid"])
    redis = aioredis.Redis.from_url(redis_server.url, decode_responses=True)

    async def reported() -> bool:
        return bool(await redis.hget(keys.state, STATE_FIELD))

    payloads = runner_dicts.map(json.dumps) | st.text(max_size=200) \
        | st.sampled_from(["", "null", "[]", "{", '{"state": "running"}'])

    async def write(payload: str) -> None:
        await redis.hset(keys.state, STATE_FIELD, payload)
        await redis.publish(keys.events, payload)
        now = await kube.get(SYNCJOBS, "target", namespace)
        assert now["status"]["phase"] == "Running", now["status"]
        if now["status"].get("progress"):
            ProgressStatus.model_validate(now["status"]["progress"])

    try:
        await eventually(reported, timeout=30, what="the runner's first report")
        await fuzz(REDIS, payloads, write)

        # The relay still works: a well-formed report after all that lands in status.
        marker = RunnerStatus(state=RunnerState.RUNNING, progress=Progress(
            done=1, total=1, message="after the fuzz"))

        async def relayed() -> bool:
            await redis.publish(keys.events, marker.model_dump_json())
            now = await kube.get(SYNCJOBS, "target", namespace)
            return (now["status"].get("progress") or {}).get("message") == "after the fuzz"

        await eventually(relayed, timeout=20, interval=0.5, what="a report after the fuzz")
        final = await kube.get(SYNCJOBS, "target", namespace)
        SyncJobStatus.model_validate(final["status"])
        operator_log_is_clean(operator)

        # Not wedged: it still answers a cancel.
        await set_spec(kube, namespace, "target", cancel=True)
        await wait_phase(kube, namespace, "target", "Cancelled", timeout=40)
        operator_log_is_clean(operator)
    finally:
        await redis.aclose()
