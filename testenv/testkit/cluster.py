"""The local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager
(all from the testenv binary) and the process kubelet, each on a free loopback port;
and an OIDC issuer the API server trusts (testkit.oidc).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.build import ensure_built
from testkit.images import local_entrypoints
from testkit.kubeconfig import write_kubeconfig
from testkit.kubelet import IN_PROCESS_SIM
from testkit.oidc import OidcIssuer
from testkit.pki import Pki
from testkit.ports import free_port, port_open, wait_until
from testkit.process import ManagedProcess
from testkit.sim_runner import SIM_IMAGE

NODE_NAME = "local-node"
# Controllers the project relies on, its chart's objects included (a Deployment needs
# its ReplicaSet, a webhook Service its endpoints, a projected token volume the
# namespace's kube-root-ca.crt); the rest of the controller-manager stays off so
# start-up is quick and nothing unexpected touches test objects.
CONTROLLERS = [
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "disruption-controller",
    "pod-garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
]
# Static users (token file): an admin, the components, and two people for audit tests.
STATIC_USERS: dict[str, list[str]] = {
    "admin": ["system:masters"],
    "system:kube-controller-manager": ["system:masters"],
    "system:node:" + NODE_NAME: ["system:masters"],
    "alice": ["sync-users"],
    "bob": ["sync-users"],
    "carol": ["sync-viewers"],  # bound to `view` where a test wants a read-only user
}


@dataclass
class LocalCluster:
    """Starts and stops the control plane; hands out kubeconfigs."""

    root: Path
    # The kubelet's image table (image key -> entrypoint argv), by default the project's
    # (deploy/images.yaml); the sim image is always in it, run in-process, unless the
    # caller maps that key to something else.
    images: dict[str, list[str]] = field(default_factory=local_entrypoints)
    with_kubelet: bool = True
    # A local OIDC issuer (testkit.oidc) the API server trusts by --authentication-config:
    # ID tokens it mints authenticate as oidc:<email>. Started before the API server and
    # kept for the cluster's lifetime.
    with_oidc: bool = True
    # Extra flags, e.g. a higher --kube-api-qps for the scale benchmark (later flags win).
    controller_manager_args: list[str] = field(default_factory=list)
    kubelet_args: list[str] = field(default_factory=list)
    etcd_port: int = field(default_factory=free_port)
    apiserver_port: int = field(default_factory=free_port)
    # The kubelet's log endpoint (pods/log); the same across kubelet restarts, as the
    # Node reports it and the API server dials it.
    kubelet_port: int = field(default_factory=free_port)
    oidc_port: int = field(default_factory=free_port)
    tokens: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    startup_seconds: float = 0.0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def oidc(self) -> OidcIssuer:
        """The issuer (mint ID tokens with `cluster.oidc.mint(email, groups=...)`)."""
        return OidcIssuer(self.root / "oidc", self.oidc_port)

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfigs" / "admin.yaml"

    def start(self) -> None:
        started = time.monotonic()
        binary = str(ensure_built())
        self.pki.ensure()
        self._write_tokens()
        logs = self.root / "logs"

        etcd = ManagedProcess("etcd", [
            binary, "etcd", "--data-dir", str(self.root / "etcd"),
            "--client-port", str(self.etcd_port), "--peer-port", str(free_port()),
        ], logs / "etcd.log")
        authn: list[str] = []
        if self.with_oidc:  # starts with etcd; up before the API server, which discovers
            self.oidc.ensure(self.pki)  # it at once (else it retries every 10 s)
            issuer = self.oidc.process(logs / "oidc-issuer.log")
            issuer.start()
            self.processes["oidc-issuer"] = issuer
            authn = [f"--authentication-config={self.oidc.authentication_config_file}"]
        etcd.start()
        self.processes["etcd"] = etcd
        wait_until(lambda: self._alive(etcd) and port_open(self.etcd_port), 60, "etcd")
        if self.with_oidc:
            wait_until(lambda: self._alive(issuer) and port_open(self.oidc_port), 30,
                       "OIDC issuer")

        apiserver = ManagedProcess("kube-apiserver", [
            binary, "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--secure-port={self.apiserver_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--token-auth-file={self.root / 'tokens.csv'}",
            *authn,
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki.sa_pub}",
            f"--service-account-signing-key-file={self.pki.sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--endpoint-reconciler-type=none",
            # Webhooks and aggregated APIs registered by Service reference are reached
            # at their endpoints (pod IPs): there is no kube-proxy to route a ClusterIP.
            "--enable-aggregator-routing=true",
            f"--cert-dir={self.root / 'apiserver-certs'}",
            # pods/log: the API server calls the kubelet at the Node's InternalIP, with a
            # client certificate, and verifies the kubelet's serving certificate.
            f"--kubelet-client-certificate={self.pki.kubelet_client_cert}",
            f"--kubelet-client-key={self.pki.kubelet_client_key}",
            f"--kubelet-certificate-authority={self.pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            "--v=1",
        ], logs / "kube-apiserver.log")
        apiserver.start()
        self.processes["kube-apiserver"] = apiserver
        wait_until(lambda: self._alive(apiserver) and self._readyz(), 90, "kube-apiserver")

        cm_config = write_kubeconfig(
            self.root / "kubeconfigs" / "controller-manager.yaml", self.server,
            self.pki.ca_cert, "system:kube-controller-manager",
            self.tokens["system:kube-controller-manager"])
        cm = ManagedProcess("kube-controller-manager", [
            binary, "kube-controller-manager",
            f"--kubeconfig={cm_config}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={self.pki.sa_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            "--secure-port=0",
            "--concurrent-job-syncs=10",
            "--v=1",
            *self.controller_manager_args,
        ], logs / "kube-controller-manager.log")
        cm.start()
        self.processes["kube-controller-manager"] = cm

        if self.with_kubelet:
            self.start_kubelet()
        wait_until(lambda: self._alive(cm) and self._default_service_account(), 60,
                   "default ServiceAccount (controller-manager)")
        self.startup_seconds = time.monotonic() - started

    def start_kubelet(self) -> None:
        config = write_kubeconfig(
            self.root / "kubeconfigs" / "kubelet.yaml", self.server, self.pki.ca_cert,
            "system:node:" + NODE_NAME, self.tokens["system:node:" + NODE_NAME])
        images = self.root / "images.json"
        images.write_text(json.dumps({SIM_IMAGE: [IN_PROCESS_SIM], **self.images}))
        kubelet = ManagedProcess("process-kubelet", [
            sys.executable, "-m", "testkit.kubelet",
            "--kubeconfig", str(config), "--node-name", NODE_NAME,
            "--state-dir", str(self.root / "kubelet"), "--images", str(images),
            "--port", str(self.kubelet_port), "--tls-cert-file", str(self.pki.kubelet_cert),
            "--tls-private-key-file", str(self.pki.kubelet_key),
            "--client-ca-file", str(self.pki.ca_cert),
            *self.kubelet_args,
        ], self.root / "logs" / "kubelet.log", env=dict(os.environ))
        kubelet.start()
        self.processes["process-kubelet"] = kubelet
        wait_until(lambda: self._alive(kubelet) and self._node_ready()
                   and port_open(self.kubelet_port), 30, "process kubelet")

    def restart_apiserver(self, down_seconds: float = 0.0) -> None:
        """Stop kube-apiserver (SIGTERM), wait, start it again on the same port.

        For fault drills: every client (controller-manager, kubelet, operator) sees its
        connections and watches drop and must come back by itself.
        """
        apiserver = self.processes["kube-apiserver"]
        apiserver.stop()
        time.sleep(down_seconds)
        apiserver.start()
        wait_until(lambda: self._alive(apiserver) and self._readyz(), 90, "kube-apiserver")

    def restart_kubelet(self, *, crash: bool = True,
                        while_down: Callable[[], None] | None = None) -> None:
        """Kill (or stop) the process kubelet and start a new one; the pods' processes
        are in sessions of their own and live on, as containers outlive a real kubelet,
        and the new one adopts them. `while_down` runs in between: what a drill makes
        happen while no kubelet looks (a pod deleted, a container exiting)."""
        kubelet = self.processes["process-kubelet"]
        if crash and kubelet.proc is not None and kubelet.proc.poll() is None:
            kubelet.proc.kill()  # the kubelet alone, not its group
            kubelet.proc.wait(5)
        else:
            kubelet.stop()
        try:
            if while_down is not None:
                while_down()
        finally:  # a failed drill must not leave the pods without a kubelet
            self.start_kubelet()

    async def restart_kubelet_async(
            self, while_down: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """restart_kubelet from async code: `while_down` runs on the caller's loop while
        no kubelet runs (the restart itself blocks, so it runs in a thread)."""
        loop = asyncio.get_running_loop()

        def hook() -> None:
            if while_down is not None:
                asyncio.run_coroutine_threadsafe(while_down(), loop).result(120)

        await asyncio.to_thread(self.restart_kubelet, while_down=hook)

    def stop(self) -> None:
        for name in ("process-kubelet", "kube-controller-manager", "kube-apiserver", "etcd",
                     "oidc-issuer"):
            proc = self.processes.get(name)
            if proc:
                proc.stop()

    # -- kubeconfigs -------------------------------------------------------------------

    def user_kubeconfig(self, user: str, namespace: str = "default") -> Path:
        """A kubeconfig for one of STATIC_USERS (authenticated by static token)."""
        return write_kubeconfig(self.root / "kubeconfigs" / f"user-{user}.yaml", self.server,
                                self.pki.ca_cert, user, self.tokens[user], namespace)

    def service_account_kubeconfig(self, namespace: str, name: str,
                                   expiration_seconds: int = 86400) -> Path:
        """A kubeconfig holding a bound token for a ServiceAccount (TokenRequest API)."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds}}
        token = self.admin_request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body,
        )["status"]["token"]
        return write_kubeconfig(
            self.root / "kubeconfigs" / f"sa-{namespace}-{name}.yaml", self.server,
            self.pki.ca_cert, f"system:serviceaccount:{namespace}:{name}", token, namespace)

    # -- plumbing ----------------------------------------------------------------------

    def admin_request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A synchronous admin call, for harness set-up outside any event loop."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.server + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.tokens['admin']}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self._ssl(), timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read() or b"{}")
            return result

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki.ca_cert))

    def _write_tokens(self) -> None:
        if not self.tokens:
            self.tokens = {user: secrets.token_hex(16) for user in STATIC_USERS}
        lines = [f'{self.tokens[u]},{u},uid-{i},"{",".join(g)}"'
                 for i, (u, g) in enumerate(STATIC_USERS.items())]
        (self.root / "tokens.csv").write_text("\n".join(lines) + "\n")
        write_kubeconfig(self.admin_kubeconfig, self.server, self.pki.ca_cert, "admin",
                         self.tokens["admin"])

    @staticmethod
    def _alive(proc: ManagedProcess) -> bool:
        proc.check_alive()
        return True

    def _readyz(self) -> bool:
        req = urllib.request.Request(
            self.server + "/readyz", headers={"Authorization": f"Bearer {self.tokens['admin']}"})
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _default_service_account(self) -> bool:
        try:
            self.admin_request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
            return True
        except (urllib.error.URLError, OSError):
            return False

    def _node_ready(self) -> bool:
        try:
            node = self.admin_request("GET", f"/api/v1/nodes/{NODE_NAME}")
        except (urllib.error.URLError, OSError):
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def main() -> None:
    """`python -m testkit.cluster --dir D`: a local cluster in a process of its own (what
    the end-to-end tests reach through a KUBECONFIG only). Prints the admin kubeconfig's
    path once the cluster is ready and runs until SIGTERM or SIGINT."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dir", required=True, help="state directory of the cluster")
    args = parser.parse_args()
    cluster = LocalCluster(Path(args.dir))
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster.start()
    try:
        print(cluster.admin_kubeconfig, flush=True)
        while not stop:  # a flag polled, not pause(): a signal may land before it
            time.sleep(0.2)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
