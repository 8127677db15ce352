"""A demo task: N timed units with progress, checkpoints and safe points.

It is the fallback for job types that have no real task yet, and the test bed for
the runner's pause, cancel, resume, retry and forced-stop paths.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_runner.sdk import FatalTaskError, TaskContext
from sync_runner.tasks import register


class DemoParams(BaseModel):
    """spec.params of a demo job; unknown keys are ignored (real tasks' params)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    items: int = Field(default=20, ge=0)
    unit_seconds: float = Field(default=0.2, ge=0, alias="unitSeconds")
    # Fail (retryably) once when reaching this unit; the retry gets past it.
    fail_at: int | None = Field(default=None, ge=0, alias="failAt")
    fatal: bool = False
    # Ignore pause/cancel flags and SIGTERM: a task that will not stop, to be forced.
    ignore_stop: bool = Field(default=False, alias="ignoreStop")


class DemoUnitError(RuntimeError):
    """The failure `failAt` asks for: retryable."""


@register("demo", fallback=True)
class DemoTask:
    job_type: str = "demo"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        try:
            params = DemoParams.model_validate(dict(ctx.job.params))
        except ValidationError as exc:
            raise FatalTaskError("InvalidParams", str(exc)) from exc
        if params.fatal:
            raise FatalTaskError("FatalRequested", "params.fatal is set")
        saved = ctx.checkpoint or {}
        start = int(saved.get("next", 0))
        # The checkpoint records that failAt already failed once (or is behind us).
        failed_before = params.fail_at is not None and saved.get("failedAt") == params.fail_at
        if start:
            ctx.log("demo.resuming", next=start)
        await ctx.progress(start, params.items, "items", f"starting at unit {start}")
        for unit in range(start, params.items):
            if not params.ignore_stop:
                await ctx.safe_point()
            marker = {"failedAt": params.fail_at} if failed_before else {}
            if unit == params.fail_at and not failed_before:
                await ctx.save_checkpoint({"next": unit, "failedAt": unit})
                raise DemoUnitError(f"unit {unit} failed as params.failAt asks")
            await asyncio.sleep(params.unit_seconds)
            done = unit + 1
            await ctx.progress(done, params.items, "items", f"unit {done} of {params.items}")
            await ctx.save_checkpoint({"next": done, **marker})
        return {"items": params.items, "resumedFrom": start,
                "processed": params.items - start}
