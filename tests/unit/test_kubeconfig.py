"""The kubeconfig and in-cluster readers (sync_operator.kube.config).

Kubeconfigs are written as YAML into tmp_path; certificates are real ones made
by testkit.pki (openssl), and the TLS tests do a real handshake against a local
TLS server that requires a client certificate.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_operator.kube import config as kube_config
from sync_operator.kube.config import (
    Connection,
    connection_from_kubeconfig,
    connection_in_cluster,
    load_connection,
)
from testkit.pki import Pki

CA_NAME = "sync-operator-testenv-ca"  # testkit.pki's CA subject
CLIENT_CN = "alice"
WAIT = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a serving cert for 127.0.0.1 and a client cert for alice, all real."""
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.ensure()
    pki.issue(pki.dir / "alice.crt", pki.dir / "alice.key", CLIENT_CN, ["DNS:alice.local"])
    return pki


def bearer(conn: Connection) -> str | None:
    """The token a client of this connection sends first."""
    return asyncio.run(conn.token_source().token())


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, *, clusters: dict[str, dict[str, Any]],
                     users: dict[str, dict[str, Any]], contexts: dict[str, dict[str, Any]],
                     current: str | None = None) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
    }
    if current is not None:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def two_contexts(path: Path) -> Path:
    return write_kubeconfig(
        path,
        clusters={"dev": {"server": "https://dev.example:6443/",
                          "certificate-authority-data": base64.b64encode(b"dev-ca").decode()},
                  "staging": {"server": "https://staging.example:443",
                              "insecure-skip-tls-verify": True}},
        users={"dev-user": {"token": "dev-token"}, "ops": {"token": "ops-token"}},
        contexts={"dev": {"cluster": "dev", "user": "dev-user", "namespace": "team-a"},
                  "staging": {"cluster": "staging", "user": "ops"}},
        current="dev",
    )


# -- contexts, clusters, users -----------------------------------------------------------


def test_the_current_context_gives_server_token_namespace_and_ca(tmp_path: Path) -> None:
    conn = connection_from_kubeconfig(two_contexts(tmp_path / "config"))
    assert conn == Connection(server="https://dev.example:6443", ca_data=b"dev-ca",
                              insecure=False, token="dev-token", namespace="team-a")


def test_an_explicit_context_wins_over_the_current_context(tmp_path: Path) -> None:
    conn = connection_from_kubeconfig(two_contexts(tmp_path / "config"), "staging")
    assert conn.server == "https://staging.example:443"
    assert conn.token == "ops-token"
    assert conn.insecure is True
    assert conn.ca_data is None
    assert conn.namespace == "default"  # the context names none


def test_a_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("file-token\n")
    path = write_kubeconfig(
        tmp_path / "config", clusters={"c": {"server": "https://k:6443"}},
        users={"u": {"tokenFile": str(token)}}, contexts={"x": {"cluster": "c", "user": "u"}},
        current="x")
    assert bearer(connection_from_kubeconfig(path)) == "file-token"


def test_a_relative_token_file_is_relative_to_the_kubeconfig(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "token").write_text("file-token\n")
    path = write_kubeconfig(
        tmp_path / "conf" / "config", clusters={"c": {"server": "https://k:6443"}},
        users={"u": {"tokenFile": "token"}}, contexts={"x": {"cluster": "c", "user": "u"}},
        current="x")
    monkeypatch.chdir(tmp_path)
    assert bearer(connection_from_kubeconfig(path)) == "file-token"


def test_client_certificate_data_inline(tmp_path: Path, pki: Pki) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://127.0.0.1:6443",
                        "certificate-authority-data": b64(pki.ca_cert)}},
        users={"u": {"client-certificate-data": b64(pki.dir / "alice.crt"),
                     "client-key-data": b64(pki.dir / "alice.key")}},
        contexts={"x": {"cluster": "c", "user": "u"}}, current="x")
    conn = connection_from_kubeconfig(path)
    assert conn.client_cert_data == (pki.dir / "alice.crt").read_bytes()
    assert conn.client_key_data == (pki.dir / "alice.key").read_bytes()
    assert conn.ca_data == pki.ca_cert.read_bytes()
    assert conn.token is None


