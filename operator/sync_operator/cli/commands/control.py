"""``pause``, ``resume``, ``cancel``, ``priority``: merge patches of a SyncJob's spec.

The operator acts on the spec; these commands only state the wish. The API server's
rules (cancel is one-way, priority 1..10) answer with their own message, shown as is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sync_operator.api import SYNCJOB, SYNCJOBS, Phase, SyncJob
from sync_operator.cli.bodies import spec_patch
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_API_ERROR, EXIT_OK, UsageError, api_error_text
from sync_operator.cli.objects import UnreadableObjectError, parse_job
from sync_operator.cli.output import done, warn
from sync_operator.cli.rows import phase_of
from sync_operator.kube import ApiError


def note(action: str, job: SyncJob) -> str | None:
    """A warning when the patch was accepted but will change nothing (pure, for tests)."""
    name, phase = job.metadata.get("name", "?"), phase_of(job)
    if phase.is_terminal and not (action == "cancel" and phase == Phase.CANCELLED):
        return f"{name} has already finished ({phase}): {action} has no effect"
    if action == "resume" and job.spec.cancel:
        return f"{name} is being cancelled: resume has no effect"
    if action == "priority" and phase.holds_pod:
        return f"{name} is {phase}: priority only orders jobs waiting in the queue " \
               "(it applies again if the job is paused and resumed)"
    return None


async def _patch(ctx: Context, names: list[str], patch: dict[str, Any], action: str,
                 what: str) -> int:
    """Patch each job; report each result; exit 1 if any failed (the others still go)."""
    code = EXIT_OK
    for name in names:
        try:
            body = await ctx.client.patch(SYNCJOBS, name, patch, ctx.target.namespace)
        except ApiError as err:
            sys.stderr.write(api_error_text(err) + "\n")
            code = EXIT_API_ERROR
            continue
        done(SYNCJOB, name, what)
        try:
            message = note(action, parse_job(body))
        except UnreadableObjectError:
            message = None
        if message:
            warn(message)
    return code


async def pause(ctx: Context) -> int:
    return await _patch(ctx, ctx.args.names, spec_patch(paused=True), "pause", "paused")


async def resume(ctx: Context) -> int:
    return await _patch(ctx, ctx.args.names, spec_patch(paused=False), "resume", "resumed")


def check_cancel(args: argparse.Namespace) -> None:
    """Without a terminal to ask on, cancelling needs an explicit --yes."""
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("cancel cannot be undone: pass --yes to confirm "
                         "(stdin is not a terminal, so there is no one to ask)")


def confirm(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        return False
    return answer.strip().lower() in ("y", "yes")


async def cancel(ctx: Context) -> int:
    names = ctx.args.names
    if not ctx.args.yes:
        listed = ", ".join(names)
        if not confirm(f"Cancel SyncJob {listed} in namespace {ctx.target.namespace}? "
                       "This cannot be undone."):
            sys.stderr.write("Not cancelled.\n")
            return EXIT_OK
    return await _patch(ctx, names, spec_patch(cancel=True), "cancel", "cancel requested")


async def priority(ctx: Context) -> int:
    value = ctx.args.priority
    return await _patch(ctx, [ctx.args.name], spec_patch(priority=value), "priority",
                        f"priority set to {value}")
