"""How the object store keeps each SyncJob: compact JSON bytes, not parsed dicts.

A reconcile reads all of a SyncJob but managedFields (spec, status with its conditions
and audit outbox, metadata), so nothing more can be left out; the saving is in the
form. benchmarks/memory_per_syncjob.py, 5,000 Succeeded SyncJobs as the API server
returns them: 12.6 KB each as dicts, 2.7 KB as JSON (tracemalloc). A read parses it
again (12 us), which is also the reconcile's private copy (the deepcopy of the dicts
it replaces took 43 us).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sync_operator.kube.bodies import RawBody
from sync_operator.kube.store import without_managed_fields


@dataclass(frozen=True, slots=True)
class StoredSyncJob:
    data: bytes  # the body as compact JSON, without metadata.managedFields
    dedup_key: str | None  # spec.dedupKey: the duplicate scan reads only its peers

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> StoredSyncJob:
        data = json.dumps(without_managed_fields(body), separators=(",", ":")).encode()
        key = (body.get("spec") or {}).get("dedupKey")
        return cls(data, str(key) if key else None)

    def body(self) -> RawBody:
        """A fresh copy of the body (the caller may change it)."""
        return cast(RawBody, json.loads(self.data))
