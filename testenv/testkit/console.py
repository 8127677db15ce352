"""The console's identity on the local stack, and the console as a process of its own.

`CONSOLE_RULES` is what the console's ServiceAccount may do (the chart's console roles,
templates/console.yaml, folded into one ClusterRole): review tokens and access, list and
watch SyncJobs for its one watch. `install_console_account` creates that ServiceAccount
and binds it; `ConsoleProcess` runs `python -m sync_operator.console` under it (the
benchmark measures the console's CPU apart from its own this way; the tests serve the
console in their own process, tests/console/conftest.py).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, SERVICEACCOUNTS
from testkit.ports import free_port
from testkit.process import ManagedProcess

CONSOLE_ACCOUNT = "sync-console"
CONSOLE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
     "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"],
     "verbs": ["create"]},
    {"apiGroups": ["sync.jobcontrol.io"], "resources": ["syncjobs"],
     "verbs": ["list", "watch"]},
]


async def install_console_account(kube: KubeClient, namespace: str,
                                  name: str = CONSOLE_ACCOUNT) -> str:
    """The console's ServiceAccount in `namespace`, bound cluster-wide to CONSOLE_RULES.
    Returns the name of the ClusterRole and its binding (for the caller's clean-up)."""
    role = f"{name}-{namespace}"
    await kube.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": name}}, namespace)
    await kube.create(CLUSTERROLES, {"apiVersion": "rbac.authorization.k8s.io/v1",
                                     "kind": "ClusterRole", "metadata": {"name": role},
                                     "rules": CONSOLE_RULES})
    await kube.create(CLUSTERROLEBINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    return role


@dataclass
class ConsoleProcess:
    """`python -m sync_operator.console` with settings passed as SYNC_CONSOLE_* variables
    (listening on 127.0.0.1, plain HTTP cookies; `settings` override or add)."""

    kubeconfig: Path
    log_path: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        assert self.process.proc is not None
        return self.process.proc.pid

    def start(self) -> None:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        settings = {"listen_addr": "127.0.0.1", "port": str(self.port),
                    "cookie_secure": "false", **self.settings}
        env.update({f"SYNC_CONSOLE_{k.upper()}": v for k, v in settings.items()})
        self.process = ManagedProcess("sync-console", [
            sys.executable, "-m", "sync_operator.console"], self.log_path, env=env)
        self.process.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /healthz answers 200 (the console's watch has listed the SyncJobs)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            self.process.check_alive()
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"console not ready after {timeout:.0f}s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=15)

    def log(self) -> str:
        return self.process.log_tail(200) if self.process else ""
