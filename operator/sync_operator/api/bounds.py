"""Strings from outside (the runner, a task, the Job controller) made to fit the schema.

The CRD's OpenAPI schema is generated from the pydantic models in this package, so
the limits here are read from the same models: a status the operator writes can
never be refused by the API server for a string it copied (a 422 would otherwise
be retried forever). Over-long text is clipped with an ellipsis; a condition
reason that is not metav1 syntax becomes CamelCase words, or a fallback.

    >>> clip("abcdef", 4)
    'abc…'
    >>> condition_reason("source timeout", fallback="FatalError")
    'SourceTimeout'
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from annotated_types import MaxLen
from pydantic import BaseModel

from sync_operator.api.common import REASON_PATTERN, Condition
from sync_operator.api.syncjob import ProgressStatus, SyncJobStatus

ELLIPSIS = "…"


def max_length(model: type[BaseModel], field: str) -> int:
    """The maxLength the schema gives `model.field` (as the CRD has it)."""
    for item in model.model_fields[field].metadata:
        if isinstance(item, MaxLen):
            return int(item.max_length)
    raise LookupError(f"{model.__name__}.{field} has no max_length")


# The caps of the strings the operator copies into a SyncJob's status.
REASON_MAX = max_length(Condition, "reason")
CONDITION_MESSAGE_MAX = max_length(Condition, "message")
PROGRESS_UNIT_MAX = max_length(ProgressStatus, "unit")
PROGRESS_MESSAGE_MAX = max_length(ProgressStatus, "message")
ERROR_MAX = max_length(SyncJobStatus, "error")
# Messages the operator writes (conditions, status.error, Events' audit details) are
# kept well under the schema's 32 KiB: they are read by people and copied into SQL.
MESSAGE_MAX = 4096
# status.result is free-form (x-kubernetes-preserve-unknown-fields): a size cap of our own.
RESULT_MAX_BYTES = 16 * 1024

_REASON = re.compile(REASON_PATTERN)
_WORDS = re.compile(r"[A-Za-z0-9]+")


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and an ellipsis."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def clip_middle(text: str, limit: int = MESSAGE_MAX) -> str:
    """Like `clip`, but keeps the start and the end (where errors say the most), and says
    how much was cut in between."""
    if len(text) <= limit:
        return text
    marker = f" {ELLIPSIS} [{len(text)} characters, cut] {ELLIPSIS} "
    room = limit - len(marker)
    if room < 2:
        return clip(text, limit)
    head = room - room // 2
    return f"{text[:head]}{marker}{text[len(text) - room // 2:]}"


def is_reason(value: str) -> bool:
    """Whether `value` is a valid, non-empty metav1.Condition reason."""
    return 0 < len(value) <= REASON_MAX and _REASON.match(value) is not None


def condition_reason(value: Any, *, fallback: str) -> str:
    """A valid condition reason from `value`: itself if valid, else its words in
    CamelCase ("source timeout" -> "SourceTimeout"), else `fallback`."""
    if not is_reason(fallback):
        raise ValueError(f"fallback {fallback!r} is not a valid condition reason")
    text = "" if value is None else str(value)
    if is_reason(text):
        return text
    camel = "".join(w[:1].upper() + w[1:] for w in _WORDS.findall(text))
    camel = camel[:REASON_MAX]
    return camel if is_reason(camel) else fallback


# The integers a status can hold (the API server decodes JSON numbers as int64 or float64).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def json_safe(value: Any) -> Any:
    """`value` with what strict JSON cannot carry to the API server written as text: NaN
    and infinities (json.dumps would send them bare, a body the server refuses with 400,
    which a reconciler retries forever) and integers beyond int64."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) \
            and not INT64_MIN <= value <= INT64_MAX:
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def bounded_result(summary: dict[str, Any]) -> dict[str, Any]:
    """The runner's summary for status.result (JSON-safe), or a note saying it was too big
    (with its size and top-level keys) so the status stays small."""
    summary = json_safe(summary)
    encoded = json.dumps(summary, default=str, ensure_ascii=False)
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size <= RESULT_MAX_BYTES:
        return summary
    keys = [clip(str(k), 64) for k in list(summary)[:50]]
    return {"truncated": True, "bytes": size, "keys": keys}
