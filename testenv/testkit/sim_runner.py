"""The simulated sync runner: the real runner, run in-process by the process kubelet.

A pod of the sim image (image key SIM_IMAGE, any registry and tag) becomes an asyncio
task inside the kubelet instead of a Python process of its own, so a thousand running
SyncJobs fit on two cores. Nothing of the wire contract is re-implemented: the task
runs `sync_runner.runner.run_job` (the runner's own reporter, control watcher,
channel, checkpoints, exit codes) on settings read from the container environment the
kubelet computed, with the demo task as its work. It lives here and not in the image
because what it adds is the kubelet's business: many jobs sharing one process (a Redis
client per URL, a log file per container) and a container's lifecycle (SIGTERM is the
runner's `terminated` event, SIGKILL cancels the task).

The work is the demo task's (`items` units of `unitSeconds`, with `failAt`, `fatal` and
`ignoreStop`), whatever the job type; `units` is accepted as the scale tests' name
for `items`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import redis.asyncio as aioredis

from sync_runner.channel import connect
from sync_runner.contract import ExitCode
from sync_runner.logs import LOGGER_NAME, JsonLineFormatter, get_logger, log_event
from sync_runner.runner import run_job
from sync_runner.settings import InvalidSettingsError, RunnerSettings, load_settings
from sync_runner.tasks.demo import DemoTask

SIM_IMAGE = "sync-sim"
# What a runtime reports for a container killed by SIGKILL (128 + 9).
KILLED = 137
KILL_WAIT_SECONDS = 10.0
# Each running sim holds one pooled connection for its control subscription.
SHARED_POOL_CONNECTIONS = 10_000

log = get_logger("sim")
# The log handler of the sim container whose code is running (asyncio tasks inherit it).
_container_log: ContextVar[logging.Handler | None] = ContextVar("sim_container_log",
                                                                default=None)


class _ContainerLogRouter(logging.Handler):
    """Sends each runner log record to the log file of the container that emitted it."""

    def emit(self, record: logging.LogRecord) -> None:
        handler = _container_log.get()
        if handler is not None and record.levelno >= handler.level:
            handler.handle(record)


def _route_runner_logs() -> None:
    """Once per process: the runner's logger writes per container, never to the host's log."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _ContainerLogRouter) for h in logger.handlers):
        logger.handlers[:] = [_ContainerLogRouter()]
        logger.setLevel(logging.DEBUG)  # each container's handler applies its own level
        logger.propagate = False


def sim_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The job's params as the demo task reads them (`units` -> `items`)."""
    adapted = dict(params)
    if "units" in adapted and "items" not in adapted:
        adapted["items"] = adapted["units"]
    return adapted


class SimContainer:
    """One started container of the sim image: a task running one runner to its exit code."""

    _ids = itertools.count(1)

    def __init__(self, runtime: SimRuntime, env: Mapping[str, str], log_path: Path) -> None:
        self.id = f"sim-{next(self._ids)}"
        self.terminated = asyncio.Event()  # the runner's SIGTERM
        self.exit_code: int | None = None
        runtime.containers.add(self)
        self._task = asyncio.create_task(self._main(runtime, dict(env), log_path),
                                         name=f"sim-container-{self.id}")

    @property
    def running(self) -> bool:
        return not self._task.done()

    def terminate(self) -> None:
        """SIGTERM: the runner stops at its next safe point, checkpointed, with its exit code."""
        self.terminated.set()

    def kill(self) -> None:
        """SIGKILL: the run is cancelled wherever it is."""
        self._task.cancel()

    async def wait(self) -> int:
        """The exit code, once the run ended; waiting (or giving up waiting) never kills it."""
        await asyncio.wait({self._task})
        return self.exit_code if self.exit_code is not None else KILLED

    async def _main(self, runtime: SimRuntime, env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        stream: IO[str] = log_path.open("a", buffering=1)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonLineFormatter())
        _container_log.set(handler)
        try:
            self.exit_code = await self._run(runtime, env, handler)
        except asyncio.CancelledError:
            self.exit_code = KILLED
        except Exception:  # as an uncaught exception ends a process: logged, exit 1
            log_event(log, "sim.crashed", level=logging.ERROR, exc_info=True)
            self.exit_code = int(ExitCode.FAILED)
        finally:
            handler.close()
            stream.close()
            runtime.containers.discard(self)

    async def _run(self, runtime: SimRuntime, env: dict[str, str],
                   handler: logging.Handler) -> int:
        """What `python -m sync_runner` does, on this container's environment."""
        try:
            settings = load_settings(env)
        except InvalidSettingsError as exc:
            log_event(log, "settings.invalid", level=logging.ERROR, error=str(exc),
                      exit_code=int(ExitCode.FATAL))
            return int(ExitCode.FATAL)
        handler.setFormatter(JsonLineFormatter(
            {"job_uid": settings.job_uid, "job": settings.job_name,
             "namespace": settings.job_namespace, "job_type": settings.job_type,
             "pod": settings.pod_name, "sim": True}))
        handler.setLevel(settings.log_level)
        settings = settings.model_copy(update={"job_params": sim_params(settings.job_params)})
        code = await run_job(settings, runtime.client(settings), self.terminated, DemoTask)
        log_event(get_logger(), "runner.exit", exit_code=int(code), outcome=code.name)
        return int(code)


class SimRuntime:
    """The kubelet's runtime for sim containers: starts them, shares Redis clients."""

    def __init__(self) -> None:
        self._clients: dict[str, aioredis.Redis] = {}
        self.containers: set[SimContainer] = set()
        self.started = 0
        _route_runner_logs()

    def client(self, settings: RunnerSettings) -> aioredis.Redis:
        """One client (connection pool) per Redis URL for all sims, made as the runner's."""
        if settings.redis_url not in self._clients:
            self._clients[settings.redis_url] = connect(
                settings.redis_url, max_connections=SHARED_POOL_CONNECTIONS)
        return self._clients[settings.redis_url]

    def start(self, env: Mapping[str, str], log_path: Path) -> SimContainer:
        self.started += 1
        return SimContainer(self, env, log_path)

    async def close(self) -> None:
        """Kill what still runs (the kubelet is going), then close the clients."""
        running = list(self.containers)
        for container in running:
            container.kill()
        if running:
            await asyncio.wait([asyncio.ensure_future(c.wait()) for c in running],
                               timeout=KILL_WAIT_SECONDS)
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()
