"""JSON merge patches computed from two versions of an object part."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch turning `old` into `new`.

    Unchanged keys are left out and removed keys are None (which a merge patch
    deletes). Where both sides hold an object the patch recurses into it, so a key
    removed deep inside is deleted too; anything else (lists, scalars, an object in
    place of a non-object) is sent whole, as a merge patch replaces it whole.
    Applying the result to `old` with RFC 7386 gives `new` (for `new` without nulls,
    which no merge patch can produce anyway).
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            if value is not None:  # a null for an absent key would be a no-op
                patch[key] = value
            continue
        before = old[key]
        if before == value:
            continue
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
