"""The one key type for a namespaced object: what work queues, grants and the progress
relay are keyed by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class ObjectKey(NamedTuple):
    namespace: str
    name: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectKey:
        """The key of an object as the API server returns it."""
        meta = body["metadata"]
        return cls(str(meta["namespace"]), str(meta["name"]))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
