"""The runner's configuration, read from the environment the operator gives the pod.

Job identity and connections come from the contract's ENV_* variables; the tunables
(SYNC_RUNNER_*) have defaults that suit a cluster, and tests shorten them.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from sync_runner import contract

TUNABLE_PREFIX = "SYNC_RUNNER_"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class InvalidSettingsError(Exception):
    """The environment cannot describe a job; retrying the pod would not help."""


def _default_pod_name() -> str:
    return os.environ.get("HOSTNAME") or socket.gethostname()


class RunnerSettings(BaseSettings):
    """Everything the runner needs to know before it touches Redis."""

    model_config = SettingsConfigDict(
        env_prefix=TUNABLE_PREFIX, frozen=True, extra="ignore", populate_by_name=False,
    )

    job_uid: str = Field(validation_alias=contract.ENV_JOB_UID, min_length=1)
    job_name: str = Field(validation_alias=contract.ENV_JOB_NAME, min_length=1)
    job_namespace: str = Field(validation_alias=contract.ENV_JOB_NAMESPACE, min_length=1)
    job_type: str = Field(validation_alias=contract.ENV_JOB_TYPE, min_length=1)
    job_params: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict, validation_alias=contract.ENV_JOB_PARAMS)
    redis_url: str = Field(validation_alias=contract.ENV_REDIS_URL, min_length=1)
    database_url: str | None = Field(default=None, validation_alias=contract.ENV_DATABASE_URL)
    pod_name: str = Field(default_factory=_default_pod_name,
                          validation_alias=contract.ENV_POD_NAME)

    # Tunables (SYNC_RUNNER_<NAME>), in seconds.
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    control_poll_seconds: float = Field(default=1.0, gt=0)
    progress_min_interval_seconds: float = Field(default=0.2, ge=0)
    wait_after_ack_seconds: float = Field(default=300.0, ge=0)
    # How long a checkpoint save, a final status or the startup reads keep retrying
    # through a Redis outage before the runner gives up and says so.
    redis_retry_seconds: float = Field(default=30.0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("job_params", mode="before")
    @classmethod
    def _params_json_object(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, got {type(value).__name__}")
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(_REDIS_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_REDIS_SCHEMES)}")
        return value


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(RunnerSettings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


def _from_environ(environ: Mapping[str, str]) -> RunnerSettings:
    """The settings a process with exactly `environ` would read, parsed the same way."""
    env = dict(environ)
    if contract.ENV_POD_NAME not in env and env.get("HOSTNAME"):
        env[contract.ENV_POD_NAME] = env["HOSTNAME"]  # as _default_pod_name would find it
    return RunnerSettings(_build_sources=((_MappingEnvSource(env),), {}))


def load_settings(environ: Mapping[str, str] | None = None) -> RunnerSettings:
    """Read the settings from the environment, or raise InvalidSettingsError naming each problem.

    `environ` replaces the process environment, for a runner embedded in another process
    (the in-process sim), whose own os.environ is not the pod's.
    """
    try:
        if environ is None:
            return RunnerSettings()  # the fields come from the environment
        return _from_environ(environ)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            if where in RunnerSettings.model_fields:
                where = f"{TUNABLE_PREFIX}{where.upper()}"
            problems.append(f"{where}: {error['msg']}")
        raise InvalidSettingsError("; ".join(problems)) from None
    except SettingsError as exc:
        raise InvalidSettingsError(str(exc)) from None
