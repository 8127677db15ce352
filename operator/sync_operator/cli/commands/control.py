"""``pause``, ``resume``, ``cancel``, ``priority``, ``delete``: on named SyncJobs or on
every one a label selector picks (a bulk action, one result line per job).

The operator acts on the spec; these commands only state the wish (merge patches of
the spec, or a deletion). The API server's rules (cancel is one-way, priority 1..10)
answer with their own message, shown as is; one refusal does not stop the others.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sync_operator.api import SYNCJOB, SYNCJOBS, Phase, SyncJob
from sync_operator.api.requests import spec_patch
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


def check_targets(args: argparse.Namespace) -> None:
    """NAMEs or -l SELECTOR, exactly one of them (checked before connecting)."""
    names = args.values[:-1] if args.command == "priority" else args.names
    if bool(names) == bool(args.selector):
        raise UsageError("give NAMEs or -l SELECTOR (one of them, not both)")
    if args.command == "priority":
        try:
            args.priority = int(args.values[-1])
        except ValueError:
            raise UsageError(f"PRIORITY must be a number 1..10, not {args.values[-1]!r}")\
                from None
    if args.command == "cancel" or (args.command == "delete" and _bulk(args)):
        check_cancel(args)


def _bulk(args: argparse.Namespace) -> bool:
    """A bulk action (a selector, or several names): destructive ones are confirmed."""
    return bool(args.selector) or len(args.names) > 1


async def targets(ctx: Context) -> list[str]:
    """The jobs a command acts on: the names given, or those the selector picks now."""
    args = ctx.args
    if not args.selector:
        return list(args.values[:-1] if args.command == "priority" else args.names)
    listed = await ctx.client.list(SYNCJOBS, ctx.target.namespace,
                                   label_selector=args.selector)
    return sorted(item["metadata"]["name"] for item in listed["items"])


async def _patch(ctx: Context, names: list[str], patch: dict[str, Any] | None, action: str,
                 what: str) -> int:
    """Patch (or, with no patch, delete) each job; report each result; exit 1 if any
    failed (the others still go)."""
    code = EXIT_OK
    if not names:
        warn(f"no SyncJob in namespace {ctx.target.namespace} matches {ctx.args.selector}")
    for name in names:
        try:
            if patch is None:
                await ctx.client.delete(SYNCJOBS, name, ctx.target.namespace)
                done(SYNCJOB, name, what)
                continue
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
    return await _patch(ctx, await targets(ctx), spec_patch(paused=True), "pause", "paused")


async def resume(ctx: Context) -> int:
    return await _patch(ctx, await targets(ctx), spec_patch(paused=False), "resume",
                        "resumed")


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


async def _confirmed(ctx: Context, verb: str, names: list[str], refused: str) -> bool:
    if ctx.args.yes or not names:
        return True
    listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    if confirm(f"{verb} {len(names)} SyncJob(s) in namespace {ctx.target.namespace} "
               f"({listed})? This cannot be undone."):
        return True
    sys.stderr.write(refused + "\n")
    return False


async def cancel(ctx: Context) -> int:
    names = await targets(ctx)
    if not await _confirmed(ctx, "Cancel", names, "Not cancelled."):
        return EXIT_OK
    return await _patch(ctx, names, spec_patch(cancel=True), "cancel", "cancel requested")


async def delete(ctx: Context) -> int:
    names = await targets(ctx)
    if _bulk(ctx.args) and not await _confirmed(ctx, "Delete", names, "Not deleted."):
        return EXIT_OK
    return await _patch(ctx, names, None, "delete", "deleted")


async def priority(ctx: Context) -> int:
    value = ctx.args.priority
    return await _patch(ctx, await targets(ctx), spec_patch(priority=value), "priority",
                        f"priority set to {value}")
