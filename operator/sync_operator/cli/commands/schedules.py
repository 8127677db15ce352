"""``schedules`` (list, or ``set`` a schedule's cron, time zone, priority, concurrency),
``suspend``, ``unsuspend``, ``trigger``: SyncSchedules from the command line."""

from __future__ import annotations

import argparse
import sys

from sync_operator.api import SYNCJOB, SYNCJOBS, SYNCSCHEDULE, SYNCSCHEDULES
from sync_operator.api.requests import job_from_schedule, spec_patch
from sync_operator.cli import rows, tables
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_API_ERROR, EXIT_OK, UsageError, api_error_text
from sync_operator.cli.objects import parse_schedule, parse_schedules
from sync_operator.cli.output import console, done, print_data, print_names, show
from sync_operator.kube import ApiError

SETTABLE = {"cron": "schedule", "time_zone": "timeZone", "priority": "priority",
            "max_concurrency": "maxConcurrency"}


def check(args: argparse.Namespace) -> None:
    """`schedules set NAME` needs a name and something to set; a plain list takes
    neither (checked before connecting)."""
    changes = {field for arg, field in SETTABLE.items() if getattr(args, arg) is not None}
    if args.action == "set" and (not args.name or not changes):
        raise UsageError("schedules set SCHEDULE needs at least one of --cron, --time-zone, "
                         "--priority, --max-concurrency")
    if args.action is None and (args.name or changes):
        raise UsageError("to change a schedule: schedules set SCHEDULE --cron ... (a list "
                         "takes no name)")


async def run(ctx: Context) -> int:
    return await (set_schedule(ctx) if ctx.args.action == "set" else list_schedules(ctx))


async def set_schedule(ctx: Context) -> int:
    changes = {field: getattr(ctx.args, arg) for arg, field in SETTABLE.items()
               if getattr(ctx.args, arg) is not None}
    try:
        await ctx.client.patch(SYNCSCHEDULES, ctx.args.name, spec_patch(**changes),
                               ctx.target.namespace)
    except ApiError as err:
        sys.stderr.write(api_error_text(err) + "\n")
        return EXIT_API_ERROR
    done(SYNCSCHEDULE, ctx.args.name, "updated (" + ", ".join(
        f"{k}={v}" for k, v in changes.items()) + ")")
    return EXIT_OK


async def list_schedules(ctx: Context) -> int:
    target, fmt = ctx.target, ctx.args.output
    listed = await ctx.client.list(SYNCSCHEDULES, target.scope)
    if fmt in ("json", "yaml"):
        print_data(listed, fmt)
        return EXIT_OK
    schedules = sorted(parse_schedules(listed.get("items") or []),
                       key=lambda s: (str(s.metadata.get("namespace")), str(s.metadata["name"])))
    if fmt == "name":
        print_names(SYNCSCHEDULE, (str(s.metadata["name"]) for s in schedules))
        return EXIT_OK
    if not schedules:
        where = "any namespace" if target.all_namespaces else f"{target.namespace} namespace"
        sys.stderr.write(f"No SyncSchedules found in {where}.\n")
        return EXIT_OK
    now, wide, show_ns = ctx.now(), fmt == "wide", target.all_namespaces
    headers = rows.schedule_headers(wide=wide, namespace=show_ns)
    suspend_col = headers.index("SUSPEND")
    show(console(), tables.table(
        headers, [rows.schedule_row(s, now, wide=wide, namespace=show_ns) for s in schedules],
        [{suspend_col: "yellow" if s.spec.suspend else ""} for s in schedules]))
    return EXIT_OK


async def _set_suspend(ctx: Context, suspend: bool) -> int:
    code = EXIT_OK
    for name in ctx.args.names:
        try:
            await ctx.client.patch(SYNCSCHEDULES, name, spec_patch(suspend=suspend),
                                   ctx.target.namespace)
        except ApiError as err:
            sys.stderr.write(api_error_text(err) + "\n")
            code = EXIT_API_ERROR
            continue
        done(SYNCSCHEDULE, name, "suspended" if suspend else "unsuspended")
    return code


async def suspend(ctx: Context) -> int:
    return await _set_suspend(ctx, True)


async def unsuspend(ctx: Context) -> int:
    return await _set_suspend(ctx, False)


async def trigger(ctx: Context) -> int:
    namespace, fmt = ctx.target.namespace, ctx.args.output
    schedule = parse_schedule(await ctx.client.get(SYNCSCHEDULES, ctx.args.name, namespace))
    created = await ctx.client.create(SYNCJOBS, job_from_schedule(schedule, ctx.now()),
                                      namespace)
    name = str(created["metadata"]["name"])
    if fmt in ("json", "yaml"):
        print_data(created, fmt)
    elif fmt == "name":
        print_names(SYNCJOB, [name])
    else:
        done(SYNCJOB, name, f"created (from syncschedule {ctx.args.name})")
    return EXIT_OK
