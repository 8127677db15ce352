"""``kubectl sync get NAME``: one SyncJob in detail, or its raw body with -o json|yaml."""

from __future__ import annotations

from sync_operator.api import SYNCJOBS
from sync_operator.cli import rows, tables
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_OK
from sync_operator.cli.objects import parse_job
from sync_operator.cli.output import console, print_data, show


async def run(ctx: Context) -> int:
    fmt = ctx.args.output
    body = await ctx.client.get(SYNCJOBS, ctx.args.name, ctx.target.namespace)
    if fmt in ("json", "yaml"):
        print_data(body, fmt)
        return EXIT_OK
    job, now = parse_job(body), ctx.now()
    show(console(), tables.details(
        rows.job_details(job, now, wide=fmt == "wide"),
        rows.condition_rows(job.status.conditions, now), rows.CONDITION_HEADERS))
    return EXIT_OK
