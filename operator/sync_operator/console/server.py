"""Build the console from its settings and serve it with uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import uvicorn

from sync_operator.console.access import AccessReviewer
from sync_operator.console.app import Console, create_app
from sync_operator.console.handover import Handover
from sync_operator.console.history import History
from sync_operator.console.identity import TokenReviewer
from sync_operator.console.live import LiveJobs
from sync_operator.console.settings import ConsoleSettings
from sync_operator.kube import KubeClient
from sync_operator.kube.config import Connection, load_connection


@contextlib.asynccontextmanager
async def console(settings: ConsoleSettings, connection: Connection | None = None
                  ) -> AsyncIterator[Console]:
    """The console's parts on its own identity (in-cluster, or `connection`)."""
    client = KubeClient(connection or load_connection())
    history = History(settings.database_url) if settings.database_url else None
    try:
        yield Console(settings=settings, client=client,
                      tokens=TokenReviewer(client, ttl=settings.token_cache_seconds),
                      access=AccessReviewer(client, ttl=settings.access_cache_seconds),
                      live=LiveJobs(client, settings.namespace), history=history,
                      handover=Handover(settings.session_key))
    finally:
        if history is not None:
            await history.close()
        await client.close()


def uvicorn_server(parts: Console) -> uvicorn.Server:
    settings = parts.settings
    return uvicorn.Server(uvicorn.Config(
        create_app(parts), host=settings.listen_addr, port=settings.port,
        log_level="info", access_log=False, lifespan="on"))


async def serve(settings: ConsoleSettings) -> None:
    async with console(settings) as parts:
        await uvicorn_server(parts).serve()
