"""``history``, ``audit``, ``stats`` and ``console``: the mirror's records and analytics,
through the console's API with the user's own credentials (never PostgreSQL directly:
the console checks the user may read SyncJobs in the namespace, as kubectl would).

The console's address comes from --console or $SYNC_CONSOLE_URL (a port-forward of the
chart's console Service, or its ingress); the API server's service proxy will not do,
because it does not pass the user's token on.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from sync_operator.cli import tables
from sync_operator.cli.context import Context
from sync_operator.cli.errors import EXIT_API_ERROR, EXIT_OK, UsageError
from sync_operator.cli.output import console, print_data, show


def check(args: Any) -> None:
    """The console's address must be known before anything is sent."""
    console_url(args)


def console_url(args: Any) -> str:
    url = getattr(args, "console", None) or os.environ.get("SYNC_CONSOLE_URL")
    if not url:
        raise UsageError("history and audit are read through the console: pass --console URL "
                         "or set SYNC_CONSOLE_URL (e.g. kubectl port-forward "
                         "svc/sync-operator-console 8090, then http://127.0.0.1:8090)")
    return str(url).rstrip("/")


async def _get(ctx: Context, what: str, params: dict[str, str]) -> list[dict[str, Any]] | None:
    token = await ctx.client.connection.token_source().token()
    if not token:
        sys.stderr.write("the console needs a bearer token, and this kubeconfig user has "
                         "none (a client certificate?)\n")
        return None
    url = f"{console_url(ctx.args)}/api/v1/namespaces/{ctx.target.namespace}/{what}"
    async with aiohttp.ClientSession() as http, http.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            detail = body.get("detail") if isinstance(body, dict) else body
            sys.stderr.write(f"Error from the console ({resp.status}): {detail}\n")
            return None
        return list(body)


def _filters(ctx: Context, keys: dict[str, str]) -> dict[str, str]:
    params = {"limit": str(ctx.args.limit)}
    for arg, key in keys.items():
        value = getattr(ctx.args, arg, None)
        if value:
            params[key] = str(value)
    return params


async def _records(ctx: Context, what: str, filters: dict[str, str], headers: list[str],
                   row: Callable[[dict[str, Any]], list[str]]) -> int:
    """Fetch `what` with the given filters; print it as -o asks, or as a table."""
    rows = await _get(ctx, what, _filters(ctx, filters))
    if rows is None:
        return EXIT_API_ERROR
    if ctx.args.output in ("json", "yaml"):
        print_data(rows, ctx.args.output)
    else:
        show(console(), tables.table(headers, [row(r) for r in rows]))
    return EXIT_OK


async def history(ctx: Context) -> int:
    return await _records(
        ctx, "history", {"type": "job_type", "phase": "phase", "search": "search",
                         "since": "since"},
        ["NAME", "TYPE", "PHASE", "PROGRESS", "CREATED", "FINISHED", "ATTEMPTS", "ERROR"],
        lambda r: [r["name"], r["job_type"], r["phase"], f"{r['progress']:.0f}%",
                   r["created_at"], r["completed_at"] or "", str(r["attempts"]),
                   r["error"] or ""])


async def audit(ctx: Context) -> int:
    return await _records(
        ctx, "audit", {"action": "action", "user": "user", "search": "search",
                       "since": "since"},
        ["WHEN", "NAME", "ACTION", "WHO", "PHASE"],
        lambda r: [r["at"], r["name"], r["action"], r["user"], r["phase"] or ""])


SPARKS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    """One character per bucket, its height the bucket's share of the busiest one."""
    top = max(counts, default=0)
    return "".join(SPARKS[0 if not n else max(1, round(8 * n / top))] for n in counts)


def throughput_rows(points: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Per type: finished runs in each bucket from the first to the last (empty ones as
    zero), drawn as a sparkline, and the total."""
    buckets = sorted({p["bucket"] for p in points})
    per_type: dict[str, dict[str, int]] = {}
    for p in points:
        per_type.setdefault(p["job_type"], {})[p["bucket"]] = (
            p["succeeded"] + p["failed"] + p["cancelled"])
    headers = ["TYPE", f"FINISHED PER BUCKET ({len(buckets)})", "TOTAL"]
    return headers, [[job_type, sparkline([counts.get(b, 0) for b in buckets]),
                      str(sum(counts.values()))] for job_type, counts in sorted(per_type.items())]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


async def stats(ctx: Context) -> int:
    """``stats``: per type the success rate and duration p50/p95, then throughput over
    time (the console's analytics view, in a terminal)."""
    since = {"since": ctx.args.since} if ctx.args.since else {}
    per_type = await _get(ctx, "analytics", since)
    points = await _get(ctx, "analytics/throughput", {"bucket": ctx.args.bucket, **since})
    if per_type is None or points is None:
        return EXIT_API_ERROR
    if ctx.args.output in ("json", "yaml"):
        print_data({"types": per_type, "throughput": points}, ctx.args.output)
        return EXIT_OK
    show(console(), tables.table(
        ["TYPE", "FINISHED", "SUCCEEDED", "SUCCESS", "P50", "P95"],
        [[r["job_type"], str(r["finished"]), str(r["succeeded"]),
          "" if r["success_rate"] is None else f"{100 * r['success_rate']:.0f}%",
          _seconds(r["duration_p50_seconds"]), _seconds(r["duration_p95_seconds"])]
         for r in per_type]))
    if points:
        headers, rows = throughput_rows(points)
        show(console(), tables.table(headers, rows, title=f"Throughput per {ctx.args.bucket}"))
    return EXIT_OK


async def open_console(ctx: Context) -> int:
    """``console``: open the console in a browser, logged in as this kubeconfig's user
    (a one-minute handover code, never the token, goes into the URL)."""
    token = await ctx.client.connection.token_source().token()
    if not token:
        sys.stderr.write("the console needs a bearer token, and this kubeconfig user has "
                         "none (a client certificate?)\n")
        return EXIT_API_ERROR
    base = console_url(ctx.args)
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/api/v1/session/handover-code",
            headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            sys.stderr.write(f"Error from the console ({resp.status}): {body.get('detail')}\n")
            return EXIT_API_ERROR
    url = f"{base}/?{urlencode({'namespace': ctx.target.namespace, 'handover': body['code']})}"
    print(url)
    if not ctx.args.no_browser:
        webbrowser.open(url)
    return EXIT_OK
