"""Durations and timestamps as people read them: kubectl-style ages, ETAs, relative times."""

from __future__ import annotations

from datetime import UTC, datetime

from sync_operator.kube import timestamps

NONE = "<none>"


def parse_time(value: str | datetime | None) -> datetime | None:
    """An RFC 3339 timestamp from the API (``...Z``) as an aware datetime; None stays None."""
    try:
        return timestamps.parse_time(value)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration, so AGE columns read the same as ``kubectl get``."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{hours // 24 // 365}y"


def eta_text(seconds: float) -> str:
    """A countdown: finer than an age (``3m05s``, ``2h03m``) because it changes as you look."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def age(since: str | datetime | None, now: datetime) -> str:
    """Time since `since` as kubectl prints it, or ``<unknown>``."""
    moment = parse_time(since)
    if moment is None:
        return "<unknown>"
    return human_duration((now - moment).total_seconds())


def relative(when: str | datetime | None, now: datetime) -> str:
    """``in 3h`` for the future, ``5m ago`` for the past, ``<none>`` when unset."""
    moment = parse_time(when)
    if moment is None:
        return NONE
    delta = (moment - now).total_seconds()
    if delta > 1:
        return f"in {human_duration(delta)}"
    return f"{human_duration(-delta)} ago"


def timestamp(when: str | datetime | None, now: datetime) -> str:
    """An absolute time plus how long ago, for detail views: ``2026-01-01T12:00:00Z (5m ago)``."""
    moment = parse_time(when)
    if moment is None:
        return NONE
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{text} ({relative(moment, now)})"
