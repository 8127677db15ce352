"""JSON merge patches computed from two versions of an object part."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level merge patch turning `old` into `new`: changed keys, and None for
    removed ones (which a merge patch deletes)."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    for removed in set(old) - set(new):
        patch[removed] = None
    return patch
