"""``kubectl sync create TYPE``: a new SyncJob from flags; the API server validates it."""

from __future__ import annotations

import argparse

from sync_operator.api import SYNCJOB, SYNCJOBS
from sync_operator.api.requests import new_syncjob
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_OK
from sync_operator.cli.output import done, print_data, print_names
from sync_operator.cli.params import parse_params


def check(args: argparse.Namespace) -> None:
    """Parse the params before connecting, so a typo is a usage error (exit 2)."""
    args.params = parse_params(args.param, args.params_json)


async def run(ctx: Context) -> int:
    args = ctx.args
    body = new_syncjob(
        str(args.job_type), name=args.name,
        generate_name=None if args.name else f"{args.job_type}-",
        priority=args.priority, params=args.params, timeout_minutes=args.timeout_minutes,
        retry_attempts=args.retry_attempts, paused=args.paused, dedup_key=args.dedup_key,
    )
    created = await ctx.client.create(SYNCJOBS, body, ctx.target.namespace)
    name = str(created["metadata"]["name"])
    if args.output in ("json", "yaml"):
        print_data(created, args.output)
    elif args.output == "name":
        print_names(SYNCJOB, [name])
    else:
        done(SYNCJOB, name, "created")
    return EXIT_OK
