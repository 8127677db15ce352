"""Readiness, liveness and startup probes, run as the kubelet's prober runs them.

httpGet (HTTP or HTTPS, the latter unverified as the kubelet does; 200-399 passes),
tcpSocket (a connection opens) and exec (the command exits 0, run in the container's
mount namespace through `nsenter`). Each probe keeps its own rhythm:
initialDelaySeconds, periodSeconds, timeoutSeconds, and successThreshold /
failureThreshold before its verdict flips. The verdict goes to a callback: readiness
drives the pod's Ready condition (and so its Endpoints), liveness and startup
failures restart the container.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

Obj = dict[str, Any]


def _port(value: Any, container: Obj) -> int:
    """A probe port: a number, or the name of one of the container's ports."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"probe port {value!r} names no port of container {container['name']}")


@dataclass
class Probe:
    """One probe of one container, with the thresholds that turn checks into a verdict."""

    spec: Obj
    container: Obj
    host: str
    exec_in: Callable[[], int | None] = lambda: None  # the container's pid, for exec

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeoutSeconds", 1))

    async def check(self) -> bool:
        try:
            return await asyncio.wait_for(self._check(), self.timeout)
        except (TimeoutError, OSError, aiohttp.ClientError, ValueError):
            return False

    async def _check(self) -> bool:
        if "httpGet" in self.spec:
            get = self.spec["httpGet"]
            scheme = str(get.get("scheme", "HTTP")).lower()
            host = get.get("host") or self.host
            url = f"{scheme}://{host}:{_port(get['port'], self.container)}" \
                  f"{get.get('path', '/')}"
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            # HTTPS is not verified, as the kubelet's prober does not verify it.
            async with aiohttp.ClientSession() as session, session.get(
                    url, headers=headers, ssl=False, allow_redirects=False) as resp:
                return 200 <= resp.status < 400
        if "tcpSocket" in self.spec:
            sock = self.spec["tcpSocket"]
            _, writer = await asyncio.open_connection(
                sock.get("host") or self.host, _port(sock["port"], self.container))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        if "exec" in self.spec:
            pid = self.exec_in()
            argv = list(self.spec["exec"].get("command") or [])
            if pid is not None:
                argv = ["nsenter", "-t", str(pid), "-m", "--", *argv]
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            try:
                return await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
        raise ValueError("a probe needs httpGet, tcpSocket or exec")

    async def run(self, on_verdict: Callable[[bool], None], *, initial: bool) -> None:
        """Check forever; call `on_verdict` each time the verdict flips (from `initial`)."""
        success_needed = int(self.spec.get("successThreshold", 1))
        failure_needed = int(self.spec.get("failureThreshold", 3))
        verdict, streak = initial, 0
        await asyncio.sleep(float(self.spec.get("initialDelaySeconds", 0)))
        while True:
            passed = await self.check()
            if passed == verdict:
                streak = 0
            else:
                streak += 1
                if streak >= (success_needed if passed else failure_needed):
                    verdict, streak = passed, 0
                    on_verdict(verdict)
            await asyncio.sleep(self.period)
