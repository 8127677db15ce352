"""What a task reaches besides its params and database: Redis (locks) and the source.

Read from the pod's environment by default (the runner's own SYNC_REDIS_URL, and
SYNC_SOURCE_URL for the upstream source); tests and embedders pass them explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sync_runner import contract
from sync_runner.upstream import ENV_SOURCE_URL


@dataclass(frozen=True)
class Services:
    redis_url: str | None = None
    source_url: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Services:
        env = os.environ if environ is None else environ
        return cls(redis_url=env.get(contract.ENV_REDIS_URL) or None,
                   source_url=env.get(ENV_SOURCE_URL) or None)
