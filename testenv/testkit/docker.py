"""Whether a Docker engine runs here: a `docker` CLI alone (this machine has one) is not
enough for kind, which needs the daemon to answer."""

from __future__ import annotations

import shutil
import subprocess


def docker_engine() -> str | None:
    """The docker CLI's path if its engine answers `docker info`, else None."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        answered = subprocess.run([docker, "info"], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    return docker if answered.returncode == 0 else None
