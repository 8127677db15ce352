"""``kubectl sync watch``: a live table fed by a real watch, or one plain line per change.

The API server pushes changes (stream.follow); the live table only re-renders locally
between them so ages and ETAs keep counting. It ends when every watched job is terminal.
Queue positions are computed on read from the watched namespace (watchstate, queueview).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from sync_operator.api import SYNCJOB, SYNCJOBS
from sync_operator.cli import rows, tables
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_OK, not_found
from sync_operator.cli.output import console
from sync_operator.cli.watchstate import Change, WatchState
from sync_operator.kube.keys import ObjectKey
from sync_operator.kube.stream import follow

LIVE_BAR_WIDTH = 20
REFRESH_PER_SECOND = 2


def render(state: WatchState, ctx: Context) -> RenderableType:
    """The live view: one table of every watched job, a summary caption."""
    jobs, now = state.jobs, ctx.now()
    show_ns = ctx.target.all_namespaces
    title = (f"SyncJobs: {', '.join(sorted(state.names))}" if state.names else
             "SyncJobs in all namespaces" if show_ns else
             f"SyncJobs in namespace {ctx.target.namespace}")
    if not jobs:
        return Group(Text(title, style="bold"), Text("waiting for SyncJobs…", style="dim"))
    ordered = sorted(jobs.values(), key=rows.sort_key)
    queue = state.queue
    job_rows = [rows.job_row(job, now, bar_width=LIVE_BAR_WIDTH, spot=queue.of(job))
                for job in ordered]
    headers = rows.live_headers(namespace=show_ns)
    phase_col = headers.index("PHASE")
    tail = "all finished" if state.finished() else "watching · Ctrl-C to stop"
    return tables.table(
        headers, [row.live_cells(namespace=show_ns) for row in job_rows],
        [{phase_col: tables.phase_style(row.phase)} for row in job_rows],
        title=title, caption=f"{rows.phase_summary(ordered)} · {tail}")


class PlainPrinter:
    """Pipe-friendly output: a line when something a reader cares about changed."""

    def __init__(self, ctx: Context, state: WatchState) -> None:
        self.ctx, self.state = ctx, state
        self.seen: dict[ObjectKey, tuple[Any, ...] | None] = {}

    def __call__(self, changes: list[Change]) -> None:
        show_ns = self.ctx.target.all_namespaces
        for change in changes:
            if change.job is None:
                if self.seen.get(change.key, ()) is not None:
                    name = "/".join(change.key) if show_ns else change.key[1]
                    print(f"{name}  deleted", flush=True)
                self.seen[change.key] = None
                continue
            spot = self.state.spot(change.job)
            signature = rows.watch_signature(change.job, spot)
            if self.seen.get(change.key) != signature:
                self.seen[change.key] = signature
                print(rows.watch_line(change.job, self.ctx.now(), namespace=show_ns,
                                      spot=spot), flush=True)


async def _consume(ctx: Context, state: WatchState,
                   on_change: Callable[[list[Change]], None]) -> None:
    # Named jobs are watched with their whole namespace: their places in line are counted
    # among the others (queueview), and move when the others do.
    scope = ctx.target.namespace if state.names else ctx.target.scope
    async for event in follow(ctx.client, SYNCJOBS, scope):
        first = not state.synced
        changes = state.apply(event)
        if first and state.missing():
            raise not_found(SYNCJOB.crd_name, state.missing()[0])
        on_change(changes)
        if state.finished():
            return


async def run(ctx: Context) -> int:
    args = ctx.args
    state = WatchState(names=frozenset(args.names), follow=args.follow)
    if args.plain or not sys.stdout.isatty():
        await _consume(ctx, state, PlainPrinter(ctx, state))
        return EXIT_OK
    with Live(console=console(), get_renderable=lambda: render(state, ctx),
              refresh_per_second=REFRESH_PER_SECOND, redirect_stderr=False) as live:
        await _consume(ctx, state, lambda _changes: live.refresh())
    return EXIT_OK
