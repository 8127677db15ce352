"""``kubectl sync list``: SyncJobs as a table (phase, progress bar, queue position, age)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sync_operator.api import SYNCJOB, SYNCJOBS, SyncJob
from sync_operator.cli import queueview, rows, tables
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_OK
from sync_operator.cli.objects import parse_jobs
from sync_operator.cli.output import console, print_data, print_names, show
from sync_operator.kube import KubeClient


def matches(job: SyncJob, ctx: Context) -> bool:
    """--type and --phase, applied here so a job without a phase yet counts as Pending."""
    types, phases = ctx.args.type, ctx.args.phase
    if types and job.spec.job_type not in types:
        return False
    return not phases or rows.phase_of(job) in phases


async def scope_jobs(client: KubeClient, scope: str | None) -> list[SyncJob]:
    """Every SyncJob in a namespace (or all, for None): what queue positions are counted
    among. One LIST, asked for only when a shown job is waiting."""
    listed = await client.list(SYNCJOBS, scope)
    return parse_jobs(listed.get("items") or [], quiet=True)


async def queue_of(ctx: Context, seen: Sequence[SyncJob], shown: Sequence[SyncJob],
                   *, complete: bool) -> queueview.QueueView:
    """Spots of the waiting jobs in `shown`. `seen` is what was listed; unless it is the
    whole scope (`complete`: no label selector), the scope is listed again, once."""
    if not any(queueview.is_waiting(job) for job in shown):
        return queueview.EMPTY
    if not complete:
        seen = await scope_jobs(ctx.client, ctx.target.scope)
    return queueview.queue_view(seen)


async def run(ctx: Context) -> int:
    target, fmt = ctx.target, ctx.args.output
    listed = await ctx.client.list(SYNCJOBS, target.scope, label_selector=ctx.args.selector)
    items = listed.get("items") or []
    parsed = parse_jobs(items)
    jobs = sorted((job for job in parsed if matches(job, ctx)), key=rows.sort_key)
    if fmt in ("json", "yaml"):
        keep = {(j.metadata.get("namespace"), j.metadata.get("name")) for j in jobs}
        listed["items"] = [b for b in items
                           if (b["metadata"].get("namespace"), b["metadata"]["name"]) in keep]
        print_data(listed, fmt)
        return EXIT_OK
    if fmt == "name":
        print_names(SYNCJOB, (str(j.metadata["name"]) for j in jobs))
        return EXIT_OK
    out = console()
    if not jobs:
        where = "any namespace" if target.all_namespaces else f"{target.namespace} namespace"
        sys.stderr.write(f"No SyncJobs found in {where}.\n")
        return EXIT_OK
    # Positions count every waiting job in scope, before --type/--phase narrow the table.
    queue = await queue_of(ctx, parsed, jobs, complete=not ctx.args.selector)
    now, wide, show_ns = ctx.now(), fmt == "wide", target.all_namespaces
    job_rows = [rows.job_row(job, now, spot=queue.of(job)) for job in jobs]
    headers = rows.job_headers(wide=wide, namespace=show_ns)
    phase_col = headers.index("PHASE")
    show(out, tables.table(
        headers,
        [row.cells(wide=wide, namespace=show_ns) for row in job_rows],
        [{phase_col: tables.phase_style(row.phase)} for row in job_rows],
    ))
    return EXIT_OK
