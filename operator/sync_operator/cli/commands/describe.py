"""``kubectl sync get NAME``: one SyncJob in detail, or its raw body with -o json|yaml;
``describe NAME``: the same detail and the recent Events of the job and its runner Job."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from sync_operator.api import SYNCJOBS
from sync_operator.cli import queueview, rows, tables
from sync_operator.cli.commands.listing import scope_jobs
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_OK
from sync_operator.cli.objects import parse_job
from sync_operator.cli.output import console, print_data, show
from sync_operator.kube import ApiError
from sync_operator.kube.bodies import RawBody
from sync_operator.kube.events import events_about
from sync_operator.kube.resources import JOBS


async def run(ctx: Context) -> int:
    fmt = ctx.args.output
    body = await ctx.client.get(SYNCJOBS, ctx.args.name, ctx.target.namespace)
    if fmt in ("json", "yaml"):
        print_data(body, fmt)
        return EXIT_OK
    show(console(), await _details(ctx, body, wide=fmt == "wide"))
    return EXIT_OK


async def describe(ctx: Context) -> int:
    namespace = ctx.target.namespace
    body = await ctx.client.get(SYNCJOBS, ctx.args.name, namespace)
    job = parse_job(body)
    uids = [str(body["metadata"]["uid"])]
    if job.status.job_ref:
        runner = await ctx.client.get_or_none(JOBS, job.status.job_ref, namespace)
        if runner is not None:
            uids.append(str(runner["metadata"]["uid"]))
    now = ctx.now()
    try:
        events = tables.events(rows.event_rows(await events_about(ctx.client, namespace, uids),
                                               now), rows.EVENT_HEADERS)
    except ApiError as err:
        if err.status != 403:
            raise
        events = Text(f"Events: not shown, the API server refused to list them: {err}",
                      style="bold")
    show(console(), Group(await _details(ctx, body, wide=True), Text(""), events))
    return EXIT_OK


async def _details(ctx: Context, body: RawBody, *, wide: bool) -> RenderableType:
    namespace = ctx.target.namespace
    job, now = parse_job(body), ctx.now()
    spot = None
    if queueview.is_waiting(job):
        # Its place in line is among the others: list the namespace once, only now.
        others = await scope_jobs(ctx.client, namespace)
        spot = queueview.queue_view(queueview.with_job(others, job)).of(job)
    return tables.details(rows.job_details(job, now, wide=wide, spot=spot),
                          rows.condition_rows(job.status.conditions, now),
                          rows.CONDITION_HEADERS)
