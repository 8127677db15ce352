"""What every command gets: its parsed arguments, its target, an open API client, a clock."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime

from sync_operator.cli.connect import Target
from sync_operator.kube import KubeClient


@dataclass
class Context:
    args: argparse.Namespace
    target: Target
    client: KubeClient

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)