def test_certificate_paths_are_relative_to_the_kubeconfig_directory(
        tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    (conf / "certs").mkdir(parents=True)
    for name in ("alice.crt", "alice.key"):
        (conf / "certs" / name).write_bytes((pki.dir / name).read_bytes())
    path = write_kubeconfig(
        conf / "config",
        clusters={"c": {"server": "https://127.0.0.1:6443",
                        "certificate-authority": str(pki.ca_cert)}},  # absolute
        users={"u": {"client-certificate": "certs/alice.crt",  # relative
                     "client-key": "certs/alice.key"}},
        contexts={"x": {"cluster": "c", "user": "u"}}, current="x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the kubeconfig's directory

    conn = connection_from_kubeconfig(path)
    assert conn.client_cert_data == (pki.dir / "alice.crt").read_bytes()
    assert conn.client_key_data == (pki.dir / "alice.key").read_bytes()
    assert conn.ca_data == pki.ca_cert.read_bytes()


def test_inline_data_wins_over_a_file_path(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://k:6443", "certificate-authority": "missing.crt",
                        "certificate-authority-data": base64.b64encode(b"inline").decode()}},
        users={}, contexts={"x": {"cluster": "c"}}, current="x")
    assert connection_from_kubeconfig(path).ca_data == b"inline"


@pytest.mark.parametrize("context", ["nope", None], ids=["explicit", "current-context"])
def test_a_missing_context_is_an_error_naming_it(tmp_path: Path, context: str | None) -> None:
    path = write_kubeconfig(
        tmp_path / "config", clusters={"c": {"server": "https://k:6443"}},
        users={"u": {"token": "t"}}, contexts={"x": {"cluster": "c", "user": "u"}},
        current="gone")
    with pytest.raises(ValueError, match=repr(context or "gone")) as raised:
        connection_from_kubeconfig(path, context)
    assert str(path) in str(raised.value)


def test_a_missing_cluster_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config", clusters={"other": {"server": "https://k:6443"}},
        users={"u": {"token": "t"}}, contexts={"x": {"cluster": "prod", "user": "u"}},
        current="x")
    with pytest.raises(ValueError, match="prod") as raised:
        connection_from_kubeconfig(path)
    assert str(path) in str(raised.value)


