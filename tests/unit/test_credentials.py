"""Bearer tokens as kubectl gets them (sync_operator.kube.credentials): token files that
rotate, and exec credential plugins, run for real as local scripts."""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_operator.kube.config import connection_from_kubeconfig, load_connection
from sync_operator.kube.credentials import (
    CredentialError,
    ExecConfig,
    ExecToken,
    FileToken,
    parse_exec_credential,
)

V1 = "client.authentication.k8s.io/v1"


def plugin(tmp_path: Path, *, token: str = "t-{n}", expires_in: float | None = 3600,
           api_version: str = V1, exit_code: int = 0, raw: str | None = None) -> Path:
    """An exec plugin: prints an ExecCredential whose token counts its runs ({n}), and
    keeps what it was given (KUBERNETES_EXEC_INFO, its args, an env var) in a file."""
    script = tmp_path / "plugin.py"
    expiry = None if expires_in is None else (
        datetime.now(UTC) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    script.write_text(f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
runs = Path({str(tmp_path / "runs")!r})
n = len(runs.read_text().splitlines()) + 1 if runs.exists() else 1
with runs.open("a") as out:
    out.write(json.dumps({{"info": os.environ.get("KUBERNETES_EXEC_INFO"),
                           "args": sys.argv[1:], "region": os.environ.get("REGION")}}) + "\\n")
if {exit_code}:
    print("token expired, run: cloud login", file=sys.stderr)
    sys.exit({exit_code})
raw = {raw!r}
if raw is not None:
    print(raw)
    sys.exit(0)
status = {{"token": {token!r}.format(n=n)}}
if {expiry!r}:
    status["expirationTimestamp"] = {expiry!r}
print(json.dumps({{"apiVersion": {api_version!r}, "kind": "ExecCredential", "status": status}}))
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "runs"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def exec_kubeconfig(tmp_path: Path, exec_stanza: dict[str, Any]) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "eks",
        "clusters": [{"name": "c", "cluster": {"server": "https://k.example:443"}}],
        "users": [{"name": "u", "user": {"exec": exec_stanza}}],
        "contexts": [{"name": "eks", "context": {"cluster": "c", "user": "u"}}]}))
    return path


# -- exec plugins ----------------------------------------------------------------------------


async def test_a_kubeconfig_exec_plugin_is_run_with_its_args_env_and_exec_info(
        tmp_path: Path) -> None:
    script = plugin(tmp_path)
    conn = connection_from_kubeconfig(exec_kubeconfig(tmp_path, {
        "apiVersion": V1, "command": str(script), "args": ["token", "-i", "prod"],
        "env": [{"name": "REGION", "value": "eu-west-1"}], "provideClusterInfo": True,
        "interactiveMode": "Never"}))
    source = conn.token_source()
    assert await source.token() == "t-1"
    assert await source.token() == "t-1"  # cached until shortly before it expires
    [seen] = runs(tmp_path)
    assert seen["args"] == ["token", "-i", "prod"]
    assert seen["region"] == "eu-west-1"
    info = json.loads(seen["info"])
    assert info["kind"] == "ExecCredential"
    assert info["apiVersion"] == V1
    assert info["spec"]["cluster"]["server"] == "https://k.example:443"
    assert info["spec"]["interactive"] is False


async def test_a_relative_plugin_command_is_relative_to_the_kubeconfig(
        tmp_path: Path) -> None:
    plugin(tmp_path)
    conn = connection_from_kubeconfig(exec_kubeconfig(
        tmp_path, {"apiVersion": V1, "command": "./plugin.py"}))
    assert await conn.token_source().token() == "t-1"


async def test_the_plugin_runs_again_after_a_401_and_before_expiry(tmp_path: Path) -> None:
    source = ExecToken(ExecConfig(command=str(plugin(tmp_path))), base=tmp_path)
    assert await source.token() == "t-1"
    source.invalidate()  # the server said 401
    assert await source.token() == "t-2"
    (tmp_path / "soon").mkdir()
    soon = ExecToken(ExecConfig(command=str(plugin(tmp_path / "soon", expires_in=5))),
                     base=tmp_path)
    assert await soon.token() == "t-1"
    assert await soon.token() == "t-2"  # within the expiry skew: not reused


async def test_a_failing_plugin_is_an_error_naming_it_with_its_hint_and_stderr(
        tmp_path: Path) -> None:
    source = ExecToken(ExecConfig.model_validate({
        "command": str(plugin(tmp_path, exit_code=3)),
        "installHint": "install it with: pip install cloud-cli"}), base=tmp_path)
    with pytest.raises(CredentialError) as raised:
        await source.token()
    message = str(raised.value)
    assert "plugin.py exited with 3" in message
    assert "pip install cloud-cli" in message
    assert "run: cloud login" in message


async def test_a_missing_plugin_says_so_with_the_install_hint(tmp_path: Path) -> None:
    source = ExecToken(ExecConfig.model_validate({
        "command": "aws-iam-authenticator-missing", "installHint": "brew install it"}),
        base=tmp_path)
    with pytest.raises(CredentialError, match=r"not found.*brew install it"):
        await source.token()


