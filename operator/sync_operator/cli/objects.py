"""API bodies as typed models, so commands read ``job.status.progress`` instead of dict paths."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from sync_operator.api import SyncJob, SyncSchedule
from sync_operator.cli.output import warn


class UnreadableObjectError(Exception):
    """An object the API server returned that the models cannot read (a version skew)."""


def _where(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '?')}".lstrip("/")


def parse_job(body: Mapping[str, Any]) -> SyncJob:
    try:
        return SyncJob.model_validate(body)
    except ValidationError as err:
        raise UnreadableObjectError(f"cannot read SyncJob {_where(body)}: {err}") from None


def parse_schedule(body: Mapping[str, Any]) -> SyncSchedule:
    try:
        return SyncSchedule.model_validate(body)
    except ValidationError as err:
        raise UnreadableObjectError(f"cannot read SyncSchedule {_where(body)}: {err}") from None


def parse_jobs(items: Iterable[Mapping[str, Any]], *, quiet: bool = False) -> list[SyncJob]:
    """Every readable job; an unreadable one is reported (unless `quiet`: it was already)
    and skipped, not fatal to a list."""
    out = []
    for body in items:
        try:
            out.append(parse_job(body))
        except UnreadableObjectError as err:
            if not quiet:
                warn(str(err))
    return out


def parse_schedules(items: Iterable[Mapping[str, Any]]) -> list[SyncSchedule]:
    out = []
    for body in items:
        try:
            out.append(parse_schedule(body))
        except UnreadableObjectError as err:
            warn(str(err))
    return out
