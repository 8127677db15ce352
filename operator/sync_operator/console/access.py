"""What a user may do: SubjectAccessReview for that user, cached briefly.

Reads come from the console's own watch, so the console must ask, for each user and
namespace, whether the API server would let that person read what it shows: nothing
is readable here that the user cannot read with kubectl. Writes are not checked here
but sent as the user; the API server refuses them itself. The same reviews tell the
browser which buttons to show.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from sync_operator.api.common import GROUP
from sync_operator.console.identity import User
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import Resource

SUBJECTACCESSREVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews",
                                namespaced=False)
CACHE_SIZE = 50_000


class Attributes(BaseModel):
    """One question: may the user `verb` the `resource` in `namespace`?"""

    model_config = ConfigDict(frozen=True)

    verb: str
    resource: str = "syncjobs"
    namespace: str | None = None
    group: str = GROUP
    subresource: str = ""
    name: str = ""


class AccessReviewer:
    """SubjectAccessReview through the console's own client (`create
    subjectaccessreviews`, as in the built-in `system:auth-delegator` role)."""

    def __init__(self, client: KubeClient, *, ttl: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[tuple[User, Attributes], tuple[float, bool]] = OrderedDict()
        self.reviews = 0

    async def allowed(self, user: User, attributes: Attributes, *, fresh: bool = False
                      ) -> bool:
        key, now = (user, attributes), self._clock()
        cached = self._cache.get(key)
        if cached is not None and not fresh and now - cached[0] < self.ttl:
            return cached[1]
        self.reviews += 1
        resource = {"verb": attributes.verb, "group": attributes.group,
                    "resource": attributes.resource}
        for field, value in (("namespace", attributes.namespace),
                             ("subresource", attributes.subresource),
                             ("name", attributes.name)):
            if value:
                resource[field] = value
        answer = await self.client.create(SUBJECTACCESSREVIEWS, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user.name, "uid": user.uid, "groups": list(user.groups),
                     "extra": {k: list(v) for k, v in user.extra},
                     "resourceAttributes": resource}})
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._cache[key] = (now, allowed)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return allowed
