"""Async JSON client over aiohttp: CRUD, patches, watches, and typed API errors.

Every request but a watch stream first takes a token from a QPS/burst limiter, as
client-go's does (aiolimiter's leaky bucket: `burst` at once, refilled at `qps`), so
a burst of work queues up in the operator instead of flooding the API server.

Each request carries the bearer token its connection's source gives now (a rotating
file, an exec plugin: kube.credentials); a 401 fetches a fresh one and tries once more.
LISTs are paged (`limit`/`continue`, 500 a page, as client-go's pager), so one LIST
of ten thousand objects is not one response of hundreds of megabytes; `list_kept` also
cuts each page down to what the caller keeps as it arrives. `stream` reads a body as
bytes while it comes (pods/log with follow).
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast

import aiohttp
from aiolimiter import AsyncLimiter

from sync_operator.kube.bodies import ListMeta, ObjectList, RawBody
from sync_operator.kube.config import Connection, load_connection
from sync_operator.kube.credentials import CredentialError
from sync_operator.kube.resources import Resource

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic", "apply"]
_PATCH_CONTENT_TYPES: dict[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
LIST_PAGE_SIZE = 500
T = TypeVar("T")


class ApiError(Exception):
    """A non-2xx answer from the API server, with its Status reason and message."""

    def __init__(self, status: int, reason: str, message: str, body: Obj | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class KubeClient:
    """One aiohttp session against one API server; use as an async context manager."""

    def __init__(self, connection: Connection, *, timeout: float = 30.0,
                 qps: float = 50.0, burst: int = 100) -> None:
        self.connection = connection
        self._limiter = AsyncLimiter(burst, burst / qps)
        self.requests = 0
        self._tokens = connection.token_source()
        self._session = aiohttp.ClientSession(
            base_url=connection.server,
            headers=[("Accept", "application/json"), *connection.impersonation_headers()],
            connector=aiohttp.TCPConnector(ssl=connection.ssl_context(), limit=50),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout),
        )
        self._timeout = timeout

    @classmethod
    def from_kubeconfig(cls, path: str | None = None) -> KubeClient:
        return cls(load_connection(path))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def _auth(self) -> dict[str, str]:
        try:
            token = await self._tokens.token()
        except CredentialError as err:
            raise ApiError(401, "Unauthorized", f"no credential: {err}") from None
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Mapping[str, str] | None = None,
                      content_type: str = "application/json") -> Obj:
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            await self._limiter.acquire()
            self.requests += 1
            headers = {"Content-Type": content_type, **await self._auth()}
            async with self._session.request(
                method, path, data=data, params=params, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as resp:
                if resp.status == 401 and attempt == 1 and "Authorization" in headers:
                    self._tokens.invalidate()  # rotated or expired: fetch a fresh one
                    continue
                return await _payload(resp)
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def get(self, res: Resource, name: str, namespace: str | None = None,
                  subresource: str | None = None) -> RawBody:
        return _body(await self.request("GET", res.path(namespace, name, subresource)))

    async def get_or_none(self, res: Resource, name: str,
                          namespace: str | None = None) -> RawBody | None:
        try:
            return await self.get(res, name, namespace)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None,
                   page_size: int = LIST_PAGE_SIZE) -> ObjectList:
        """Every matching object, page by page; the list's resourceVersion is the first
        page's (the pages are one consistent snapshot, as the server serves them)."""
        head, items = await self._list(res, namespace, _body, label_selector=label_selector,
                                       field_selector=field_selector, page_size=page_size)
        return ObjectList(apiVersion=str(head.get("apiVersion", "")),
                          kind=str(head.get("kind", "")),
                          metadata=cast(ListMeta, head.get("metadata") or {}), items=items)

    async def list_kept(self, res: Resource, namespace: str | None, keep: Callable[[RawBody], T],
                        *, label_selector: str | None = None,
                        field_selector: str | None = None,
                        page_size: int = LIST_PAGE_SIZE) -> tuple[builtins.list[T], str | None]:
        """Every matching object as `keep` makes it, and the list's resourceVersion.
        `keep` takes each page's objects as the page arrives, so only one page is ever
        held as parsed JSON (a listed Succeeded SyncJob is 20 KB of dicts, its Job 41 KB:
        5,000 of each held at once were 245 MB)."""
        head, items = await self._list(res, namespace, keep, label_selector=label_selector,
                                       field_selector=field_selector, page_size=page_size)
        version = (head.get("metadata") or {}).get("resourceVersion")
        return items, None if version is None else str(version)

    async def _list(self, res: Resource, namespace: str | None, keep: Callable[[RawBody], T],
                    *, label_selector: str | None, field_selector: str | None,
                    page_size: int) -> tuple[Obj, builtins.list[T]]:
        params = {"limit": str(page_size)} if page_size > 0 else {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        head = await self.request("GET", res.path(namespace), params=params)
        metadata = dict(head.get("metadata") or {})
        items = [keep(_body(item)) for item in head.pop("items", None) or []]
        while metadata.get("continue"):
            try:
                page = await self.request("GET", res.path(namespace),
                                          params={**params, "continue": metadata["continue"]})
            except ApiError as err:
                if err.status != 410:
                    raise
                # The snapshot expired mid-list (compaction): start again, unpaged, as
                # client-go's pager falls back to a full list.
                return await self._list(res, namespace, keep, label_selector=label_selector,
                                        field_selector=field_selector, page_size=0)
            items += [keep(_body(item)) for item in page.get("items") or []]
            metadata["continue"] = (page.get("metadata") or {}).get("continue")
            del page
        metadata.pop("continue", None)
        metadata.pop("remainingItemCount", None)
        head["metadata"] = metadata
        return head, items

    async def create(self, res: Resource, obj: Mapping[str, Any],
                     namespace: str | None = None, subresource: str | None = None,
                     name: str | None = None, *, dry_run: bool = False) -> RawBody:
        """POST `obj`; with dry_run, through every admission stage but never stored."""
        params = {"dryRun": "All"} if dry_run else None
        return _body(await self.request("POST", res.path(namespace, name, subresource),
                                        body=obj, params=params))

    async def replace(self, res: Resource, name: str, obj: Mapping[str, Any],
                      namespace: str | None = None, subresource: str | None = None) -> RawBody:
        return _body(await self.request("PUT", res.path(namespace, name, subresource),
                                        body=obj))

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, subresource: str | None = None, patch_type: PatchType = "merge",
                    field_manager: str | None = None, force: bool = False) -> RawBody:
        params = {}
        if field_manager:
            params["fieldManager"] = field_manager
        if force:
            params["force"] = "true"
        return _body(await self.request(
            "PATCH", res.path(namespace, name, subresource), body=patch, params=params,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
        ))

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     propagation: str | None = None,
                     preconditions: Obj | None = None,
                     missing_ok: bool = True) -> Obj | None:
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if propagation:
            body["propagationPolicy"] = propagation
        if preconditions:
            body["preconditions"] = preconditions
        try:
            return await self.request("DELETE", res.path(namespace, name), body=body)
        except ApiError as err:
            if missing_ok and err.not_found:
                return None
            raise

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None,
                    label_selector: str | None = None,
                    field_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[tuple[str, RawBody]]:
        """Yield (event type, object) until the server closes the stream."""
        params = {"watch": "true", "timeoutSeconds": str(timeout_seconds),
                  "allowWatchBookmarks": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        async with self._session.get(
            res.path(namespace), params=params, headers=await self._auth(),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds + 30, sock_read=None),
        ) as resp:
            if resp.status == 401:
                self._tokens.invalidate()  # the caller's next watch gets a fresh token
            if resp.status >= 400:
                text = await resp.text()
                raise ApiError(resp.status, resp.reason or "", text)
            # Lines are split here, not by aiohttp's readline: that refuses a line over
            # 512 KiB, and one event of an object near etcd's size limit is longer
            # (fuzzed: a SyncJob with large params, through its Job's environment).
            buffered = b""
            async for chunk in resp.content.iter_any():
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    yield str(event["type"]), _body(event["object"])


    @contextlib.asynccontextmanager
    async def stream(self, path: str, params: Mapping[str, str] | None = None
                     ) -> AsyncIterator[AsyncIterator[bytes]]:
        """GET `path` and yield its body's chunks as they arrive, with no time limit on
        reading (a followed log lasts as long as its container). A refusal is raised as
        ApiError on entering, before anything is read."""
        for attempt in (1, 2):
            await self._limiter.acquire()
            self.requests += 1
            headers = {"Accept": "application/json, */*", **await self._auth()}
            resp = await self._session.get(path, params=params, headers=headers,
                                           timeout=aiohttp.ClientTimeout(
                                               total=None, sock_connect=self._timeout))
            if resp.status == 401 and attempt == 1 and "Authorization" in headers:
                resp.release()
                self._tokens.invalidate()
                continue
            break
        try:
            if resp.status >= 400:
                await _payload(resp)
            yield resp.content.iter_any()
        finally:
            resp.close()  # a stream left mid-way is not a connection to reuse


async def _payload(resp: aiohttp.ClientResponse) -> Obj:
    """The JSON answer, or the ApiError it stands for."""
    text = await resp.text()
    try:
        payload: Obj = json.loads(text) if text else {}
    except json.JSONDecodeError:
        if resp.status < 400:
            raise
        payload = {}  # a proxy's or a crashed server's plain-text error page
    if resp.status >= 400:
        raise ApiError(resp.status, str(payload.get("reason", resp.reason)),
                       str(payload.get("message", text)), payload)
    return payload


def _body(payload: Mapping[str, Any]) -> RawBody:
    """The JSON object the server sent, as the typed shape (the keys are the server's)."""
    return cast(RawBody, payload)
