"""The audit outbox kept in a resource's own status (`status.mirror`).

Audit entries are first written next to the state they describe, in the
SyncJob's (or SyncSchedule's) status, in the same patch as the transition.
etcd keeps them across operator restarts and PostgreSQL outages; the mirror
writer copies them into `sync_job_audit_logs` and the operator then drains
them. Layout (camelCase, as the rest of the status):

    status.mirror = {
        "seq": 7,                                  # last sequence number handed out
        "pending": [{"seq": 6, "action": "paused", "performedBy": "alice",
                     "at": "2026-01-01T10:00:00.000000Z", "phase": "Paused",
                     "details": {...}}, ...],
        "dropped": {"count": 2, "lastSeq": 3, "at": "..."},   # only after an overflow
    }

`seq` also versions the control row: the mirror applies a snapshot only if
(seq, resourceVersion) is newer than the row's (`last_seq`, `resource_version`).
Status-only changes (progress) therefore reach the control table without a new
seq; `bump_seq` is there for a writer that wants to force one.

The pending list is bounded, in entries (MAX_PENDING) and in bytes of JSON
(MAX_PENDING_BYTES), because a resource must stay far below etcd's object size
limit (about 1.5 MiB) even through a long outage in which, say, schedule edits
copy whole job templates into entries. One entry's details are capped too
(MAX_DETAILS_BYTES: bigger details are replaced by a note of their size and
keys), and its action and actor are clipped to the schema's lengths. On
overflow the oldest entries are dropped, never silently: `dropped` counts them,
and the writer records a `mirror_entries_dropped` audit row saying how many and
up to which seq. All functions are pure: they return a new dict and never mutate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sync_operator.api import syncjob as api
from sync_operator.api.bounds import clip, max_length
from sync_operator.kube.timestamps import format_micro_time

MAX_PENDING = 500
MAX_PENDING_BYTES = 256 * 1024
MAX_DETAILS_BYTES = 32 * 1024
ACTION_MAX = max_length(api.AuditEntry, "action")
ACTOR_MAX = max_length(api.AuditEntry, "performed_by")
DROPPED_ACTION = "mirror_entries_dropped"
SYSTEM_ACTOR = "system:sync-operator"

StatusMirror = dict[str, Any]


class AuditEntry(BaseModel):
    """One audited action or transition, as kept in status.mirror.pending."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    seq: int = Field(ge=1)
    action: str = Field(min_length=1)
    performed_by: str = Field(alias="performedBy", min_length=1)
    at: AwareDatetime
    phase: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    # Overrides the seq in the idempotency key, for rows that are not pending entries.
    key: str | None = None

    def idempotency_key(self, uid: str) -> str:
        """f"{uid}:{seq}": unique per resource and entry, stable across replays."""
        return f"{uid}:{self.key or self.seq}"


def _entry_time(moment: datetime) -> str:
    """MicroTime, so entries sort and parse everywhere; a naive time is a caller's bug."""
    if moment.tzinfo is None:
        raise ValueError("timestamps in status.mirror must be timezone-aware")
    return format_micro_time(moment)


def mirror_seq(status_mirror: Mapping[str, Any] | None) -> int:
    """The last seq handed out (0 for a resource that has none yet)."""
    return int((status_mirror or {}).get("seq") or 0)


def dropped_count(status_mirror: Mapping[str, Any] | None) -> int:
    """How many entries overflowed MAX_PENDING over the resource's life."""
    return int(((status_mirror or {}).get("dropped") or {}).get("count") or 0)


def _copy(status_mirror: Mapping[str, Any] | None) -> StatusMirror:
    source = dict(status_mirror or {})
    result: StatusMirror = {"seq": mirror_seq(source),
                            "pending": [dict(e) for e in source.get("pending") or []]}
    if source.get("dropped"):
        result["dropped"] = dict(source["dropped"])
    return result


def append_entry(
    status_mirror: Mapping[str, Any] | None,
    action: str,
    performed_by: str,
    phase: str | None,
    details: Mapping[str, Any] | None,
    now: datetime,
    *,
    limit: int = MAX_PENDING,
    max_bytes: int = MAX_PENDING_BYTES,
) -> StatusMirror:
    """The new status.mirror: seq + 1 and the entry appended; the oldest are dropped
    (and counted in `dropped`) past `limit` entries or `max_bytes` of JSON."""
    result = _copy(status_mirror)
    seq = result["seq"] + 1
    entry = AuditEntry(seq=seq, action=clip(action, ACTION_MAX),
                       performed_by=clip(performed_by, ACTOR_MAX), at=now, phase=phase,
                       details=_bounded_details(dict(details or {}),
                                                min(MAX_DETAILS_BYTES, max_bytes // 4)))
    result["seq"] = seq
    result["pending"].append(entry.model_dump(mode="json", by_alias=True, exclude={"key"}))
    result["pending"][-1]["at"] = _entry_time(now)
    pending = result["pending"]
    overflow = max(0, len(pending) - max(limit, 1))
    sizes = [_json_size(e) + 1 for e in pending]  # + 1: the comma between entries
    total = sum(sizes) - sum(sizes[:overflow])
    while overflow < len(pending) - 1 and total > max_bytes:
        total -= sizes[overflow]
        overflow += 1
    if overflow > 0:
        lost, result["pending"] = pending[:overflow], pending[overflow:]
        result["dropped"] = {"count": dropped_count(result) + overflow,
                             "lastSeq": int(lost[-1]["seq"]), "at": _entry_time(now)}
    return result


def _json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (about what it takes in etcd)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode())


def pending_bytes(status_mirror: Mapping[str, Any] | None) -> int:
    """Bytes of JSON the pending entries take."""
    return _json_size(list((status_mirror or {}).get("pending") or []))


def _bounded_details(details: dict[str, Any], limit: int) -> dict[str, Any]:
    """`details`, or, when bigger than `limit` bytes, a note of what they were."""
    size = _json_size(details)
    if size <= limit:
        return details
    return {"truncated": True, "bytes": size,
            "keys": [clip(str(k), 64) for k in list(details)[:50]]}


def bump_seq(status_mirror: Mapping[str, Any] | None) -> StatusMirror:
    """The new status.mirror with seq + 1 and no entry: lets the control row take this status."""
    result = _copy(status_mirror)
    result["seq"] += 1
    return result


def drained(status_mirror: Mapping[str, Any] | None, applied_seq: int) -> StatusMirror:
    """status.mirror without the entries the mirror has stored (seq <= applied_seq).

    Apply it to the freshest status.mirror, not the one the writer saw: entries
    appended meanwhile have higher seqs and are kept.
    """
    result = _copy(status_mirror)
    result["pending"] = [e for e in result["pending"] if int(e["seq"]) > applied_seq]
    return result


def pending_entries(status_mirror: Mapping[str, Any] | None) -> list[AuditEntry]:
    """The entries to write, in seq order, plus a marker row if some were dropped."""
    entries = [AuditEntry.model_validate(e) for e in (status_mirror or {}).get("pending") or []]
    dropped = (status_mirror or {}).get("dropped")
    if dropped:
        last = int(dropped["lastSeq"])
        entries.append(AuditEntry(
            seq=max(last, 1), action=DROPPED_ACTION, performed_by=SYSTEM_ACTOR,
            at=dropped["at"], details={"count": int(dropped["count"]), "lastSeq": last},
            key=f"dropped:{last}",
        ))
    return sorted(entries, key=lambda e: e.seq)
