"""Entry point of ``kubectl-sync``: parse, connect, run one command, map failures to exit codes.

0 ok; 1 the API server refused (its message on stderr, verbatim) or could not be reached;
2 the command line was wrong (nothing was sent); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import aiohttp

from sync_operator.cli.commands import (
    control,
    create,
    describe,
    history,
    listing,
    logs,
    schedules,
    watch,
)
from sync_operator.cli.connect import ConfigError, connect
from sync_operator.cli.context import Context
from sync_operator.cli.errors import (
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    api_error_text,
)
from sync_operator.cli.objects import UnreadableObjectError
from sync_operator.cli.parser import build_parser, canonical
from sync_operator.kube import ApiError, KubeClient


class Command(NamedTuple):
    run: Callable[[Context], Awaitable[int]]
    # Checks that need no cluster, run before connecting (usage errors exit 2).
    check: Callable[[argparse.Namespace], None] | None = None


COMMANDS: dict[str, Command] = {
    "list": Command(listing.run),
    "get": Command(describe.run),
    "describe": Command(describe.describe),
    "logs": Command(logs.run, logs.check),
    "create": Command(create.run, create.check),
    "pause": Command(control.pause, control.check_targets),
    "resume": Command(control.resume, control.check_targets),
    "cancel": Command(control.cancel, control.check_targets),
    "delete": Command(control.delete, control.check_targets),
    "priority": Command(control.priority, control.check_targets),
    "watch": Command(watch.run),
    "schedules": Command(schedules.run, schedules.check),
    "history": Command(history.history, history.check),
    "audit": Command(history.audit, history.check),
    "stats": Command(history.stats, history.check),
    "console": Command(history.open_console, history.check),
    "suspend": Command(schedules.suspend),
    "unsuspend": Command(schedules.unsuspend),
    "trigger": Command(schedules.trigger),
}


async def _run(command: Command, args: argparse.Namespace) -> int:
    target = connect(args.kubeconfig, args.context, args.namespace,
                     bool(getattr(args, "all_namespaces", False)))
    async with KubeClient(target.connection) as client:
        return await command.run(Context(args, target, client))


def _error(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    command = COMMANDS[canonical(args.command)]
    try:
        if command.check is not None:
            command.check(args)
        return asyncio.run(_run(command, args))
    except UsageError as err:
        _error(f"error: {err}")
        return EXIT_USAGE
    except ApiError as err:
        _error(api_error_text(err))
        return EXIT_API_ERROR
    except (ConfigError, UnreadableObjectError) as err:
        _error(f"error: {err}")
        return EXIT_API_ERROR
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        _error(f"error: cannot reach the API server: {err or type(err).__name__}")
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
