"""Where each request's bearer token comes from, as client-go's transport gets it.

- a fixed token from the kubeconfig;
- a token file, read again every minute and after a 401: bound ServiceAccount tokens
  rotate (the kubelet rewrites the projected file before expiry), so a token read once
  at start-up stops working after an hour;
- an exec credential plugin (`users[].user.exec`: aws eks get-token, gke-gcloud-auth-
  plugin, kubelogin for AKS and OIDC), run again before the credential it returned
  expires and after a 401, with KUBERNETES_EXEC_INFO as client-go sets it.

Why not the official client's loader (`kubernetes.config`): it does all of this, but
importing it imports the whole generated client; measured here (kubernetes 37.0.2,
Python 3.11), +35 MiB RSS and 0.3-0.5 s per start, for `kubectl sync` on every command
and for an operator whose budget is 300 MB at 5,000 jobs. The protocol itself is small
(client.authentication.k8s.io ExecCredential, v1 and v1beta1).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

TOKEN_FILE_RELOAD_SECONDS = 60.0  # client-go's cachingTokenSource period for files
EXEC_EXPIRY_SKEW_SECONDS = 10.0  # run the plugin again this long before expiry
EXEC_TIMEOUT_SECONDS = 60.0
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1",
                     "client.authentication.k8s.io/v1beta1")


class CredentialError(Exception):
    """A credential could not be had (a plugin failed, printed nonsense, a file is gone);
    the message names the plugin or the file and says what to do."""


class TokenSource(Protocol):
    async def token(self) -> str | None: ...

    @property
    def expires_at(self) -> datetime | None:
        """When the token last given should be fetched again (None: not before a 401)."""

    def invalidate(self) -> None:
        """The server refused the last token (401): get a fresh one next time."""


class StaticToken:
    def __init__(self, value: str | None) -> None:
        self.value = value

    async def token(self) -> str | None:
        return self.value

    @property
    def expires_at(self) -> datetime | None:
        return None

    def invalidate(self) -> None:
        pass  # nothing fresher to be had


class FileToken:
    """A token file, re-read when `reload_seconds` have passed or after a 401."""

    def __init__(self, path: Path, *, reload_seconds: float = TOKEN_FILE_RELOAD_SECONDS,
                 ) -> None:
        self.path = path
        self.reload_seconds = reload_seconds
        self._value: str | None = None
        # Minus infinity, not 0: the monotonic clock starts near 0 at boot, so a machine
        # up for less than `reload_seconds` would never treat 0 as long ago.
        self._read_at = -math.inf

    async def token(self) -> str | None:
        now = time.monotonic()
        if self._value is None or now - self._read_at >= self.reload_seconds:
            try:
                self._value = self.path.read_text().strip()
            except OSError as err:
                if self._value is None:
                    raise CredentialError(f"token file {self.path}: {err.strerror}") \
                        from None
                # A rotation in progress (the kubelet swaps a symlink): keep the last one.
            self._read_at = now
        return self._value

    @property
    def expires_at(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(
            seconds=max(0.0, self.reload_seconds - (time.monotonic() - self._read_at)))

    def invalidate(self) -> None:
        self._read_at = -math.inf


class EnvVar(BaseModel):
    name: str
    value: str


class ExecConfig(BaseModel):
    """`users[].user.exec` of a kubeconfig (client-go's ExecConfig)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    command: str
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    api_version: str = Field(default="client.authentication.k8s.io/v1", alias="apiVersion")
    install_hint: str | None = Field(default=None, alias="installHint")
    provide_cluster_info: bool = Field(default=False, alias="provideClusterInfo")
    interactive_mode: str = Field(default="IfAvailable", alias="interactiveMode")


class ExecToken:
    """Runs an exec credential plugin for a token; reuses it until shortly before the
    expiry the plugin gave (none given: until a 401)."""

    def __init__(self, config: ExecConfig, *, base: Path,
                 cluster: dict[str, Any] | None = None) -> None:
        self.config = config
        self.base = base  # a relative command is relative to the kubeconfig's directory
        self.cluster = cluster  # handed to the plugin when provideClusterInfo asks
        self._value: str | None = None
        self._expires: float | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str | None:
        async with self._lock:
            fresh = self._value is not None and (
                self._expires is None or time.time() < self._expires - EXEC_EXPIRY_SKEW_SECONDS)
            if not fresh:
                self._value, self._expires = await self._run()
            return self._value

    @property
    def expires_at(self) -> datetime | None:
        if self._expires is None:
            return None
        return datetime.fromtimestamp(self._expires - EXEC_EXPIRY_SKEW_SECONDS, UTC)

    def invalidate(self) -> None:
        self._value = None

    def _exec_info(self) -> str:
        spec: dict[str, Any] = {"interactive": False}
        if self.config.provide_cluster_info and self.cluster is not None:
            spec["cluster"] = self.cluster
        return json.dumps({"apiVersion": self.config.api_version,
                           "kind": "ExecCredential", "spec": spec})

    def _command(self) -> str:
        command = self.config.command
        if os.sep in command and not os.path.isabs(command):
            return str(self.base / command)
        return command

    async def _run(self) -> tuple[str, float | None]:
        config = self.config
        if config.api_version not in EXEC_API_VERSIONS:
            raise CredentialError(f"exec plugin {config.command}: apiVersion "
                                  f"{config.api_version!r} is not one of {EXEC_API_VERSIONS}")
        env = dict(os.environ)
        env.update({e.name: e.value for e in config.env})
        env["KUBERNETES_EXEC_INFO"] = self._exec_info()
        hint = f" ({config.install_hint.strip()})" if config.install_hint else ""
        try:
            proc = await asyncio.create_subprocess_exec(
                self._command(), *config.args, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), EXEC_TIMEOUT_SECONDS)
        except FileNotFoundError:
            raise CredentialError(f"exec plugin {config.command} not found{hint}") from None
        except TimeoutError:
            proc.kill()
            raise CredentialError(f"exec plugin {config.command} did not answer in "
                                  f"{EXEC_TIMEOUT_SECONDS:.0f}s") from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip()[-500:]
            raise CredentialError(f"exec plugin {config.command} exited with "
                                  f"{proc.returncode}{hint}: {tail}")
        return parse_exec_credential(out, config)


def parse_exec_credential(out: bytes, config: ExecConfig) -> tuple[str, float | None]:
    """The token and its expiry (epoch seconds) from a plugin's ExecCredential."""
    where = f"exec plugin {config.command}"
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as err:
        raise CredentialError(f"{where} printed no ExecCredential JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise CredentialError(f"{where} printed no ExecCredential (kind is "
                              f"{doc.get('kind') if isinstance(doc, dict) else None!r})")
    if doc.get("apiVersion") != config.api_version:
        raise CredentialError(f"{where}: answered in {doc.get('apiVersion')!r}, asked for "
                              f"{config.api_version!r}")
    status = doc.get("status") or {}
    token = status.get("token")
    if not isinstance(token, str) or not token:
        if status.get("clientCertificateData"):
            raise CredentialError(f"{where}: client certificates from exec plugins are "
                                  "not supported; use a plugin that returns a token")
        raise CredentialError(f"{where}: status.token is missing")
    expiry = status.get("expirationTimestamp")
    if expiry is None:
        return token, None
    try:
        when = datetime.fromisoformat(str(expiry).replace("Z", "+00:00"))
    except ValueError:
        raise CredentialError(f"{where}: status.expirationTimestamp {expiry!r} is not "
                              "RFC 3339") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return token, when.timestamp()
