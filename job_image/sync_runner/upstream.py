"""The upstream content source: paginated JSON over HTTP, fetched page by page.

The contract (what testkit.source_server serves, and what a real source must offer):

    GET {sourceUrl}/{dataset}?page=N&pageSize=M      (N from 1)
    200 {"items": [...], "page": N, "pageSize": M, "total": T, "totalPages": P}

Items are returned raw: the task validates each one, so one bad record costs that
record, not its page. A page is retried (bounded, with backoff and jitter) on errors
that may pass: 5xx, 408, 429, timeouts, dropped connections and bodies that are not a
page; any other 4xx is the request's fault and is not retried.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_runner.logs import get_logger, log_event
from sync_runner.retry import RetriesExhaustedError, RetryPolicy, retry_async

ENV_SOURCE_URL = "SYNC_SOURCE_URL"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
log = get_logger("upstream")


class Page(BaseModel):
    """One page of a dataset; `items` stay unvalidated here."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    items: list[Any]
    page: int = Field(ge=1)
    page_size: int = Field(alias="pageSize", ge=1)
    total: int = Field(ge=0)
    total_pages: int = Field(alias="totalPages", ge=0)


class UpstreamError(Exception):
    """A request failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class PageFetchError(Exception):
    """A page could not be had, after the retries its error allowed."""

    def __init__(self, dataset: str, page: int, cause: BaseException, attempts: int) -> None:
        super().__init__(f"{dataset} page {page}: {cause} ({attempts} attempt(s))")
        self.page = page
        self.cause = cause
        self.attempts = attempts


@dataclass(frozen=True)
class UpstreamSettings:
    base_url: str
    timeout_seconds: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class UpstreamClient:
    """Fetches pages of datasets from one source; use as an async context manager."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def __aenter__(self) -> UpstreamClient:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        self._session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, dataset: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/{dataset.lstrip('/')}"

    async def _get_once(self, dataset: str, page: int, page_size: int) -> Page:
        assert self._session is not None, "use UpstreamClient as an async context manager"
        self.requests += 1
        try:
            async with self._session.get(self.url(dataset),
                                         params={"page": page, "pageSize": page_size}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise UpstreamError(f"HTTP {resp.status}",
                                        retryable=resp.status in RETRYABLE_STATUS,
                                        status=resp.status)
        except TimeoutError as exc:
            raise UpstreamError(f"no answer within {self.settings.timeout_seconds:g}s",
                                retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        try:
            return Page.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:
            raise UpstreamError(f"not a page: {str(exc)[:200]}", retryable=True) from exc

    async def fetch_page(self, dataset: str, page: int, page_size: int) -> Page:
        """The page, retried per the policy; PageFetchError when it cannot be had."""

        def note(attempt: int, exc: BaseException, wait: float) -> None:
            log_event(log, "upstream.retry", level=logging.WARNING, dataset=dataset, page=page,
                      attempt=attempt, error=str(exc), wait_seconds=round(wait, 3))

        try:
            return await retry_async(
                lambda: self._get_once(dataset, page, page_size), self.settings.retry,
                retryable=lambda exc: isinstance(exc, UpstreamError) and exc.retryable,
                on_retry=note)
        except RetriesExhaustedError as exc:
            raise PageFetchError(dataset, page, exc.last, exc.attempts) from exc
        except UpstreamError as exc:
            raise PageFetchError(dataset, page, exc, 1) from exc
