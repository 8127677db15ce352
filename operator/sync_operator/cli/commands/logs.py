"""``kubectl sync logs NAME [-f] [--tail N]``: what the SyncJob's runner printed.

Read from its newest pod as pods/log through the API server, with this kubeconfig's own
credentials, so it shows what `kubectl logs` would and is refused where that would be.
"""

from __future__ import annotations

import argparse
import os
import sys

from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_API_ERROR, EXIT_OK, UsageError
from sync_operator.syncjob.runner_pod import NoRunnerPodError, runner_log


def check(args: argparse.Namespace) -> None:
    if args.tail < -1:
        raise UsageError(f"--tail must be -1 (all) or more, not {args.tail}")


async def run(ctx: Context) -> int:
    tail = None if ctx.args.tail < 0 else ctx.args.tail
    out = sys.stdout.buffer
    try:
        async with runner_log(ctx.client, ctx.target.namespace, ctx.args.name,
                              follow=ctx.args.follow, tail_lines=tail) as chunks:
            async for chunk in chunks:
                out.write(chunk)
                out.flush()  # a followed line shows when it is printed
    except NoRunnerPodError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_API_ERROR
    except BrokenPipeError:  # `| head` has read enough: not an error, as for kubectl logs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
