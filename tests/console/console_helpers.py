"""Shared by the console tests: the console under test and how to call it as a user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from sync_operator.kube import KubeClient
from testkit.rbac import grant, rule, user


@dataclass
class ConsoleUnderTest:
    url: str
    namespace: str
    other: str  # a second namespace: alice may edit there, bob may not
    tokens: dict[str, str]

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def call(self, method: str, path: str, user: str | None, *,
                   json: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {} if user is None and token is None else {
            "Authorization": f"Bearer {token or self.tokens[str(user)]}"}
        async with aiohttp.ClientSession() as http, http.request(
                method, self.url + path, json=json, headers=headers) as resp:
            body = await resp.json(content_type=None)
            return resp.status, body


async def let_read_events(kube: KubeClient, namespace: str, who: str) -> None:
    """What the built-in `edit` role gives a user in a real cluster and the console
    tests' roles leave out: Events and the runner Jobs they are about."""
    await grant(kube, namespace, f"{who}-events",
                [rule("", ["events"], ["list"]), rule("batch", ["jobs"], ["get"])], [user(who)])
