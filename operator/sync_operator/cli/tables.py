"""Rich renderables from the strings rows.py decided: kubectl-like borderless tables.

Cells are rich Text, never markup, so names and server messages containing ``[...]``
print as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from sync_operator.api import Phase

PHASE_STYLES: dict[Phase, str] = {
    Phase.PENDING: "dim",
    Phase.QUEUED: "blue",
    Phase.RUNNING: "cyan",
    Phase.PAUSING: "yellow",
    Phase.PAUSED: "yellow",
    Phase.CANCELLING: "magenta",
    Phase.CANCELLED: "magenta",
    Phase.SUCCEEDED: "green",
    Phase.FAILED: "bold red",
}
_RIGHT = frozenset({"PRIORITY", "ATTEMPTS", "ACTIVE", "MAX"})


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          styles: Sequence[dict[int, str]] | None = None,
          title: str | None = None, caption: str | None = None) -> Table:
    """A borderless table like ``kubectl get``; `styles[i]` maps column index -> style."""
    out = Table(box=None, pad_edge=False, padding=(0, 3, 0, 0), show_edge=False,
                header_style="bold", title=title, caption=caption,
                title_justify="left", caption_justify="left")
    for header in headers:
        out.add_column(header, justify="right" if header in _RIGHT else "left",
                       no_wrap=header != "MESSAGE", overflow="fold")
    for index, row in enumerate(rows):
        style = styles[index] if styles else {}
        out.add_row(*(Text(cell, style=style.get(col, "")) for col, cell in enumerate(row)))
    return out


def phase_style(phase: Phase) -> str:
    return PHASE_STYLES.get(phase, "")


def details(rows: Sequence[tuple[str, str]], conditions: Sequence[Sequence[str]],
            condition_headers: Sequence[str]) -> RenderableType:
    """``get``: a label/value grid, then the conditions table."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(Text(f"{label}:"), Text(value))
    parts: list[RenderableType] = [grid, Text("")]
    if conditions:
        parts += [Text("Conditions:", style="bold"), table(condition_headers, conditions)]
    else:
        parts.append(Text("Conditions: <none>", style="bold"))
    return Group(*parts)


def events(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> RenderableType:
    """``describe``: the Events table, or <none> as kubectl prints it."""
    if not rows:
        return Text("Events: <none>", style="bold")
    return Group(Text("Events:", style="bold"), table(headers, rows))
