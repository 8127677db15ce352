"""The latest version of each watched object, kept from the watch and from our own writes
(client-go's informer store), so a reconcile reads memory instead of GETting.

Measured at 1,000 SyncJobs: a reconcile GET the SyncJob and its Job, 10 reads per job
lifecycle, half the API server's requests for our objects. A stale read costs nothing
wrong: every status write carries the resourceVersion it was decided on, so a decision
made on an old version is refused (409) and made again once the newer one arrives.

Versions only move forward: an event older than what our own write answered with (the
watch is behind) does not replace it, and a deletion leaves a tombstone so a late event
cannot bring the object back.

What is kept of an object is the caller's `keep` (a SyncJob as JSON bytes, a Job as
its JobObservation), and a LIST is read item by item, so none of them is held whole
(benchmarks/memory_per_syncjob.py: a SyncJob's bytes in memory went 12.6 KB -> 2.7 KB).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from sync_operator.kube.keys import ObjectKey

T = TypeVar("T")


def _version(body: Mapping[str, Any]) -> int | None:
    try:
        return int(str((body.get("metadata") or {}).get("resourceVersion")))
    except ValueError:
        return None


class ObjectStore(Generic[T]):
    """Objects of one kind by key, each kept as `keep(body)` returns it."""

    def __init__(self, *, kind: str, keep: Callable[[Mapping[str, Any]], T]) -> None:
        self.kind = kind
        self._keep = keep
        self._items: dict[ObjectKey, tuple[int | None, T]] = {}
        self._tombstones: dict[ObjectKey, int] = {}

    def put(self, body: Mapping[str, Any]) -> bool:
        """Take in a version of an object (an event, a LIST item, a write's answer); False
        when it is older than the one kept, or of another kind."""
        if body.get("kind", self.kind) != self.kind:
            return False
        key, version = ObjectKey.of(body), _version(body)
        if version is not None:
            known = self._items.get(key, (None, None))[0]
            if known is None:
                known = self._tombstones.get(key)
            if known is not None and version < known:
                return False
        self._tombstones.pop(key, None)
        self._items[key] = (version, self._keep(body))
        return True

    def delete(self, body: Mapping[str, Any]) -> None:
        key, version = ObjectKey.of(body), _version(body)
        known = self._items.get(key, (None, None))[0]
        if version is not None and known is not None and version < known:
            return  # a deletion event older than a newer object of the same name
        self._items.pop(key, None)
        if version is not None:
            self._tombstones[key] = version

    def replace(self, items: Iterable[Mapping[str, Any]],
                version: str | None = None) -> list[ObjectKey]:
        """A full LIST taken at resourceVersion `version`: what it does not hold is gone,
        except what the store saw after that version (created while the LIST was on its
        way). Without a version, everything it does not hold is gone. The items are
        read once, one at a time (they may be made as they are read); returns their
        keys."""
        try:
            as_of = int(str(version)) if version is not None else None
        except ValueError:
            as_of = None
        self._tombstones.clear()
        listed: dict[ObjectKey, None] = {}
        for item in items:
            listed[ObjectKey.of(item)] = None
            self.put(item)
        for key in [k for k in self._items if k not in listed]:
            known = self._items[key][0]
            if as_of is None or known is None or known <= as_of:
                del self._items[key]
        return list(listed)

    def get(self, key: ObjectKey) -> T | None:
        found = self._items.get(key)
        return found[1] if found else None

    def values(self) -> list[T]:
        return [value for _, value in self._items.values()]

    def in_namespace(self, namespace: str) -> Iterator[T]:
        return (value for (ns, _), (_, value) in list(self._items.items()) if ns == namespace)

    def __len__(self) -> int:
        return len(self._items)


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as a reconcile reads it: managedFields are a third of a SyncJob's bytes
    and nothing here reads them."""
    out = dict(body)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out
