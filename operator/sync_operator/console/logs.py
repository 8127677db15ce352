"""The console's runner logs: `GET /api/v1/namespaces/{ns}/syncjobs/{name}/logs`.

Read with the user's own token (the SyncJob, its pods, pods/log: syncjob.runner_pod, as
`kubectl sync logs` reads them), so the console needs no right of its own over pods and
the API server's refusal is the answer. `tailLines=N` keeps the last N lines;
`follow=true` keeps the response open and sends output as the runner prints it, until it
exits or the client goes. Either way the body is chunked `text/plain`, the log's bytes as
they are (a browser reads it with fetch() and a stream reader; EventSource framing would
only wrap each line). Errors come before any byte, as JSON `{"detail": ...}` with the API
server's status: 404 for no such job or no runner pod yet, 403 for no pods/log.

No `from __future__ import annotations`: FastAPI reads these annotations at run time.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse

from sync_operator.kube import ApiError, KubeClient
from sync_operator.syncjob.runner_pod import NoRunnerPodError, runner_log


class WithToken(Protocol):
    """Who asks (the console's Caller): only their token is used here."""

    @property
    def token(self) -> str: ...


def logs_router(as_user: Callable[[str], KubeClient],
                reader: Callable[..., Awaitable[WithToken]]) -> APIRouter:
    """The logs route, with the console's client factory and its check of the reader
    (passed in, so this module needs nothing of app.py's)."""
    router = APIRouter()

    @router.get("/api/v1/namespaces/{namespace}/syncjobs/{name}/logs",
                response_class=StreamingResponse)
    async def logs(namespace: str, name: str, who: Annotated[WithToken, Depends(reader)],
                   tail_lines: Annotated[int | None, Query(alias="tailLines", ge=0)] = None,
                   follow: bool = False) -> StreamingResponse:
        async with contextlib.AsyncExitStack() as opening:  # closed again on a refusal
            try:
                client = await opening.enter_async_context(as_user(who.token))
                chunks = await opening.enter_async_context(runner_log(
                    client, namespace, name, follow=follow, tail_lines=tail_lines))
            except ApiError as err:
                raise HTTPException(err.status, err.message) from None
            except NoRunnerPodError as err:
                raise HTTPException(404, str(err)) from None
            opened = opening.pop_all()  # kept open for the body

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    yield chunk
            finally:  # the runner exited, or the client left (a follow cancelled)
                await opened.aclose()

        # nosniff: without it Chromium holds the first 1 KiB of a text/plain body to
        # sniff its type, so a follow shows nothing until the runner has said that much.
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                   "X-Content-Type-Options": "nosniff"}
        return StreamingResponse(body(), media_type="text/plain; charset=utf-8",
                                 headers=headers)

    return router
