"""Where the API server is and how to authenticate: kubeconfig or in-cluster, read as
kubectl reads them.

$KUBECONFIG may list several files (`a:b`): they are merged as client-go merges them
(the first file to define a cluster, user or context by a name wins, and the first
current-context set wins; missing files are skipped). Users log in with a token, a
token file, a client certificate or an exec credential plugin (kube.credentials); the
in-cluster ServiceAccount token is a file re-read as it rotates.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from sync_operator.kube.credentials import (
    ExecConfig,
    ExecToken,
    FileToken,
    StaticToken,
    TokenSource,
)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class Connection(BaseModel):
    """Everything needed to open an authenticated HTTPS session to one API server."""

    model_config = ConfigDict(frozen=True)

    server: str
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None  # re-read as it rotates; wins over `token`
    exec: ExecConfig | None = None  # an exec credential plugin; wins over both
    exec_base: str | None = None  # the directory a relative plugin command is in
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    namespace: str = "default"
    # Act as another user (kubeconfig `as`/`as-groups`, kubectl --as): the API server
    # checks that the authenticated user may impersonate, then authorizes and audits
    # the request as this one.
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()

    def impersonation_headers(self) -> list[tuple[str, str]]:
        """Impersonate-User and one Impersonate-Group per group (a header may repeat)."""
        if self.impersonate is None:
            return []
        return [("Impersonate-User", self.impersonate),
                *(("Impersonate-Group", group) for group in self.impersonate_groups)]

    def as_user(self, user: str, groups: Sequence[str] = ()) -> Connection:
        """The same connection acting as `user` (in `groups`)."""
        return self.model_copy(update={"impersonate": user,
                                       "impersonate_groups": tuple(groups)})

    def token_source(self) -> TokenSource:
        """A fresh source of bearer tokens for one client (it caches what it gets)."""
        if self.exec is not None:
            cluster: dict[str, Any] = {"server": self.server,
                                       "insecure-skip-tls-verify": self.insecure}
            if self.ca_data:
                cluster["certificate-authority-data"] = base64.b64encode(
                    self.ca_data).decode()
            return ExecToken(self.exec, base=Path(self.exec_base or "."), cluster=cluster)
        if self.token_file:
            return FileToken(Path(self.token_file))
        return StaticToken(self.token)

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


class _Merged:
    """Several kubeconfig files seen as one, by client-go's merge rules; each entry
    keeps the directory of the file it came from, for its relative paths."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.label = ":".join(str(p) for p in paths)
        self.current_context: str | None = None
        self.entries: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {
            "clusters": {}, "users": {}, "contexts": {}}
        found = [p for p in paths if p.exists()] if len(paths) > 1 else list(paths)
        if not found:
            raise FileNotFoundError(2, "No such file", str(paths[0]))
        for path in found:
            self._take(path, _read(path))

    def _take(self, path: Path, doc: dict[str, Any]) -> None:
        if not self.current_context and doc.get("current-context"):
            self.current_context = str(doc["current-context"])
        for section, field in (("clusters", "cluster"), ("users", "user"),
                               ("contexts", "context")):
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") is not None:
                    value = entry.get(field)
                    self.entries[section].setdefault(
                        str(entry["name"]), (value if isinstance(value, dict) else {},
                                             path.parent))

    def named(self, section: str, name: str) -> tuple[dict[str, Any], Path] | None:
        return self.entries[section].get(name)


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"kubeconfig {path} is not valid YAML: {err}") from None
    if doc is None:
        return {}  # an empty file in a list contributes nothing
    if not isinstance(doc, dict):
        raise ValueError(f"kubeconfig {path} is not a kubeconfig (expected a mapping)")
    return doc


def kubeconfig_paths(value: str | os.PathLike[str]) -> list[Path]:
    """The files of a $KUBECONFIG-style value (`a:b`), in order, blanks dropped."""
    return [Path(p) for p in str(value).split(os.pathsep) if p]


def connection_from_kubeconfig(path: Path | Sequence[Path],
                               context: str | None = None) -> Connection:
    """Read one context of a kubeconfig, or of several merged as kubectl merges them."""
    paths = [path] if isinstance(path, Path) else list(path)
    merged = _Merged(paths)
    label = merged.label
    name = context or merged.current_context
    found_ctx = merged.named("contexts", name) if name else None
    if found_ctx is None:
        raise ValueError(f"kubeconfig {label}: no context named {name!r}")
    ctx = found_ctx[0]
    cluster_name = ctx.get("cluster")
    if not cluster_name:
        raise ValueError(f"kubeconfig {label}: context {name!r} names no cluster")
    found_cluster = merged.named("clusters", str(cluster_name))
    if found_cluster is None:
        raise ValueError(f"kubeconfig {label}: context {name!r} names cluster "
                         f"{cluster_name!r}, which is not in the file")
    cluster, cluster_base = found_cluster
    if not cluster.get("server"):
        raise ValueError(f"kubeconfig {label}: cluster {cluster_name!r} has no server")
    user: dict[str, Any] = {}  # a context without a user connects anonymously
    base = cluster_base
    user_name = ctx.get("user")
    if user_name:
        found_user = merged.named("users", str(user_name))
        if found_user is None:
            raise ValueError(f"kubeconfig {label}: context {name!r} names user "
                             f"{user_name!r}, which is not in the file")
        user, base = found_user
    exec_config = None
    if user.get("exec"):
        try:
            exec_config = ExecConfig.model_validate(user["exec"])
        except ValueError as err:
            raise ValueError(f"kubeconfig {label}: user {user_name!r} exec: {err}") from None
    if user.get("auth-provider"):
        provider = (user["auth-provider"] or {}).get("name")
        raise ValueError(f"kubeconfig {label}: user {user_name!r} uses the auth-provider "
                         f"{provider!r}, removed from kubectl; use its exec plugin "
                         "(e.g. kubelogin, gke-gcloud-auth-plugin)")
    token_file = str(_resolve(user["tokenFile"], base)) if user.get("tokenFile") else None
    return Connection(
        server=cluster["server"].rstrip("/"),
        ca_data=_data_or_file(cluster, "certificate-authority", cluster_base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=user.get("token"),
        token_file=token_file,
        exec=exec_config,
        exec_base=str(base) if exec_config else None,
        client_cert_data=_data_or_file(user, "client-certificate", base),
        client_key_data=_data_or_file(user, "client-key", base),
        namespace=ctx.get("namespace", "default"),
        impersonate=str(user["as"]) if user.get("as") else None,
        impersonate_groups=tuple(str(g) for g in user.get("as-groups") or ()),
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
        token_file=str(SERVICE_ACCOUNT_DIR / "token"),  # re-read: bound tokens rotate
        namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
    )


def load_connection(kubeconfig: str | os.PathLike[str] | None = None) -> Connection:
    """$KUBECONFIG (or the given path; either may list files, `a:b`), else in-cluster,
    else ~/.kube/config."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path and kubeconfig_paths(path):
        return connection_from_kubeconfig(kubeconfig_paths(path))
    if "KUBERNETES_SERVICE_HOST" in os.environ:
        return connection_in_cluster()
    return connection_from_kubeconfig(Path.home() / ".kube" / "config")
