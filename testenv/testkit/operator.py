"""Runs the operator as a real process against the local stack (tests and demo)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from testkit.process import ManagedProcess


@dataclass
class OperatorProcess:
    """`python -m sync_operator` with settings passed as SYNC_OPERATOR_* variables."""

    kubeconfig: Path
    log_path: Path
    settings: dict[str, str] = field(default_factory=dict)
    process: ManagedProcess | None = None
    starts: int = 0

    def start(self) -> None:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.update({f"SYNC_OPERATOR_{k.upper()}": v for k, v in self.settings.items()})
        self.starts += 1
        self.process = ManagedProcess(
            f"sync-operator-{self.starts}", [sys.executable, "-m", "sync_operator"],
            self.log_path, env=env)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=15)

    def kill(self) -> None:
        """SIGKILL: the operator dies at an arbitrary moment, as in a node crash."""
        if self.process is not None:
            self.process.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.process.log_tail(200) if self.process else ""
