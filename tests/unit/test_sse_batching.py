"""The live stream's batching window: leading-edge, so a quiet stream's change goes out
at once and only what follows within the window is held (pure logic: a LiveJobs fed
by hand, no watch)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from sync_operator.console.live import LiveJobs
from sync_operator.console.sse import stream


def _job(name: str, version: int, priority: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(version)},
            "spec": {"priority": priority}, "status": {}}


async def _allowed() -> bool:
    return True


def _changes(text: str) -> list[tuple[str, int]]:
    data = json.loads(text.split("data: ", 1)[1])
    return [(c["job"]["metadata"]["name"], c["job"]["spec"]["priority"])
            for c in data["changes"]]


async def test_a_quiet_streams_change_goes_out_at_once_and_followers_share_a_batch() -> None:
    live = LiveJobs(cast(Any, None))
    live._reset([_job("a", 1, 5)])
    live.ready.set()
    # A window far longer than the wait below: were the first change held for it, the
    # wait would fail.
    messages = stream(live, "ns", last_event_id=None, still_allowed=_allowed,
                      batch_seconds=1.5, heartbeat_seconds=60, recheck_seconds=60)
    assert (await anext(messages)).startswith("event: snapshot")
    pending = asyncio.ensure_future(anext(messages))
    await asyncio.sleep(0)  # the stream is waiting for a change
    live._apply("MODIFIED", _job("a", 2, 4))
    first = await asyncio.wait_for(pending, 1.0)
    assert _changes(first) == [("a", 4)]

    # Within the window: held, then sent together, each job's latest state once.
    live._apply("MODIFIED", _job("a", 3, 3))
    live._apply("ADDED", _job("b", 4, 5))
    live._apply("MODIFIED", _job("a", 5, 2))
    second = await asyncio.wait_for(anext(messages), 10.0)
    assert _changes(second) == [("b", 5), ("a", 2)]
    assert "id: 5" in second
    await messages.aclose()
