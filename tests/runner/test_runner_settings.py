"""The runner's settings: the contract's environment in, a clear error for a bad one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from runner_harness import new_uid, runner_env, start_runner

from sync_runner import contract
from sync_runner.contract import ExitCode
from sync_runner.settings import InvalidSettingsError, RunnerSettings, load_settings
from testkit.servers import RedisServer

GOOD = {
    contract.ENV_JOB_UID: "3f1c",
    contract.ENV_JOB_NAME: "quran-nightly",
    contract.ENV_JOB_NAMESPACE: "content",
    contract.ENV_JOB_TYPE: "quran",
    contract.ENV_JOB_PARAMS: '{"surah": 2}',
    contract.ENV_REDIS_URL: "redis://redis:6379/0",
    contract.ENV_POD_NAME: "quran-nightly-abc12",
}


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """os.environ with only GOOD's sync variables."""
    for name in list(os.environ):
        if name.startswith("SYNC_"):
            monkeypatch.delenv(name)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_settings_read_the_contract_environment(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("SYNC_RUNNER_HEARTBEAT_SECONDS", "0.5")

    settings = load_settings()

    assert settings == RunnerSettings.model_validate({
        contract.ENV_JOB_UID: "3f1c", contract.ENV_JOB_NAME: "quran-nightly",
        contract.ENV_JOB_NAMESPACE: "content", contract.ENV_JOB_TYPE: "quran",
        contract.ENV_JOB_PARAMS: {"surah": 2}, contract.ENV_REDIS_URL: "redis://redis:6379/0",
        contract.ENV_POD_NAME: "quran-nightly-abc12", "heartbeat_seconds": 0.5,
    })
    assert settings.database_url is None
    assert settings.control_poll_seconds == 1.0
    assert settings.wait_after_ack_seconds == 300.0


def test_settings_default_to_empty_params_and_no_database(
        environ: pytest.MonkeyPatch) -> None:
    environ.delenv(contract.ENV_JOB_PARAMS)
    environ.setenv(contract.ENV_DATABASE_URL, "")

    settings = load_settings()

    assert settings.job_params == {}
    assert settings.database_url is None


def test_settings_reject_missing_job_identity(environ: pytest.MonkeyPatch) -> None:
    environ.delenv(contract.ENV_JOB_UID)
    environ.delenv(contract.ENV_REDIS_URL)

    with pytest.raises(InvalidSettingsError) as raised:
        load_settings()

    assert f"{contract.ENV_JOB_UID}: Field required" in str(raised.value)
    assert f"{contract.ENV_REDIS_URL}: Field required" in str(raised.value)


@pytest.mark.parametrize(("raw", "complaint"), [
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
    ('"text"', "must be a JSON object"),
])
def test_settings_reject_params_that_are_not_a_json_object(
        environ: pytest.MonkeyPatch, raw: str, complaint: str) -> None:
    environ.setenv(contract.ENV_JOB_PARAMS, raw)

    with pytest.raises(InvalidSettingsError, match=complaint) as raised:
        load_settings()

    assert str(raised.value).startswith(contract.ENV_JOB_PARAMS)


def test_settings_reject_a_url_that_is_not_redis(environ: pytest.MonkeyPatch) -> None:
    environ.setenv(contract.ENV_REDIS_URL, "http://redis:6379")

    with pytest.raises(InvalidSettingsError, match=contract.ENV_REDIS_URL):
        load_settings()


def test_settings_reject_a_heartbeat_that_is_not_positive(
        environ: pytest.MonkeyPatch) -> None:
    environ.setenv("SYNC_RUNNER_HEARTBEAT_SECONDS", "0")

    with pytest.raises(InvalidSettingsError, match="SYNC_RUNNER_HEARTBEAT_SECONDS"):
        load_settings()


async def test_bad_environment_exits_with_the_fatal_code_and_says_why(
        redis_server: RedisServer, tmp_path: Path) -> None:
    env = runner_env(redis_server.url, new_uid())
    env[contract.ENV_JOB_PARAMS] = "[]"
    del env[contract.ENV_JOB_TYPE]

    runner = start_runner(tmp_path, env)

    assert await runner.wait() == ExitCode.FATAL
    (event,) = runner.events()
    assert event["event"] == "settings.invalid"
    assert contract.ENV_JOB_TYPE in event["error"]
    assert contract.ENV_JOB_PARAMS in event["error"]
