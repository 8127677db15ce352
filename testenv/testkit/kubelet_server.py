"""The process kubelet's HTTPS endpoint: container logs, so `kubectl logs` works.

The API server answers `GET pods/{pod}/log` by calling the pod's node itself, at the
address and `status.daemonEndpoints.kubeletEndpoint.Port` the Node reports:
`/containerLogs/{namespace}/{pod}/{container}`, with its kubelet client certificate,
verifying ours against --kubelet-certificate-authority. This serves that one path from
the log files the kubelet writes, over TLS with a certificate of the cluster's CA, to a
client whose certificate that CA signed and whose name is the API server's: the
authorization (pods/log) is the API server's, so nothing else may read through here.

The files hold raw output, one per container (a restart appends to it): `previous`,
`timestamps`, `sinceSeconds` and `sinceTime` would need what they do not keep, and are
refused with a 400 that says so rather than answered wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

# The CN of the certificate kube-apiserver presents (--kubelet-client-certificate).
APISERVER_CLIENT = "kube-apiserver-kubelet-client"
# A DNS label or subdomain: what namespace, pod and container names are (no `/`, `_`).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_UNKEPT = ("previous", "timestamps", "sinceSeconds", "sinceTime")
_BLOCK = 64 * 1024
# How often a follow looks for new output (a file: nothing to wait on but time).
FOLLOW_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ServerTls:
    """The serving certificate and key, and the CA that signs the clients we accept."""

    cert: Path
    key: Path
    client_ca: Path

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.client_ca))
        ctx.load_cert_chain(str(self.cert), str(self.key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def tail_offset(f: BinaryIO, lines: int) -> int:
    """Where the last `lines` lines of `f` begin (a last line without its newline
    counts), read backwards in blocks: a long log is not read whole for its tail."""
    end = f.seek(0, 2)
    if lines <= 0:
        return end
    pos = end
    if end:
        f.seek(end - 1)
        if f.read(1) == b"\n":
            pos = end - 1  # the final newline ends the last line; it starts none
    seen = 0
    while pos > 0:
        start = max(0, pos - _BLOCK)
        f.seek(start)
        block = f.read(pos - start)
        at = len(block)
        while (at := block.rfind(b"\n", 0, at)) >= 0:
            seen += 1
            if seen == lines:
                return start + at + 1
        pos = start
    return 0


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _count(query: dict[str, str], key: str, minimum: int) -> int | None:
    if key not in query:
        return None
    try:
        value = int(query[key])
    except ValueError:
        raise web.HTTPBadRequest(text=f"{key} must be an integer, not {query[key]!r}") from None
    if value < minimum:
        raise web.HTTPBadRequest(text=f"{key} must be at least {minimum}")
    return value


class LogServer:
    """Serves /containerLogs/ from `logs_dir`; `running(ns, pod, container)` says whether
    that container runs now, which is how long a follow lasts."""

    def __init__(self, logs_dir: Path, running: Callable[[str, str, str], bool], *,
                 port: int, tls: ServerTls, host: str = "127.0.0.1",
                 clients: frozenset[str] = frozenset({APISERVER_CLIENT})) -> None:
        self.logs_dir, self.running = logs_dir, running
        self.host, self.port, self.tls, self.clients = host, port, tls, clients
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # reuse_address: a restarted kubelet binds the same port at once (the Node says it).
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls.context(),
                          reuse_address=True).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _client_name(self, request: web.Request) -> str | None:
        """The verified client certificate's common name."""
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return None

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        client = self._client_name(request)
        if client not in self.clients:
            raise web.HTTPForbidden(text=f"{client!r} may not read logs here: only the API "
                                         "server does, after its own authorization")
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        if not all(_NAME.match(n) for n in (ns, pod, container)):
            raise web.HTTPBadRequest(text="namespace, pod and container must be DNS names")
        query = dict(request.query)
        for key in _UNKEPT:
            if key in query and query[key] not in ("", "false", "0"):
                raise web.HTTPBadRequest(text=f"{key} is not supported by the process "
                                              "kubelet: its log files keep no timestamps "
                                              "and one file spans a container's restarts")
        follow = _flag(query.get("follow"))
        tail, limit = _count(query, "tailLines", 0), _count(query, "limitBytes", 1)
        path = self.logs_dir / f"{ns}_{pod}_{container}.log"
        try:
            f = path.open("rb")
        except FileNotFoundError:
            # A 400, as a real kubelet answers: the API server passes its text on.
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is '
                                          "waiting to start: no output yet") from None
        with f:
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            f.seek(0 if tail is None else tail_offset(f, tail))
            with contextlib.suppress(ConnectionResetError):
                await self._copy(f, response, request, follow=follow, limit=limit,
                                 alive=lambda: self.running(ns, pod, container))
        return response

    @staticmethod
    async def _copy(f: BinaryIO, response: web.StreamResponse, request: web.Request, *,
                    follow: bool, limit: int | None, alive: Callable[[], bool]) -> None:
        """Send what the file holds, then (follow) what it gains, until the container has
        ended and all it wrote is sent, `limit` bytes went, or the client has gone."""
        left = limit
        while True:
            chunk = f.read(_BLOCK if left is None else min(_BLOCK, left))
            if chunk:
                await response.write(chunk)
                if left is not None:
                    left -= len(chunk)
                    if left <= 0:
                        return
                continue
            if not follow:
                return
            if not alive():  # ended: the next turns take what it wrote last, then stop
                follow = False
                continue
            if request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
