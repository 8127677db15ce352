"""`python -m sync_runner` / `sync-runner`: the sync image's entrypoint."""

from __future__ import annotations

import asyncio
import logging

from sync_runner import logs
from sync_runner.contract import ExitCode
from sync_runner.runner import run
from sync_runner.settings import InvalidSettingsError, load_settings


def main() -> int:
    """Run the job described by the environment; the return value is the exit code."""
    try:
        settings = load_settings()
    except InvalidSettingsError as exc:
        logs.configure()
        logs.log_event(logs.get_logger(), "settings.invalid", level=logging.ERROR,
                       error=str(exc), exit_code=int(ExitCode.FATAL))
        return int(ExitCode.FATAL)
    logs.configure({"job_uid": settings.job_uid, "job": settings.job_name,
                    "namespace": settings.job_namespace, "job_type": settings.job_type,
                    "pod": settings.pod_name}, level=settings.log_level)
    code = asyncio.run(run(settings))
    logs.log_event(logs.get_logger(), "runner.exit", exit_code=int(code), outcome=code.name)
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
