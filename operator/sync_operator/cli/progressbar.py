"""Progress as text: a bar with eighth-block resolution, a percent, and an ETA that counts down.

The runner reports ``etaSeconds`` at ``updatedAt``; between reports the ETA is aged
locally so a live view keeps moving without asking the API server again.
"""

from __future__ import annotations

from datetime import datetime

from sync_operator.api import ProgressStatus
from sync_operator.cli.humanize import parse_time

FULL = "█"
EMPTY = "░"
# Partial cells, 1/8 .. 7/8 of a block.
PARTIAL = "▏▎▍▌▋▊▉"
NO_PROGRESS = "-"


def percent_of(progress: ProgressStatus | None) -> int | None:
    """Percent done: the reported one, else computed from done/total, else unknown."""
    if progress is None:
        return None
    if progress.percent is not None:
        return max(0, min(100, progress.percent))
    if progress.done is not None and progress.total:
        return max(0, min(100, progress.done * 100 // progress.total))
    return None


def bar(fraction: float, width: int) -> str:
    """Exactly `width` cells: full blocks, one partial block, then empty ones."""
    fraction = max(0.0, min(1.0, fraction))
    eighths = int(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    text = FULL * full
    if full < width:
        text += PARTIAL[rest - 1] if rest else EMPTY
        text += EMPTY * (width - full - 1)
    return text


def progress_cell(progress: ProgressStatus | None, width: int = 10) -> str:
    """``█████▌░░░░  55%``, or ``-`` before the runner reported anything."""
    percent = percent_of(progress)
    if percent is None:
        return NO_PROGRESS
    return f"{bar(percent / 100, width)} {percent:>3d}%"


def counts(progress: ProgressStatus | None) -> str:
    """``21/50 items`` (or ``21 items`` while the total is unknown); empty if nothing reported."""
    if progress is None or progress.done is None:
        return ""
    text = f"{progress.done}/{progress.total}" if progress.total is not None else str(progress.done)
    return f"{text} {progress.unit}" if progress.unit else text


def eta_left(progress: ProgressStatus | None, now: datetime) -> float | None:
    """Seconds left now: the reported ETA minus the time since it was reported (never < 0)."""
    if progress is None or progress.eta_seconds is None:
        return None
    left = float(progress.eta_seconds)
    reported = parse_time(progress.updated_at)
    if reported is not None:
        left -= max((now - reported).total_seconds(), 0.0)
    return max(left, 0.0)