@pytest.mark.parametrize(("raw", "complaint"), [
    ("not json", "no ExecCredential JSON"),
    (json.dumps({"kind": "Pod"}), "no ExecCredential"),
    (json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1",
                 "status": {"token": "x"}}), "answered in"),
    (json.dumps({"kind": "ExecCredential", "apiVersion": V1, "status": {}}),
     "status.token is missing"),
    (json.dumps({"kind": "ExecCredential", "apiVersion": V1,
                 "status": {"clientCertificateData": "---"}}), "not supported"),
    (json.dumps({"kind": "ExecCredential", "apiVersion": V1,
                 "status": {"token": "x", "expirationTimestamp": "soon"}}), "RFC 3339"),
])
def test_what_a_plugin_prints_is_checked(raw: str, complaint: str) -> None:
    with pytest.raises(CredentialError, match=complaint):
        parse_exec_credential(raw.encode(), ExecConfig(command="p"))


def test_a_credential_without_expiry_is_kept_until_a_401() -> None:
    token, expiry = parse_exec_credential(json.dumps(
        {"kind": "ExecCredential", "apiVersion": V1, "status": {"token": "x"}}).encode(),
        ExecConfig(command="p"))
    assert (token, expiry) == ("x", None)


def test_a_bad_exec_stanza_is_an_error_naming_the_user(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="user 'u' exec") as raised:
        connection_from_kubeconfig(exec_kubeconfig(tmp_path, {"args": ["no", "command"]}))
    assert "command" in str(raised.value)


# -- token files -------------------------------------------------------------------------------


async def test_a_token_file_is_read_again_after_its_period_and_after_a_401(
        tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    source = FileToken(path, reload_seconds=3600)
    assert await source.token() == "first"
    path.write_text("rotated\n")  # the kubelet rotates the bound token
    assert await source.token() == "first"  # within its period
    source.invalidate()
    assert await source.token() == "rotated"
    eager = FileToken(path, reload_seconds=0)
    assert await eager.token() == "rotated"
    path.write_text("again\n")
    assert await eager.token() == "again"


async def test_a_token_file_briefly_missing_keeps_the_last_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("kept\n")
    source = FileToken(path, reload_seconds=0)
    assert await source.token() == "kept"
    os.remove(path)
    assert await source.token() == "kept"
    with pytest.raises(CredentialError, match="token file"):
        await FileToken(tmp_path / "never").token()


# -- KUBECONFIG=a:b ----------------------------------------------------------------------------


def _config(path: Path, **doc: Any) -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", **doc}))
    return path


def test_a_kubeconfig_list_is_merged_first_definition_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "token").write_text("from-b-dir\n")
    first = _config(tmp_path / "a.yaml", **{
        "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod:6443"}}],
        "users": [{"name": "me", "user": {"token": "from-a"}}]})
    second = _config(tmp_path / "b" / "b.yaml", **{
        "current-context": "ignored",
        "clusters": [{"name": "prod", "cluster": {"server": "https://shadowed:6443"}}],
        "users": [{"name": "me", "user": {"token": "shadowed"}},
                  {"name": "file-user", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "me",
                                                  "namespace": "team"}},
                     {"name": "other", "context": {"cluster": "prod",
                                                   "user": "file-user"}}]})
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(
        [str(tmp_path / "missing.yaml"), str(first), str(second)]))
    conn = load_connection()
    assert (conn.server, conn.token, conn.namespace) == ("https://prod:6443", "from-a", "team")
    other = connection_from_kubeconfig([first, second], "other")
    assert other.token_file == str(tmp_path / "b" / "token")  # relative to its own file


def test_a_kubeconfig_list_of_missing_files_is_a_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        connection_from_kubeconfig([tmp_path / "x", tmp_path / "y"])


def test_an_auth_provider_user_is_told_to_use_its_exec_plugin(tmp_path: Path) -> None:
    path = _config(tmp_path / "config", **{
        "current-context": "g",
        "clusters": [{"name": "c", "cluster": {"server": "https://k:443"}}],
        "users": [{"name": "u", "user": {"auth-provider": {"name": "gcp"}}}],
        "contexts": [{"name": "g", "context": {"cluster": "c", "user": "u"}}]})
    with pytest.raises(ValueError, match="gke-gcloud-auth-plugin"):
        connection_from_kubeconfig(path)


def test_a_kubeconfig_user_may_act_as_another_as_kubectl_reads_as_and_as_groups(
        tmp_path: Path) -> None:
    path = _config(tmp_path / "config", **{
        "current-context": "ops",
        "clusters": [{"name": "c", "cluster": {"server": "https://k:443"}}],
        "users": [{"name": "admin", "user": {"token": "t", "as": "alice",
                                             "as-groups": ["team-a", "oncall"]}}],
        "contexts": [{"name": "ops", "context": {"cluster": "c", "user": "admin"}}]})
    conn = connection_from_kubeconfig(path)
    assert conn.impersonation_headers() == [
        ("Impersonate-User", "alice"), ("Impersonate-Group", "team-a"),
        ("Impersonate-Group", "oncall")]
    assert conn.as_user("bob").impersonation_headers() == [("Impersonate-User", "bob")]
    assert conn.as_user("bob").token == "t"  # authenticated as before
    plain = conn.model_copy(update={"impersonate": None, "impersonate_groups": ()})
    assert plain.impersonation_headers() == []
