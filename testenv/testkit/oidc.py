"""A local OIDC issuer the API server trusts, for "OIDC behind a trusted proxy" tests.

What a real identity provider (Dex, Keycloak, Entra ID, Google...) is to a cluster whose
kube-apiserver runs with a structured `--authentication-config`: an HTTPS issuer URL
serving `/.well-known/openid-configuration` and a JWKS, and ID tokens signed by a key in
that JWKS. The API server discovers and re-fetches the JWKS itself; tests mint ID tokens
(`OidcIssuer.mint`) and send them as `Authorization: Bearer <id_token>`, which is what an
OIDC proxy in front of the console (oauth2-proxy `--pass-authorization-header`) sends.

The issuer is stateless like `Pki`: files under its directory (the RSA signing key, its
serving certificate from the cluster's CA, the JWKS) and a port. `LocalCluster` starts
the server (`python -m testkit.oidc ...`, a process of its own) before kube-apiserver
and keeps it for the cluster's lifetime. The JWKS is read from its file on every
request, so a test may rotate keys by rewriting it.

The API server maps the `email` claim to the username and `groups` to groups, both
prefixed `oidc:` (USERNAME_PREFIX): alice@example.com is `oidc:alice@example.com` in
RBAC, in admission and in the audit stamps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import ssl
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import RSAAlgorithm

from testkit.pki import Pki
from testkit.process import ManagedProcess

# The OAuth client the proxy logs users in as: the ID tokens' audience.
AUDIENCE = "sync-console"
USERNAME_PREFIX = "oidc:"
GROUPS_PREFIX = "oidc:"
KEY_ID = "testenv-oidc-1"
ALGORITHM = "RS256"
DISCOVERY = "/.well-known/openid-configuration"
JWKS_PATH = "/keys"


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key: the issuer's, or a stranger's to sign tokens it must refuse."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey, kid: str = KEY_ID) -> dict[str, Any]:
    public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": kid, "use": "sig", "alg": ALGORITHM}]}


@dataclass(frozen=True)
class OidcIssuer:
    """The issuer's files and address; `process` runs its HTTPS server."""

    dir: Path
    port: int
    audience: str = AUDIENCE

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def signing_key(self) -> Path:
        return self.dir / "signing.key"

    @property
    def jwks_file(self) -> Path:
        return self.dir / "jwks.json"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "issuer.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "issuer.key"

    @property
    def authentication_config_file(self) -> Path:
        return self.dir / "authentication-config.yaml"

    def ensure(self, pki: Pki) -> None:
        """The signing key, the JWKS and a serving certificate for 127.0.0.1 from the
        cluster's CA (made once per directory), and the API server's configuration."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.signing_key.exists():
            self.signing_key.write_bytes(new_key().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        if not self.jwks_file.exists():
            self.jwks_file.write_text(json.dumps(jwks(self._key())))
        if not self.serving_cert.exists():
            self._issue_serving_cert(pki)
        # JSON is YAML: the API server reads either.
        self.authentication_config_file.write_text(
            json.dumps(self.authentication_config(pki.ca_cert.read_text()), indent=2))

    def authentication_config(self, ca_pem: str) -> dict[str, Any]:
        """kube-apiserver's `--authentication-config`: trust this issuer's ID tokens for
        our audience; username from `email`, groups from `groups`, both prefixed."""
        return {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AuthenticationConfiguration",
            "jwt": [{
                "issuer": {"url": self.url, "audiences": [self.audience],
                           "certificateAuthority": ca_pem},
                "claimMappings": {
                    "username": {"claim": "email", "prefix": USERNAME_PREFIX},
                    "groups": {"claim": "groups", "prefix": GROUPS_PREFIX},
                },
            }],
        }

    def process(self, log_path: Path) -> ManagedProcess:
        return ManagedProcess("oidc-issuer", [
            sys.executable, "-m", "testkit.oidc", "--port", str(self.port), "--issuer", self.url,
            "--jwks", str(self.jwks_file), "--tls-cert-file", str(self.serving_cert),
            "--tls-private-key-file", str(self.serving_key),
        ], log_path)

    def _issue_serving_cert(self, pki: Pki) -> None:
        """A certificate for 127.0.0.1 signed by the cluster's CA, made in-process (an EC
        key: milliseconds, where openssl's processes would add to the cluster start)."""
        ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                            "testenv-oidc-issuer")]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName([
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost")]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.serving_key.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.serving_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.signing_key.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def mint(self, email: str, *, groups: Sequence[str] = (), audience: str | None = None,
             expires_in: float = 600.0, issued_at: float | None = None,
             subject: str | None = None, key: rsa.RSAPrivateKey | None = None,
             kid: str = KEY_ID, **claims: Any) -> str:
        """An ID token as the identity provider would issue it after a login (signed by
        the issuer's key unless `key` is given; a negative `expires_in` is expired)."""
        now = time.time() if issued_at is None else issued_at
        payload = {
            "iss": self.url, "aud": audience or self.audience,
            "sub": subject or f"user-{uuid.uuid5(uuid.NAMESPACE_URL, email)}",
            "email": email, "email_verified": True, "groups": list(groups),
            "iat": int(now), "nbf": int(now), "exp": int(now + expires_in), **claims,
        }
        return jwt.encode(payload, key or self._key(), algorithm=ALGORITHM,
                          headers={"kid": kid})


# -- the server ----------------------------------------------------------------------------


def issuer_app(issuer: str, jwks_file: Path) -> web.Application:
    async def discovery(_: web.Request) -> web.Response:
        return web.json_response({
            "issuer": issuer, "jwks_uri": issuer + JWKS_PATH,
            "authorization_endpoint": issuer + "/authorize",  # never used: no logins here
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": ["sub", "email", "email_verified", "groups"],
        })

    async def keys(_: web.Request) -> web.Response:
        return web.Response(body=jwks_file.read_bytes(), content_type="application/json")

    app = web.Application()
    app.router.add_get(DISCOVERY, discovery)
    app.router.add_get(JWKS_PATH, keys)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="A local OIDC issuer (discovery and JWKS).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="its URL, as tokens' iss says")
    parser.add_argument("--jwks", type=Path, required=True)
    parser.add_argument("--tls-cert-file", required=True)
    parser.add_argument("--tls-private-key-file", required=True)
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
    web.run_app(issuer_app(args.issuer, args.jwks), host="127.0.0.1", port=args.port,
                ssl_context=context, print=None, access_log=None)


if __name__ == "__main__":
    main()
