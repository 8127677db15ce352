"""The old dashboard's buttons, one at a time or in bulk, sent as the user.

Each action is a merge patch of the SyncJob's spec (or its deletion), sent with the
user's own token: the API server authorizes it, the admission policy stamps it with
that user's name, and the operator acts on it. A bulk action runs on the server, not
in a browser loop, and answers one result per item; one refusal does not stop the
rest.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import ApiError, KubeClient

CONCURRENCY = 8  # bulk writes in flight at once, per request


class Action(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    PRIORITY = "priority"
    DELETE = "delete"


class ActionRequest(BaseModel):
    """One action on one or more SyncJobs: by name, or by label selector."""

    action: Action
    names: list[str] = Field(default_factory=list, max_length=10_000)
    selector: str | None = Field(default=None, description="a label selector")
    priority: int | None = Field(default=None, ge=1, le=10)

    @model_validator(mode="after")
    def _complete(self) -> ActionRequest:
        if self.action == Action.PRIORITY and self.priority is None:
            raise ValueError("priority: required for the priority action (1..10)")
        if self.action != Action.PRIORITY and self.priority is not None:
            raise ValueError(f"priority: not used by the {self.action} action")
        if bool(self.names) == bool(self.selector):
            raise ValueError("names or selector: give exactly one")
        return self


class ItemResult(BaseModel):
    name: str
    ok: bool
    status: int = 200
    message: str = ""


def spec_patch(request: ActionRequest) -> dict[str, Any] | None:
    """The merge patch an action is (None: a deletion)."""
    match request.action:
        case Action.PAUSE:
            return {"spec": {"paused": True}}
        case Action.RESUME:
            return {"spec": {"paused": False}}
        case Action.CANCEL:
            return {"spec": {"cancel": True}}
        case Action.PRIORITY:
            return {"spec": {"priority": request.priority}}
        case Action.DELETE:
            return None


async def apply(client: KubeClient, namespace: str, request: ActionRequest
                ) -> list[ItemResult]:
    """Run the action as the user `client` speaks for; one result per SyncJob."""
    names = request.names
    if request.selector:
        try:
            listed = await client.list(SYNCJOBS, namespace, label_selector=request.selector)
        except ApiError as err:
            return [ItemResult(name="", ok=False, status=err.status, message=err.message)]
        names = sorted(item["metadata"]["name"] for item in listed["items"])
    patch = spec_patch(request)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(name: str) -> ItemResult:
        async with gate:
            try:
                if patch is None:
                    await client.delete(SYNCJOBS, name, namespace)
                else:
                    await client.patch(SYNCJOBS, name, patch, namespace)
            except ApiError as err:
                return ItemResult(name=name, ok=False, status=err.status, message=err.message)
            return ItemResult(name=name, ok=True)

    return list(await asyncio.gather(*(one(name) for name in names)))
