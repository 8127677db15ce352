"""RFC 3339 timestamps as the Kubernetes API writes them: the one place the project
formats or parses a time on the wire.

metav1.Time has whole seconds (`2026-12-03T05:29:49Z`); metav1.MicroTime (Lease
renewals, Event times) has microseconds. A naive datetime is taken as UTC, so naive
and aware values still compare and sort together.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The same instant, aware and in UTC (a naive value is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """metav1.Time: RFC 3339 in UTC with whole seconds."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with microseconds."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> datetime | None:
    """An aware datetime from an RFC 3339 string (trailing Z allowed); None for None or "".

    A malformed string raises ValueError: callers that read user-editable fields
    decide what a bad value means there."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def utc_now() -> datetime:
    """Now in UTC, to the second (the resolution of metav1.Time)."""
    return datetime.now(UTC).replace(microsecond=0)
