"""The paged pull shared by the quran, hadith, audio and finance tasks.

For each page: fetch it (retried, see upstream.py), validate each item, upsert the
valid rows under the lease's fence, report progress, save a checkpoint. A page that
cannot be had after its retries and an invalid item are warnings, counted as
skipped, and the run goes on; the failure threshold (tally.py) then decides how the
run ends. The checkpoint holds the next page, the pages that failed and the counts,
so a resumed or retried pod continues where the last one stopped and fetches the
failed pages again, and a page written twice is written idempotently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from sync_runner.content.models import ContentTable
from sync_runner.content.params import SourceParams, parse_params
from sync_runner.content.session import PrerequisitesMissing, SyncSession, sync_session
from sync_runner.content.tally import Counts, enforce_threshold
from sync_runner.sdk import TaskContext
from sync_runner.services import Services
from sync_runner.upstream import (
    ENV_SOURCE_URL,
    Page,
    PageFetchError,
    UpstreamClient,
    UpstreamSettings,
)


class UpstreamUnavailableError(RuntimeError):
    """The first page (which says how many there are) cannot be had: retryable."""


@dataclass(frozen=True)
class Dataset:
    """One upstream dataset and the table it fills."""

    job_type: str
    resource: str  # the lock's resource name: sync:lock:<job type>:<resource>
    path: str  # under the source URL, e.g. "quran/chapters"
    unit: str  # progress unit, e.g. "chapters"
    record: type[BaseModel]
    table: type[ContentTable]
    to_row: Callable[[Any], dict[str, Any]]


@dataclass
class _Progress:
    """The run's position, as saved in (and restored from) the checkpoint."""

    plan: str
    next_page: int = 1
    total: int | None = None
    total_pages: int | None = None
    page_size: int = 100
    failed_pages: set[int] = field(default_factory=set)
    counts: Counts = field(default_factory=Counts)
    resumed_from: int = 1

    def to_checkpoint(self) -> dict[str, Any]:
        return {"plan": self.plan, "nextPage": self.next_page, "total": self.total,
                "totalPages": self.total_pages, "failedPages": sorted(self.failed_pages),
                "counts": self.counts.to_checkpoint()}

    @classmethod
    def restore(cls, saved: dict[str, Any] | None, plan: str, page_size: int) -> _Progress:
        if not saved or saved.get("plan") != plan:
            return cls(plan, page_size=page_size)
        next_page = int(saved.get("nextPage", 1))
        return cls(plan, next_page, saved.get("total"), saved.get("totalPages"), page_size,
                   {int(p) for p in saved.get("failedPages", [])},
                   Counts.from_checkpoint(saved.get("counts")), next_page)

    def expected_in(self, page: int) -> int:
        """How many items page `page` should hold (its share of the total)."""
        total = self.total or 0
        return max(0, min(self.page_size, total - (page - 1) * self.page_size))

    @property
    def skipped(self) -> int:
        return self.counts.invalid + sum(self.expected_in(p) for p in self.failed_pages)

    @property
    def done(self) -> int:
        return self.counts.fetched + sum(self.expected_in(p) for p in self.failed_pages)


def _plan(dataset: Dataset, source_url: str, page_size: int) -> str:
    """A fingerprint of what is being pulled: a checkpoint of another plan is not reused."""
    raw = json.dumps([dataset.path, source_url, page_size])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


class SourceSyncTask:
    """A task that mirrors one upstream dataset into its table; subclasses set DATASET."""

    DATASET: ClassVar[Dataset]
    job_type: str

    def __init__(self, services: Services | None = None) -> None:
        self.services = services if services is not None else Services.from_environ()

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        dataset = self.DATASET
        params = parse_params(SourceParams, ctx)
        source_url = params.source_url or self.services.source_url
        if not source_url:
            raise PrerequisitesMissing(
                f"no upstream source for {dataset.path}: set params.sourceUrl or "
                f"{ENV_SOURCE_URL}")
        plan = _plan(dataset, source_url, params.page_size)
        if ctx.checkpoint and ctx.checkpoint.get("plan") != plan:
            ctx.log("sync.checkpoint_ignored", reason="source or pageSize changed")
        state = _Progress.restore(ctx.checkpoint, plan, params.page_size)
        async with sync_session(ctx, self.services, resource=dataset.resource,
                                tables=[dataset.table.__tablename__], params=params) as session:
            settings = UpstreamSettings(source_url, params.request_timeout_seconds,
                                        params.retry_policy())
            async with UpstreamClient(settings) as client:
                await self._pull(ctx, session, client, dataset, state)
            warnings, _ = ctx.warnings
            ratio = enforce_threshold(
                what=dataset.unit, skipped=state.skipped, expected=state.total or 0,
                unreachable=len(state.failed_pages), max_ratio=params.max_failure_ratio)
            return {
                "dataset": dataset.path, "source": source_url, "lock": session.fence.resource,
                "fence": session.fence.token, "total": state.total,
                "pages": state.total_pages, "failedPages": sorted(state.failed_pages),
                "resumedFromPage": state.resumed_from, "failureRatio": round(ratio, 4),
                "counts": state.counts.summary(skipped=state.skipped, warnings=warnings),
            }

    async def _pull(self, ctx: TaskContext, session: SyncSession, client: UpstreamClient,
                    dataset: Dataset, state: _Progress) -> None:
        if state.total_pages is None:
            try:
                first = await client.fetch_page(dataset.path, 1, state.page_size)
            except PageFetchError as exc:
                raise UpstreamUnavailableError(
                    f"{client.url(dataset.path)} unavailable: {exc}") from exc
            state.total, state.total_pages = first.total, first.total_pages
            await self._store_page(ctx, session, dataset, state, first)
            state.next_page = 2
            await self._checkpoint(ctx, dataset, state, page=1)
        retry_first = sorted(state.failed_pages)
        pages = [*retry_first, *range(state.next_page, (state.total_pages or 0) + 1)]
        for page_number in pages:
            await ctx.safe_point()
            session.check()
            try:
                page = await client.fetch_page(dataset.path, page_number, state.page_size)
            except PageFetchError as exc:
                ctx.warn(f"{dataset.path} page {page_number} skipped: {exc}")
                state.failed_pages.add(page_number)
            else:
                state.failed_pages.discard(page_number)
                await self._store_page(ctx, session, dataset, state, page)
            if page_number >= state.next_page:
                state.next_page = page_number + 1
            await self._checkpoint(ctx, dataset, state, page=page_number)

    @staticmethod
    async def _store_page(ctx: TaskContext, session: SyncSession, dataset: Dataset,
                          state: _Progress, page: Page) -> None:
        rows: list[dict[str, Any]] = []
        invalid = 0
        for index, item in enumerate(page.items):
            try:
                record = dataset.record.model_validate(item)
            except ValidationError as exc:
                invalid += 1
                ctx.warn(f"{dataset.path} page {page.page} item {index}: invalid record "
                         f"skipped ({_first_error(exc)})")
                continue
            rows.append(dataset.to_row(record))
        result = await session.store.upsert(dataset.table, rows, session.fence)
        state.counts = state.counts.with_upsert(len(page.items), invalid, result)

    @staticmethod
    async def _checkpoint(ctx: TaskContext, dataset: Dataset, state: _Progress, *,
                          page: int) -> None:
        total = state.total or 0
        await ctx.progress(min(state.done, total), total, dataset.unit,
                           f"page {page} of {state.total_pages}")
        await ctx.save_checkpoint(state.to_checkpoint())
