"""The console's HTTP API (FastAPI): thin routes over identity, access, live, actions
and history.

Every route first finds the user (a bearer token, or the session cookie that
`POST /api/v1/session` sets for a browser: EventSource cannot send headers), then
checks with a SubjectAccessReview that this user may read SyncJobs in the namespace,
and only then answers from the console's own watch or the mirror. Writes are sent to
the API server with the user's token, so its answer (a 403 included) is the answer.

No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
run time, and they name dependencies defined inside `create_app`.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from sync_operator.console.access import AccessReviewer, Attributes
from sync_operator.console.actions import Action, ActionRequest, ItemResult, apply
from sync_operator.console.handover import HANDOVER_SECONDS, Handover
from sync_operator.console.history import (
    MAX_PAGE,
    AuditFilter,
    AuditRow,
    Bucket,
    History,
    HistoryFilter,
    HistoryRow,
    Page,
    ThroughputPoint,
    TimelineRun,
    TypeStats,
)
from sync_operator.console.identity import TokenReviewer, User
from sync_operator.console.live import LiveJobs
from sync_operator.console.logs import logs_router
from sync_operator.console.new_jobs import NewJob, UnreadableScheduleError, create, trigger
from sync_operator.console.schedules import ScheduleChange, change, schedules
from sync_operator.console.settings import ConsoleSettings
from sync_operator.console.sse import stream
from sync_operator.kube import ApiError, KubeClient
from sync_operator.kube.config import Connection
from sync_operator.kube.events import EventView, events_about
from sync_operator.kube.resources import JOBS

COOKIE = "sync_console_session"
# How far back the throughput chart looks when the browser does not say.
THROUGHPUT_WINDOW = {"minute": timedelta(hours=2), "hour": timedelta(days=2),
                     "day": timedelta(days=30)}
STATIC = Path(__file__).resolve().parent / "static"
# The buttons the browser may show, and the question each one asks.
CONTROLS: dict[str, Attributes] = {
    "pause": Attributes(verb="patch"), "resume": Attributes(verb="patch"),
    "cancel": Attributes(verb="patch"), "priority": Attributes(verb="patch"),
    "delete": Attributes(verb="delete"), "create": Attributes(verb="create"),
    "schedules": Attributes(verb="patch", resource="syncschedules"),
    "logs": Attributes(verb="get", group="", resource="pods", subresource="log"),
}


@dataclass
class Console:
    """What the routes share: the console's own client and the parts built on it."""

    settings: ConsoleSettings
    client: KubeClient
    tokens: TokenReviewer
    access: AccessReviewer
    live: LiveJobs
    history: History | None
    handover: Handover

    def as_user(self, token: str) -> KubeClient:
        """A client that speaks for the user: their own token, nothing of ours."""
        own = self.client.connection
        return KubeClient(Connection(server=own.server, ca_data=own.ca_data,
                                     insecure=own.insecure, token=token))


@dataclass(frozen=True)
class Caller:
    user: User
    token: str


class SessionRequest(BaseModel):
    token: str


class HandoverCode(BaseModel):
    code: str
    expires_in_seconds: int


class HandoverRequest(BaseModel):
    code: str


class WhoAmI(BaseModel):
    user: str
    groups: list[str]


