"""Where output goes and in which format: rich on a terminal, plain text in a pipe, -o json|yaml.

A pipe gets a wide, colourless console so tables are neither wrapped nor cut, and
scripts can parse what they see.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import yaml
from rich.console import Console, RenderableType

from sync_operator.api import GROUP, CustomKind

PIPE_WIDTH = 1000


def console() -> Console:
    """stdout as a rich console: the terminal's width, or wide and plain in a pipe."""
    terminal = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if terminal else PIPE_WIDTH, highlight=False,
                   soft_wrap=not terminal, emoji=False)


def show(out: Console, renderable: RenderableType) -> None:
    """Print; in a pipe without the padding rich leaves at line ends (diff- and grep-friendly)."""
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    out.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def qualified(kind: CustomKind, name: str) -> str:
    """``syncjob.sync.jobcontrol.io/q1``, as ``kubectl ... -o name`` prints it."""
    return f"{kind.singular}.{GROUP}/{name}"


def print_data(body: Any, fmt: str) -> None:
    """-o json (indented, as kubectl) or -o yaml."""
    if fmt == "json":
        sys.stdout.write(json.dumps(body, indent=4) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(body, sort_keys=False, default_flow_style=False))


def print_names(kind: CustomKind, names: Iterable[str]) -> None:
    for name in names:
        sys.stdout.write(qualified(kind, name) + "\n")


def done(kind: CustomKind, name: str, what: str) -> None:
    """``syncjob.sync.jobcontrol.io/q1 paused``: kubectl's confirmation line."""
    sys.stdout.write(f"{qualified(kind, name)} {what}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"Warning: {message}\n")

