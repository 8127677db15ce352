"""A benchmark's JSON record and its printed table, shared by the benchmark scripts.

The record opens with where and how it ran (`run_header`, `git_state`, `loadavg`) and is
written to benchmarks/results (`write_result`); the table prints rows of (label, unit,
dotted path into the record) per column (`table`, `dig`, `fmt`) and the targets beside
their limits (`target_lines`). The scripts run as `python benchmarks/x.py`, so this
module is imported as a sibling (`from report import ...`).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

RESULTS = Path(__file__).resolve().parent / "results"

# (label, unit, dotted path or "@special"); a None path starts a section.
Row = tuple[str, str, str | None]
C = TypeVar("C")


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def git_state() -> dict[str, Any]:
    """HEAD and the files changed in the working tree (read-only git calls)."""
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], capture_output=True, text=True,
                                  timeout=10, cwd=RESULTS.parent.parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"head": git("rev-parse", "HEAD"),
            "changed": git("status", "--short").splitlines()}


def run_header() -> dict[str, Any]:
    """The record's first fields: the command, where and when it ran, the machine."""
    return {
        "command": shlex.join(sys.orig_argv), "cwd": str(Path.cwd()),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0],
                    "kernel": os.uname().release},
    }


def write_result(result: dict[str, Any], name: str, *, latest: bool = False) -> Path:
    """results/<name>-<UTC date-time>.json (and <name>-latest.json); its path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    text = json.dumps(result, indent=2, default=str)
    path.write_text(text)
    if latest:
        (RESULTS / f"{name}-latest.json").write_text(text)
    return path


def close(result: dict[str, Any], began: float) -> None:
    """The record's last fields: its seconds since `began` (monotonic), the load now."""
    result["seconds"] = time.monotonic() - began
    result["loadavg_end"] = loadavg()


def print_report(result: dict[str, Any], rendered: str, wrote: str) -> None:
    """The run's time and load, the rendered table, and what was written."""
    print(f"\ntotal {result['seconds']:.0f}s; loadavg {result['loadavg_start']} at start, "
          f"{result['loadavg_end']} at end\n")
    print(rendered)
    print(f"\nwrote {wrote}")


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path of nested dicts; None where a part is missing."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def fmt(value: Any, digits: int = 2) -> str:
    """A cell: '-' for None, floats to `digits` places, the rest as str()."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: Iterable[Row], columns: Mapping[str, C], cell: Callable[[C, str], str],
          *, title: str, label_width: int, unit_width: int, width: int = 16,
          gap: str = "") -> list[str]:
    """The heading, a rule as long, a line per row: a section's label alone, else label,
    unit and cell(column, path) per column (each `gap` then `width` wide)."""
    head = f"{title:<{label_width + 2}} {'unit':>{unit_width}}" \
        + "".join(f"{gap}{k:>{width}}" for k in columns)
    lines = [head, "-" * len(head)]
    for label, unit, path in rows:
        if path is None:
            lines.append(label)
            continue
        cells = [cell(c, path) for c in columns.values()]
        lines.append(f"  {label:<{label_width}} {unit:>{unit_width}}"
                     + "".join(f"{gap}{c:>{width}}" for c in cells))
    return lines


def target_lines(targets: Iterable[tuple[str, str, Any, str, Any]], *, text_width: int,
                 digits: int) -> list[str]:
    """The targets, each (verdict, text, value, operator, limit), below their heading."""
    lines = ["targets (printed, never asserted)"]
    for verdict, text, value, op, limit in targets:
        lines.append(f"  {verdict:<5} {text:<{text_width}} {fmt(value, digits):>8} "
                     f"{op} {fmt(limit, digits)}")
    return lines
