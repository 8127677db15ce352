"""What a sync did, and whether that is a success: counts and the failure threshold.

A run whose skipped share stays within maxFailureRatio succeeds (with warnings if it
skipped anything). Above it the run fails, and how depends on why, so Kubernetes'
retry is spent only where it can help:
- some unit could not be fetched (upstream down, timeouts): UpstreamDegradedError, a
  retryable failure. The checkpoint keeps the failed pages, and the retry fetches
  just those again.
- everything was fetched but too much of it was invalid, or computing it failed:
  FatalTaskError, because the same data would fail the same way on a retry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sync_runner.content.store import UpsertResult
from sync_runner.sdk import FatalTaskError


class UpstreamDegradedError(RuntimeError):
    """Too many units could not be fetched; retryable, the retry re-fetches only those."""


@dataclass(frozen=True)
class Counts:
    """Items seen by the task: fetched (or computed), and what became of them."""

    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0  # failed validation or computation; skipped

    def with_upsert(self, fetched: int, invalid: int, result: UpsertResult) -> Counts:
        return Counts(self.fetched + fetched, self.inserted + result.inserted,
                      self.updated + result.updated, self.unchanged + result.unchanged,
                      self.invalid + invalid)

    def to_checkpoint(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, data: Any) -> Counts:
        if not isinstance(data, dict):
            return cls()
        return cls(**{f.name: int(data.get(f.name, 0)) for f in fields(cls)})

    def summary(self, *, skipped: int, warnings: int) -> dict[str, int]:
        """The counts for status.result: upserted = inserted + updated."""
        return {"fetched": self.fetched, "upserted": self.inserted + self.updated,
                "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "skipped": skipped, "warnings": warnings}


def failure_ratio(skipped: int, expected: int) -> float:
    return skipped / expected if expected > 0 else 0.0


def enforce_threshold(*, what: str, skipped: int, expected: int, unreachable: int,
                      max_ratio: float) -> float:
    """The skipped ratio; raises (see the module docstring) when it exceeds `max_ratio`."""
    ratio = failure_ratio(skipped, expected)
    if ratio <= max_ratio:
        return ratio
    detail = (f"{skipped} of {expected} {what} skipped ({ratio:.1%}), more than "
              f"maxFailureRatio {max_ratio:.1%}")
    if unreachable:
        raise UpstreamDegradedError(
            f"{detail}: {unreachable} unit(s) could not be fetched after retries; "
            "the job's retry fetches only those again")
    raise FatalTaskError("TooManyFailures",
                         f"{detail}: the items are invalid or cannot be computed, so a retry "
                         "would fail the same way; see the warnings, fix the source or "
                         "raise maxFailureRatio")
