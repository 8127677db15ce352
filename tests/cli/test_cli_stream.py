"""The list-then-watch stream behind `kubectl sync watch`, against a scripted API client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import aiohttp
import pytest

from sync_operator.api import SYNCJOBS
from sync_operator.kube import ApiError, KubeClient, Resource
from sync_operator.kube.stream import RESET, Event, follow


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


class ScriptedClient:
    """Answers list() and watch() from scripts; records the versions watches start at."""

    def __init__(self, lists: list[list[dict[str, Any]]],
                 watches: list[list[tuple[str, dict[str, Any]]] | BaseException]) -> None:
        self.lists, self.watches = lists, watches
        self.list_calls = 0
        self.watched_from: list[str | None] = []

    async def list(self, res: Resource, namespace: str | None = None,
                   **_: Any) -> dict[str, Any]:
        items = self.lists[self.list_calls]
        self.list_calls += 1
        return {"metadata": {"resourceVersion": f"L{self.list_calls}"}, "items": items}

    async def list_kept(self, res: Resource, namespace: str | None,
                        keep: Callable[[Any], Any], **kwargs: Any) -> tuple[list[Any], str]:
        listed = await self.list(res, namespace, **kwargs)
        return [keep(item) for item in listed["items"]], listed["metadata"]["resourceVersion"]

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None,
                    **_: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watched_from.append(resource_version)
        script = self.watches.pop(0)
        if isinstance(script, BaseException):
            raise script
        for event in script:
            yield event


async def take(client: ScriptedClient, count: int) -> list[Event]:
    out = []
    stream = follow(cast(KubeClient, client), SYNCJOBS, "ns", retries=2)
    async for event in stream:
        out.append(event)
        if len(out) == count:
            break
    await stream.aclose()
    return out


async def test_lists_then_watches_from_the_list_version_and_resumes_after_timeouts() -> None:
    client = ScriptedClient(
        lists=[[obj("a", "1")]],
        watches=[[("MODIFIED", obj("a", "5")), ("BOOKMARK", obj("", "7"))],
                 [("ADDED", obj("b", "9"))]])
    events = await take(client, 3)
    assert [e.type for e in events] == [RESET, "MODIFIED", "ADDED"]
    assert events[0].objects == [obj("a", "1")]
    # The server ended the first watch: the next starts from the bookmark, without a relist.
    assert client.watched_from == ["L1", "7"]
    assert client.list_calls == 1


async def test_gone_relists_and_resets() -> None:
    client = ScriptedClient(
        lists=[[obj("a", "1")], [obj("b", "3")], [obj("b", "3")]],
        watches=[[("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})],
                 ApiError(410, "Gone", "too old"),
                 [("DELETED", obj("b", "4"))]])
    events = await take(client, 4)
    assert [e.type for e in events] == [RESET, RESET, RESET, "DELETED"]
    assert client.list_calls == 3


async def test_other_errors_end_the_stream() -> None:
    client = ScriptedClient(
        lists=[[]], watches=[[("ERROR", {"code": 500, "reason": "InternalError",
                                         "message": "etcd down"})]])
    with pytest.raises(ApiError, match="etcd down"):
        await take(client, 5)


async def test_connection_drops_are_retried_a_few_times() -> None:
    drop = aiohttp.ClientConnectionError("reset")
    client = ScriptedClient(lists=[[]], watches=[drop, [("ADDED", obj("a", "2"))]])
    assert [e.type for e in await take(client, 2)] == [RESET, "ADDED"]
    failing = ScriptedClient(lists=[[]], watches=[drop, drop, drop, drop])
    with pytest.raises(aiohttp.ClientConnectionError):
        await take(failing, 5)
