"""Who a bearer token belongs to: TokenReview, cached by the token's hash.

The API server is the only judge of a token (static, ServiceAccount, OIDC, webhook);
the console never parses one. Answers are reused for `ttl` seconds so that a browser's
requests cost one review a minute, and keyed by a SHA-256 of the token so the cache
holds no credential.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from sync_operator.kube import KubeClient
from sync_operator.kube.resources import Resource

TOKENREVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
CACHE_SIZE = 10_000


class User(BaseModel):
    """An authenticated person (or ServiceAccount), as the API server knows them."""

    model_config = ConfigDict(frozen=True)

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # (key, values) pairs, sorted: hashable, so a User keys the access cache.
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenReviewer:
    """TokenReview through the console's own client (it needs `create tokenreviews`)."""

    def __init__(self, client: KubeClient, *, ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, User | None]] = OrderedDict()
        self.reviews = 0  # TokenReviews sent (for tests and metrics)

    async def review(self, token: str, *, fresh: bool = False) -> User | None:
        """The token's user, or None when the API server does not authenticate it."""
        key, now = token_key(token), self._clock()
        cached = self._cache.get(key)
        if cached is not None and not fresh and now - cached[0] < self.ttl:
            self._cache.move_to_end(key)
            return cached[1]
        self.reviews += 1
        answer = await self.client.create(TOKENREVIEWS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}})
        status = answer.get("status") or {}
        user = None
        if status.get("authenticated"):
            info = status.get("user") or {}
            user = User(name=str(info.get("username", "")), uid=str(info.get("uid", "")),
                        groups=tuple(info.get("groups") or ()),
                        extra=tuple(sorted((k, tuple(v)) for k, v in (
                            info.get("extra") or {}).items())))
        self._cache[key] = (now, user)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return user
