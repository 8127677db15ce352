"""Test helpers: start the runner as a real process and play the operator's side in Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from sync_runner import contract
from sync_runner.contract import Checkpoint, Control, Keys, RunnerStatus

# Short tunables so a test sees heartbeats, polls and publishes within fractions of a second.
FAST = {
    "SYNC_RUNNER_HEARTBEAT_SECONDS": "0.3",
    "SYNC_RUNNER_CONTROL_POLL_SECONDS": "0.2",
    "SYNC_RUNNER_PROGRESS_MIN_INTERVAL_SECONDS": "0.05",
    "SYNC_RUNNER_WAIT_AFTER_ACK_SECONDS": "20",
    "SYNC_RUNNER_REDIS_RETRY_SECONDS": "10",
}


def new_uid() -> str:
    return str(uuid.uuid4())


def runner_env(redis_url: str, uid: str, params: dict[str, Any] | None = None,
               job_type: str = "demo", **overrides: str) -> dict[str, str]:
    """The environment the operator gives a runner pod (plus fast tunables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update({
        contract.ENV_JOB_UID: uid,
        contract.ENV_JOB_NAME: f"job-{uid[:8]}",
        contract.ENV_JOB_NAMESPACE: "tests",
        contract.ENV_JOB_TYPE: job_type,
        contract.ENV_JOB_PARAMS: json.dumps(params or {}),
        contract.ENV_REDIS_URL: redis_url,
        contract.ENV_POD_NAME: f"pod-{uuid.uuid4().hex[:6]}",
        **FAST,
    })
    env.update(overrides)
    return env


@dataclass
class RunnerProcess:
    """A `python -m sync_runner` child with its stdout in a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def send(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    async def wait(self, within: float = 15.0) -> int:
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"runner still running after {within}s:\n{self.output()}")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The structured log lines (one JSON object each)."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def kill(self) -> None:
        if self.running:
            self.proc.kill()
            self.proc.wait(5)


def start_runner(tmp_path: Path, env: dict[str, str]) -> RunnerProcess:
    log_path = tmp_path / f"runner-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sync_runner"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return RunnerProcess(proc, log_path)


# -- the operator's side ------------------------------------------------------------------


async def maybe_status(client: aioredis.Redis, uid: str) -> RunnerStatus | None:
    raw = await client.hget(Keys(uid).state, contract.STATE_FIELD)
    return None if raw is None else RunnerStatus.model_validate_json(str(raw))


async def read_status(client: aioredis.Redis, uid: str) -> RunnerStatus:
    status = await maybe_status(client, uid)
    assert status is not None, f"no status published for {uid}"
    return status


async def has_checkpoint(client: aioredis.Redis, uid: str) -> bool:
    return bool(await client.exists(Keys(uid).checkpoint))


async def read_checkpoint(client: aioredis.Redis, uid: str) -> Checkpoint:
    raw = await client.get(Keys(uid).checkpoint)
    assert raw is not None, f"no checkpoint saved for {uid}"
    return Checkpoint.model_validate_json(str(raw))


async def wait_for_status(client: aioredis.Redis, uid: str,
                          check: Callable[[RunnerStatus], bool], within: float = 10.0,
                          runner: RunnerProcess | None = None) -> RunnerStatus:
    """Poll the state hash until `check` holds for the published status."""
    deadline = time.monotonic() + within
    status = None
    while time.monotonic() < deadline:
        status = await maybe_status(client, uid)
        if status is not None and check(status):
            return status
        await asyncio.sleep(0.02)
    detail = f"\nrunner output:\n{runner.output()}" if runner else ""
    raise TimeoutError(f"status never matched; last: {status}{detail}")


async def set_control(client: aioredis.Redis, uid: str, *, paused: bool = False,
                      cancel: bool = False, generation: int) -> Control:
    """What the operator does: write the control hash, then announce it."""
    keys = Keys(uid)
    control = Control(paused=paused, cancel=cancel, generation=generation)
    body = control.model_dump_json()
    await client.hset(keys.control, contract.CONTROL_FIELD, body)
    await client.publish(keys.control_channel, body)
    return control


async def drain_statuses(pubsub: Any, quiet: float = 0.3) -> list[RunnerStatus]:
    """Every RunnerStatus received until `quiet` seconds pass without one.

    get_message returns None for swallowed subscribe confirmations too, so silence is
    measured by time, not by the first None.
    """
    received: list[RunnerStatus] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None and message["type"] == "message":
            received.append(RunnerStatus.model_validate_json(message["data"]))
            last = time.monotonic()
    return received
