"""The versions of objects this operator wrote itself, so the watch's echo of a write
does not start another reconcile: the writer already acted on that state.

An event whose resourceVersion is the one our own write answered with is that write
coming back; any other version (someone else wrote in between) is news. What a write
answered with is also handed to `on_record` (the object store), so the next reconcile
reads our own write before its echo arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class OwnWrites:
    def __init__(self, *, on_record: Callable[[Mapping[str, Any]], object] = lambda _: None
                 ) -> None:
        self._versions: dict[str, str] = {}
        self._on_record = on_record

    def record(self, body: Mapping[str, Any]) -> None:
        """Remember the object as our write left it (the API server's answer)."""
        meta = body.get("metadata") or {}
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if uid and version:
            self._versions[str(uid)] = str(version)
            self._on_record(body)

    def is_echo(self, body: Mapping[str, Any]) -> bool:
        """Whether this event only shows what our own last write of it left."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        return bool(uid) and self._versions.get(uid) == str(meta.get("resourceVersion"))

    def forget(self, uid: str) -> None:
        self._versions.pop(uid, None)

    def __len__(self) -> int:
        return len(self._versions)
