"""How kopf logs in: exactly as our own client does (kube.config), so the operator's
watches and the reconcilers' requests use one reading of the kubeconfig or the pod's
ServiceAccount: merged $KUBECONFIG lists, exec credential plugins, and the rotating
bound token (kopf logs in again when the credential says it expires, and after a 401).

kopf's built-in fallback login reads only static tokens and certificates, and the
official client that its richer login needs is what kube.credentials explains we do
not import.
"""

from __future__ import annotations

from typing import Any

import kopf

from sync_operator.kube import load_connection


@kopf.on.login()
async def login(**_: Any) -> kopf.ConnectionInfo:
    connection = load_connection()
    source = connection.token_source()
    token = await source.token()
    return kopf.ConnectionInfo(
        server=connection.server, ca_data=connection.ca_data, insecure=connection.insecure,
        token=token, certificate_data=connection.client_cert_data,
        private_key_data=connection.client_key_data,
        default_namespace=connection.namespace, expiration=source.expires_at)
