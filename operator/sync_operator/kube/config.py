"""Where the API server is and how to authenticate: kubeconfig or in-cluster."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Connection(BaseModel):
    """Everything needed to open an authenticated HTTPS session to one API server."""

    model_config = ConfigDict(frozen=True)

    server: str
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the cluster CA and presenting the client cert, if any.

        With `insecure` (insecure-skip-tls-verify) the server is not verified at all,
        but a client certificate is still presented: it is how such a user logs in."""
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False  # must be off before verify_mode can be
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        if self.client_cert_data and self.client_key_data:
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
                cert.write_bytes(self.client_cert_data)
                key.write_bytes(self.client_key_data)
                ctx.load_cert_chain(cert, key)
        return ctx


def _resolve(path: str, base: Path) -> Path:
    """A path from a kubeconfig: a relative one is relative to the kubeconfig's
    directory, as kubectl resolves it (client-go ResolvePaths)."""
    return base / Path(path)  # an absolute path stays itself


def _data_or_file(entry: dict[str, Any], name: str, base: Path) -> bytes | None:
    if entry.get(f"{name}-data"):
        return base64.b64decode(entry[f"{name}-data"])
    if entry.get(name):
        return _resolve(entry[name], base).read_bytes()
    return None


def _named(doc: dict[str, Any], section: str, field: str, name: str) -> dict[str, Any] | None:
    """The `field` of the entry called `name` in the kubeconfig list `section`."""
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(field)
            return value if isinstance(value, dict) else {}
    return None


def connection_from_kubeconfig(path: Path, context: str | None = None) -> Connection:
    """Read one context of a kubeconfig file (token or client-certificate users)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"kubeconfig {path} is not valid YAML: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"kubeconfig {path} is not a kubeconfig (expected a mapping)")
    name = context or doc.get("current-context")
    ctx = _named(doc, "contexts", "context", name) if name else None
    if ctx is None:
        raise ValueError(f"kubeconfig {path}: no context named {name!r}")
    cluster_name = ctx.get("cluster")
    if not cluster_name:
        raise ValueError(f"kubeconfig {path}: context {name!r} names no cluster")
    cluster = _named(doc, "clusters", "cluster", cluster_name)
    if cluster is None:
        raise ValueError(f"kubeconfig {path}: context {name!r} names cluster "
                         f"{cluster_name!r}, which is not in the file")
    if not cluster.get("server"):
        raise ValueError(f"kubeconfig {path}: cluster {cluster_name!r} has no server")
    user: dict[str, Any] = {}  # a context without a user connects anonymously
    user_name = ctx.get("user")
    if user_name:
        found = _named(doc, "users", "user", user_name)
        if found is None:
            raise ValueError(f"kubeconfig {path}: context {name!r} names user "
                             f"{user_name!r}, which is not in the file")
        user = found
    base = path.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _resolve(user["tokenFile"], base).read_text().strip()
    return Connection(
        server=cluster["server"].rstrip("/"),
        ca_data=_data_or_file(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=token,
        client_cert_data=_data_or_file(user, "client-certificate", base),
        client_key_data=_data_or_file(user, "client-key", base),
        namespace=ctx.get("namespace", "default"),
    )


def connection_in_cluster() -> Connection:
    """The pod's own ServiceAccount, as mounted by the kubelet."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host and not host.startswith("["):  # IPv6, joined as net.JoinHostPort does
        host = f"[{host}]"
    return Connection(
        server=f"https://{host}:{port}",
        ca_data=(SERVICE_ACCOUNT_DIR / "ca.crt").read_bytes(),
        token=(SERVICE_ACCOUNT_DIR / "token").read_text().strip(),
        namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
    )


def load_connection(kubeconfig: str | os.PathLike[str] | None = None) -> Connection:
    """$KUBECONFIG (or the given path), else in-cluster, else ~/.kube/config."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        return connection_from_kubeconfig(Path(path))
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        return connection_in_cluster()
    return connection_from_kubeconfig(Path.home() / ".kube" / "config")
