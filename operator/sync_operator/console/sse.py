"""A browser's live stream: Server-Sent Events from LiveJobs, batched, with heartbeats,
and re-checked as it runs.

Changes go out at most once every `batch_seconds` (about 250 ms), as one `changes`
event: a thousand progress updates a second become four messages, each the latest
state of the jobs in it. The window is leading-edge: a change to a quiet stream is sent
at once, and only what follows within the window waits for its end (a fixed hold cost
every update ~125 ms on average for nothing). Every message's id is the newest
resourceVersion sent, so a reconnecting EventSource (Last-Event-ID) resumes where it
was. A stream outlives the moment its token was checked, so every `recheck_seconds` the
user's token and right to read are reviewed again (as KueueViz does); a revoked one
ends the stream with an `expired` event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sync_operator.console.live import Change, LiveJobs, version_of


def message(event: str, data: Any, id_: int | None = None) -> str:
    lines = [f"event: {event}"]
    if id_ is not None:
        lines.append(f"id: {id_}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def _latest(changes: list[Change]) -> list[dict[str, Any]]:
    """The last change per job, in the order each job last changed."""
    last: dict[str, Change] = {}
    for change in changes:
        name = change.job["metadata"]["name"]
        last.pop(name, None)
        last[name] = change
    return [{"type": c.type, "job": c.job} for c in last.values()]


async def stream(live: LiveJobs, namespace: str, *, last_event_id: int | None,
                 still_allowed: Callable[[], Awaitable[bool]], batch_seconds: float,
                 heartbeat_seconds: float, recheck_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> AsyncIterator[str]:
    """The SSE text of one browser's stream, until it disconnects or loses access."""
    await live.ready.wait()
    with live.subscribe(namespace) as sub:
        caught_up = None if last_event_id is None else live.since(namespace, last_event_id)
        if caught_up is None:
            yield message("snapshot", {"jobs": live.jobs(namespace)}, live.version)
        elif caught_up:
            yield message("changes", {"changes": _latest(caught_up)}, live.version)
        sent_at = checked_at = clock()
        changes_at = float("-inf")  # when the last `changes` went out
        while True:
            timeout = max(0.0, min(heartbeat_seconds - (clock() - sent_at),
                                   recheck_seconds - (clock() - checked_at)))
            first: Change | None = None
            idle = False
            if not sub.lagged:
                try:
                    first = await asyncio.wait_for(sub.queue.get(), timeout)
                except TimeoutError:
                    idle = True
            if clock() - checked_at >= recheck_seconds:
                checked_at = clock()
                if not await still_allowed():
                    yield message("expired", {"reason": "the token or the right to read "
                                                         "SyncJobs here is gone"})
                    return
            if idle:
                if clock() - sent_at >= heartbeat_seconds:
                    yield ": heartbeat\n\n"
                    sent_at = clock()
                continue
            if first is None or sub.lagged:  # fell behind: start again from a snapshot
                sub.lagged = False
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                yield message("snapshot", {"jobs": live.jobs(namespace)}, live.version)
                sent_at = clock()
                continue
            batch = [first]
            hold = batch_seconds - (clock() - changes_at)
            if hold > 0:
                await asyncio.sleep(hold)
            while not sub.queue.empty():
                item = sub.queue.get_nowait()
                if item is not None:
                    batch.append(item)
            yield message("changes", {"changes": _latest(batch)},
                          max(version_of(c.job) for c in batch))
            sent_at = changes_at = clock()
