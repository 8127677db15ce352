"""kopf's webhook server, registered by Service reference instead of by URL.

kopf registers `clientConfig.url: https://<host>:<port>/...`; an API server that
cannot resolve cluster DNS (host network, kubeadm defaults) cannot call that. A
`clientConfig.service` reference is resolved by the API server itself, which is
what in-cluster webhooks should use. Without a service name it behaves as kopf's.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import kopf


class ServiceWebhookServer(kopf.WebhookServer):
    def __init__(self, *, service_name: str | None = None,
                 service_namespace: str | None = None, service_port: int = 443,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_name = service_name
        self.service_namespace = service_namespace
        self.service_port = service_port

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        async for client_config in super().__call__(fn):
            url = client_config.get("url")
            if self.service_name and url:
                by_service: dict[str, Any] = {k: v for k, v in client_config.items()
                                              if k != "url"}
                by_service["service"] = {
                    "name": self.service_name, "namespace": self.service_namespace,
                    "port": self.service_port,
                    # kopf appends "/<handler id>" to this path itself.
                    "path": urllib.parse.urlparse(url).path.rstrip("/")}
                yield by_service
            else:
                yield client_config