def test_a_missing_user_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config", clusters={"c": {"server": "https://k:6443"}},
        users={"other": {"token": "t"}}, contexts={"x": {"cluster": "c", "user": "bob"}},
        current="x")
    with pytest.raises(ValueError, match="bob") as raised:
        connection_from_kubeconfig(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("text", ["clusters: [unclosed", "- just\n- a list\n"],
                         ids=["not-yaml", "not-a-mapping"])
def test_a_file_that_is_not_a_kubeconfig_is_an_error_naming_it(tmp_path: Path,
                                                               text: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ValueError, match="kubeconfig") as raised:
        connection_from_kubeconfig(path)
    assert str(path) in str(raised.value)


# -- TLS ----------------------------------------------------------------------------------

Handshake = Callable[[ssl.SSLContext], Awaitable[str]]


@pytest.fixture
async def handshake(pki: Pki) -> AsyncIterator[Handshake]:
    """A TLS server on 127.0.0.1 (cert from the test CA) that requires a client
    certificate from that CA and answers with the client's common name."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
    server_ctx.load_verify_locations(pki.ca_cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        names = dict(item[0] for item in peer.get("subject", ()))
        writer.write(f"{names.get('commonName', '')}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]

    async def connect(client_ctx: ssl.SSLContext) -> str:
        async def talk() -> str:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="127.0.0.1")
            try:
                return (await reader.readline()).decode().strip()
            finally:
                writer.close()

        return await asyncio.wait_for(talk(), WAIT)

    yield connect
    server.close()
    await server.wait_closed()


def cert_user_config(tmp_path: Path, pki: Pki, **cluster: Any) -> Path:
    return write_kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://127.0.0.1:6443", **cluster}},
        users={"u": {"client-certificate-data": b64(pki.dir / "alice.crt"),
                     "client-key-data": b64(pki.dir / "alice.key")}},
        contexts={"x": {"cluster": "c", "user": "u"}}, current="x")


def test_certificate_authority_data_is_trusted_by_the_ssl_context(tmp_path: Path,
                                                                   pki: Pki) -> None:
    conn = connection_from_kubeconfig(
        cert_user_config(tmp_path, pki, **{"certificate-authority-data": b64(pki.ca_cert)}))
    ctx = conn.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    subjects = [dict(item[0] for item in c["subject"]) for c in ctx.get_ca_certs()]
    assert {"commonName": CA_NAME} in subjects


async def test_the_ssl_context_verifies_the_server_and_presents_the_client_cert(
        tmp_path: Path, pki: Pki, handshake: Handshake) -> None:
    conn = connection_from_kubeconfig(
        cert_user_config(tmp_path, pki, **{"certificate-authority-data": b64(pki.ca_cert)}))
    ctx = conn.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert await handshake(ctx) == CLIENT_CN  # the server saw alice's certificate


async def test_without_the_cluster_ca_the_server_is_not_trusted(
        tmp_path: Path, pki: Pki, handshake: Handshake) -> None:
    ctx = connection_from_kubeconfig(cert_user_config(tmp_path, pki)).ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(ctx)


def test_insecure_skip_tls_verify_turns_verification_off(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "config",
        clusters={"c": {"server": "https://k:6443", "insecure-skip-tls-verify": True}},
        users={"u": {"token": "t"}}, contexts={"x": {"cluster": "c", "user": "u"}},
        current="x")
    conn = connection_from_kubeconfig(path)
    assert conn.insecure is True
    ctx = conn.ssl_context()  # a context (not aiohttp's False): it may carry a client cert
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False


async def test_insecure_still_presents_the_client_certificate(
        tmp_path: Path, pki: Pki, handshake: Handshake) -> None:
    ctx = connection_from_kubeconfig(
        cert_user_config(tmp_path, pki, **{"insecure-skip-tls-verify": True})).ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert await handshake(ctx) == CLIENT_CN


# -- load_connection and in-cluster --------------------------------------------------------


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mounted ServiceAccount; SERVICE_ACCOUNT_DIR is a module constant, not a parameter."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("sa-token\n")
    (sa / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nsa-ca\n")
    (sa / "namespace").write_text("sync-system\n")
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT_DIR", sa)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "8443")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return sa


def test_in_cluster_reads_the_service_account(service_account: Path) -> None:
    assert connection_in_cluster() == Connection(
        server="https://10.96.0.1:8443", ca_data=b"-----BEGIN CERTIFICATE-----\nsa-ca\n",
        token_file=str(service_account / "token"), namespace="sync-system")
    assert bearer(connection_in_cluster()) == "sa-token"


def test_in_cluster_defaults_to_port_443(service_account: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT")
    assert connection_in_cluster().server == "https://10.96.0.1:443"


def test_in_cluster_brackets_an_ipv6_service_host(service_account: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert connection_in_cluster().server == "https://[fd00::1]:8443"


def test_in_cluster_does_not_bracket_a_bracketed_ipv6_host_twice(
        service_account: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "[fd00::1]")
    assert connection_in_cluster().server == "https://[fd00::1]:8443"


def test_load_connection_uses_in_cluster_without_kubeconfig(service_account: Path) -> None:
    assert bearer(load_connection()) == "sa-token"


def test_the_kubeconfig_env_var_wins_over_in_cluster(service_account: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(two_contexts(tmp_path / "from-env")))
    conn = load_connection()
    assert (conn.server, conn.token) == ("https://dev.example:6443", "dev-token")


def test_an_explicit_path_wins_over_the_kubeconfig_env_var(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "does-not-exist"))
    explicit = write_kubeconfig(
        tmp_path / "explicit", clusters={"c": {"server": "https://explicit:6443"}},
        users={"u": {"token": "explicit-token"}},
        contexts={"x": {"cluster": "c", "user": "u"}}, current="x")
    assert load_connection(explicit).token == "explicit-token"
    assert load_connection(str(explicit)).token == "explicit-token"


def test_without_kubeconfig_or_cluster_it_reads_the_home_kubeconfig(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    two_contexts(tmp_path / ".kube" / "config")
    assert load_connection().token == "dev-token"
