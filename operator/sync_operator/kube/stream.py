"""A list-then-watch event stream, as client-go's reflector does it: no polling.

The first list gives the state and a resourceVersion; the watch continues from there.
When the server ends a watch (its timeout) the stream resumes from the last version
seen; when that version is too old (410 Gone) it lists again and says so with a RESET.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sync_operator.kube import ApiError, KubeClient, Resource
from sync_operator.kube.bodies import RawBody

RESET = "RESET"
GONE = 410


@dataclass(frozen=True)
class Event:
    """RESET carries the whole current list; ADDED/MODIFIED/DELETED carry one object."""

    type: str
    objects: list[RawBody]


async def follow(client: KubeClient, res: Resource, namespace: str | None, *,
                 field_selector: str | None = None, label_selector: str | None = None,
                 watch_seconds: int = 300, retries: int = 5,
                 keep: Callable[[RawBody], RawBody] = lambda body: body,
                 ) -> AsyncIterator[Event]:
    """Yield a RESET, then every change, until the caller stops iterating. Each object
    is yielded as `keep` makes it; a RESET's as each page of the LIST arrives."""
    version: str | None = None
    failures = 0
    while True:
        try:
            if version is None:
                listed, version = await client.list_kept(
                    res, namespace, keep, field_selector=field_selector,
                    label_selector=label_selector)
                yield Event(RESET, listed)
            async for kind, obj in client.watch(res, namespace, resource_version=version,
                                                field_selector=field_selector,
                                                label_selector=label_selector,
                                                timeout_seconds=watch_seconds):
                failures = 0
                if kind == "ERROR":  # the object is a metav1.Status, not a SyncJob
                    failure: dict[str, Any] = dict(obj)
                    if failure.get("code") == GONE:
                        version = None
                        break
                    raise ApiError(int(failure.get("code") or 500),
                                   str(failure.get("reason", "")),
                                   str(failure.get("message", failure)), failure)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    yield Event(kind, [keep(obj)])
        except ApiError as err:
            if err.status != GONE:
                raise
            version = None
        except (aiohttp.ClientError, TimeoutError) as err:
            failures += 1
            if failures > retries:
                raise err
            await asyncio.sleep(min(0.25 * 2 ** failures, 5.0))