def _token(authorization: str | None, cookie: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return cookie or None


def create_app(console: Console) -> FastAPI:
    """The API, over a Console whose watch the caller runs (see `lifespan`)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watch = asyncio.create_task(console.live.run(), name="console-watch")
        try:
            yield
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    app = FastAPI(title="sync-operator console", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def caller(request: Request,
                     authorization: Annotated[str | None, Header()] = None) -> Caller:
        token = _token(authorization, request.cookies.get(COOKIE))
        if token is None:
            raise HTTPException(401, "log in: a bearer token (header or session cookie)")
        user = await console.tokens.review(token)
        if user is None:
            raise HTTPException(401, "the API server does not accept this token")
        return Caller(user, token)

    async def reader(namespace: str, who: Annotated[Caller, Depends(caller)]) -> Caller:
        if namespace != (console.settings.namespace or namespace):
            raise HTTPException(404, f"this console shows namespace "
                                     f"{console.settings.namespace} only")
        if not await console.access.allowed(who.user, Attributes(verb="list",
                                                                  namespace=namespace)):
            raise HTTPException(403, f'User "{who.user.name}" cannot list syncjobs in '
                                     f'the namespace "{namespace}"')
        return who

    app.include_router(logs_router(console.as_user, reader))

    @contextlib.asynccontextmanager
    async def speaking_for(who: Caller) -> AsyncIterator[KubeClient]:
        """A client with the user's own token; the API server's refusal is the answer."""
        async with console.as_user(who.token) as client:
            try:
                yield client
            except ApiError as err:
                raise HTTPException(err.status, err.message) from err

    def mirror() -> History:
        if console.history is None:
            raise HTTPException(503, "no database: history needs the mirror's PostgreSQL")
        return console.history

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        """Ready once the watch has listed the SyncJobs (every answer comes from it)."""
        if not console.live.ready.is_set():
            raise HTTPException(503, "the SyncJob watch has not listed yet")
        return {"ok": True}

    @app.post("/api/v1/session")
    async def log_in(body: SessionRequest, response: Response) -> WhoAmI:
        user = await console.tokens.review(body.token)
        if user is None:
            raise HTTPException(401, "the API server does not accept this token")
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict",
                            secure=console.settings.cookie_secure, path="/")
        return WhoAmI(user=user.name, groups=list(user.groups))

    @app.post("/api/v1/session/handover-code")
    async def handover_code(who: Annotated[Caller, Depends(caller)]) -> HandoverCode:
        """For `kubectl sync console`: a one-minute code the browser trades for a session."""
        return HandoverCode(code=console.handover.code(who.token),
                            expires_in_seconds=HANDOVER_SECONDS)

    @app.post("/api/v1/session/handover")
    async def take_handover(body: HandoverRequest, response: Response) -> WhoAmI:
        token = console.handover.token(body.code)
        if token is None:
            raise HTTPException(401, "this handover code is expired or not ours: run "
                                     "kubectl sync console again")
        return await log_in(SessionRequest(token=token), response)

    @app.delete("/api/v1/session", status_code=204)
    async def log_out(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    @app.get("/api/v1/whoami")
    async def whoami(who: Annotated[Caller, Depends(caller)]) -> WhoAmI:
        return WhoAmI(user=who.user.name, groups=list(who.user.groups))

    @app.get("/api/v1/namespaces/{namespace}/access")
    async def access(namespace: str, who: Annotated[Caller, Depends(reader)]
                     ) -> dict[str, bool]:
        """Which controls this user may use here (the browser hides the others)."""
        answers = await asyncio.gather(*(
            console.access.allowed(who.user, attrs.model_copy(update={"namespace": namespace}))
            for attrs in CONTROLS.values()))
        return dict(zip(CONTROLS, answers, strict=True))

    @app.get("/api/v1/namespaces/{namespace}/syncjobs")
    async def jobs(namespace: str, who: Annotated[Caller, Depends(reader)]
                   ) -> dict[str, Any]:
        await console.live.ready.wait()
        return {"resourceVersion": str(console.live.version),
                "items": console.live.jobs(namespace)}

    @app.get("/api/v1/namespaces/{namespace}/syncjobs/{name}")
    async def job(namespace: str, name: str, who: Annotated[Caller, Depends(reader)]
                  ) -> dict[str, Any]:
        await console.live.ready.wait()
        found = console.live.job(namespace, name)
        if found is None:
            raise HTTPException(404, f'syncjobs.sync.jobcontrol.io "{name}" not found')
        return found

    @app.get("/api/v1/namespaces/{namespace}/watch/syncjobs")
    async def watch(namespace: str, who: Annotated[Caller, Depends(reader)],
                    last_event_id: Annotated[str | None, Header()] = None
                    ) -> StreamingResponse:
        async def still_allowed() -> bool:
            user = await console.tokens.review(who.token, fresh=True)
            return user is not None and await console.access.allowed(
                user, Attributes(verb="watch", namespace=namespace), fresh=True)

        resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
        settings = console.settings
        return StreamingResponse(stream(
            console.live, namespace, last_event_id=resume, still_allowed=still_allowed,
            batch_seconds=settings.batch_seconds, heartbeat_seconds=settings.heartbeat_seconds,
            recheck_seconds=settings.recheck_seconds), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/v1/namespaces/{namespace}/syncjobs/{name}/{action}")
    async def act(namespace: str, name: str, action: Action,
                  who: Annotated[Caller, Depends(caller)],
                  priority: Annotated[int | None, Query(ge=1, le=10)] = None) -> ItemResult:
        results = await _apply(who, namespace, ActionRequest(
            action=action, names=[name], priority=priority))
        result = results[0]
        if not result.ok:
            raise HTTPException(result.status, result.message)
        return result

    @app.post("/api/v1/namespaces/{namespace}/syncjobs", status_code=201)
    async def create_job(namespace: str, body: NewJob, who: Annotated[Caller, Depends(caller)]
                         ) -> dict[str, Any]:
        """The new-job form: created as the user, judged by the CRD and webhooks."""
        async with speaking_for(who) as client:
            return await create(client, namespace, body)

    @app.post("/api/v1/namespaces/{namespace}/syncschedules/{name}/trigger", status_code=201)
    async def trigger_schedule(namespace: str, name: str,
                               who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        """Run a schedule's template now (kubectl sync trigger), as the user."""
        async with speaking_for(who) as client:
            try:
                return await trigger(client, namespace, name)
            except UnreadableScheduleError as err:
                raise HTTPException(422, str(err)) from None

    @app.post("/api/v1/namespaces/{namespace}/bulk")
    async def bulk(namespace: str, body: ActionRequest,
                   who: Annotated[Caller, Depends(caller)]) -> list[ItemResult]:
        return await _apply(who, namespace, body)

    async def _apply(who: Caller, namespace: str, request: ActionRequest
                     ) -> list[ItemResult]:
        async with console.as_user(who.token) as client:
            return await apply(client, namespace, request)

    @app.get("/api/v1/namespaces/{namespace}/history")
    async def history(namespace: str, who: Annotated[Caller, Depends(reader)],
                      where: Annotated[HistoryFilter, Query()],
                      page: Annotated[Page, Query()]) -> list[HistoryRow]:
        return await mirror().jobs(namespace, where, page)

    @app.get("/api/v1/namespaces/{namespace}/audit")
    async def audit(namespace: str, who: Annotated[Caller, Depends(reader)],
                    where: Annotated[AuditFilter, Query()],
                    page: Annotated[Page, Query()]) -> list[AuditRow]:
        return await mirror().audit(namespace, where, page)

    @app.get("/api/v1/namespaces/{namespace}/analytics")
    async def analytics(namespace: str, who: Annotated[Caller, Depends(reader)],
                        since: datetime | None = None) -> list[TypeStats]:
        return await mirror().stats(namespace, since)

    @app.get("/api/v1/namespaces/{namespace}/analytics/throughput")
    async def throughput(namespace: str, who: Annotated[Caller, Depends(reader)],
                         since: datetime | None = None, bucket: Bucket = "hour"
                         ) -> list[ThroughputPoint]:
        start = since or datetime.now(UTC) - THROUGHPUT_WINDOW[bucket]
        return await mirror().throughput(namespace, start, bucket)

    @app.get("/api/v1/namespaces/{namespace}/analytics/timeline")
    async def timeline(namespace: str, who: Annotated[Caller, Depends(reader)],
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
                       ) -> list[TimelineRun]:
        return await mirror().timeline(namespace, limit)

    @app.get("/api/v1/namespaces/{namespace}/syncjobs/{name}/events")
    async def job_events(namespace: str, name: str, who: Annotated[Caller, Depends(reader)]
                         ) -> list[EventView]:
        """The newest Events about the job and its runner Job, read as the user."""
        await console.live.ready.wait()
        found = console.live.job(namespace, name)
        if found is None:
            raise HTTPException(404, f'syncjobs.sync.jobcontrol.io "{name}" not found')
        async with speaking_for(who) as client:
            uids = [str(found["metadata"]["uid"])]
            runner_name = (found.get("status") or {}).get("jobRef")
            runner = runner_name and await client.get_or_none(JOBS, runner_name, namespace)
            if runner:
                uids.append(str(runner["metadata"]["uid"]))
            return await events_about(client, namespace, uids)

    @app.get("/api/v1/namespaces/{namespace}/syncschedules")
    async def list_schedules(namespace: str, who: Annotated[Caller, Depends(caller)]
                             ) -> list[dict[str, Any]]:
        async with speaking_for(who) as client:
            return await schedules(client, namespace)

    @app.patch("/api/v1/namespaces/{namespace}/syncschedules/{name}")
    async def change_schedule(namespace: str, name: str, body: ScheduleChange,
                              who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        async with speaking_for(who) as client:
            return await change(client, namespace, name, body)

    return app
