"""``kubectl sync get NAME``: one SyncJob in detail, or its raw body with -o json|yaml."""

from __future__ import annotations

from sync_operator.api import SYNCJOBS
from sync_operator.cli import queueview, rows, tables
from sync_operator.cli.commands.listing import scope_jobs
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_OK
from sync_operator.cli.objects import parse_job
from sync_operator.cli.output import console, print_data, show


async def run(ctx: Context) -> int:
    fmt = ctx.args.output
    namespace = ctx.target.namespace
    body = await ctx.client.get(SYNCJOBS, ctx.args.name, namespace)
    if fmt in ("json", "yaml"):
        print_data(body, fmt)
        return EXIT_OK
    job, now = parse_job(body), ctx.now()
    spot = None
    if queueview.is_waiting(job):
        # Its place in line is among the others: list the namespace once, only now.
        others = await scope_jobs(ctx.client, namespace)
        spot = queueview.queue_view(queueview.with_job(others, job)).of(job)
    show(console(), tables.details(
        rows.job_details(job, now, wide=fmt == "wide", spot=spot),
        rows.condition_rows(job.status.conditions, now), rows.CONDITION_HEADERS))
    return EXIT_OK
