"""Run `kubectl sync ...` as a user runs it: the real kubectl finds the plugin on PATH,
stdin is not a terminal and output goes to a pipe."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def ksync(env: dict[str, str], *args: str, timeout: float = 60.0) -> Result:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "sync", *args, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"kubectl sync {' '.join(args)} still running after {timeout}s;"
                             f"\nstdout:\n{out.decode()}\nstderr:\n{err.decode()}") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def ok(env: dict[str, str], *args: str, timeout: float = 60.0) -> str:
    """The output of a command that must succeed."""
    result = await ksync(env, *args, timeout=timeout)
    assert result.code == 0, f"kubectl sync {' '.join(args)} -> {result}"
    return result.out
