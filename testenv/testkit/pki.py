"""Certificates and keys for the local control plane, made with openssl."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from testkit.kubelet_server import APISERVER_CLIENT


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    """A CA, serving certs for 127.0.0.1 signed by it (the API server's, the kubelet's),
    the API server's client cert for the kubelet, and the ServiceAccount key pair."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def kubelet_cert(self) -> Path:
        """The process kubelet's serving certificate (its log endpoint, for pods/log)."""
        return self.dir / "kubelet.crt"

    @property
    def kubelet_key(self) -> Path:
        return self.dir / "kubelet.key"

    @property
    def kubelet_client_cert(self) -> Path:
        """What kube-apiserver shows the kubelet (--kubelet-client-certificate)."""
        return self.dir / "apiserver-kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.dir / "apiserver-kubelet-client.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def ensure(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.ca_cert.exists():
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                     "-subj", "/CN=sync-operator-testenv-ca", "-keyout", str(self.ca_key),
                     "-out", str(self.ca_cert))
        if not self.serving_cert.exists():
            self.issue(self.serving_cert, self.serving_key, "kube-apiserver",
                       ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes",
                        "DNS:kubernetes.default.svc"])
        if not self.kubelet_cert.exists():  # for the address its Node reports
            self.issue(self.kubelet_cert, self.kubelet_key, "process-kubelet",
                       ["IP:127.0.0.1", "DNS:localhost"])
        if not self.kubelet_client_cert.exists():
            self.issue(self.kubelet_client_cert, self.kubelet_client_key, APISERVER_CLIENT,
                       ["DNS:kube-apiserver"])
        if not self.sa_key.exists():
            _openssl("genrsa", "-out", str(self.sa_key), "2048")
            _openssl("rsa", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub))

    def issue(self, cert: Path, key: Path, common_name: str, sans: list[str]) -> None:
        """A leaf certificate signed by the CA (for the apiserver and for webhooks)."""
        csr = cert.with_suffix(".csr")
        ext = cert.with_suffix(".ext")
        ext.write_text(f"subjectAltName={','.join(sans)}\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={common_name}",
                 "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey",
                 str(self.ca_key), "-CAcreateserial", "-days", "3650", "-out", str(cert),
                 "-extfile", str(ext))
