"""OIDC behind a trusted proxy, on the real API server.

The proxy (oauth2-proxy `--pass-authorization-header`, or an OIDC-aware ingress) logs
the user in and forwards their ID token as `Authorization: Bearer <id_token>`; the API
server trusts the issuer (`--authentication-config`, testkit.oidc) and maps the token to
`oidc:<email>`. The console does nothing OIDC-specific: TokenReview judges the ID token
like any bearer token, and the console's writes carry it, so RBAC, admission and the
audit stamp name the OIDC user. Headers the proxy (or anyone) adds next to the token
name nobody: only the token does.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from console_helpers import ConsoleUnderTest

from sync_operator.api.common import SYNCJOBS
from sync_operator.audit.actions import STAMP_PREFIX
from sync_operator.console.identity import TOKENREVIEWS
from sync_operator.kube import KubeClient
from testkit.cluster import LocalCluster
from testkit.oidc import new_key
from testkit.rbac import grant, rule, user
from testkit.syncjobs import syncjob
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster
ALICE, MALLORY = "alice@example.com", "mallory@example.com"
DEMO = {"task": "demo", "items": 200, "unitSeconds": 0.2}


async def _as_proxy(console: ConsoleUnderTest, method: str, path: str, id_token: str | None,
                    **extra: str) -> tuple[int, Any]:
    """A request as oauth2-proxy forwards it: the ID token as bearer, plus its
    X-Forwarded-* identity headers (which the console must not trust)."""
    headers = {k.replace("_", "-"): v for k, v in extra.items()}
    if id_token is not None:
        headers["Authorization"] = f"Bearer {id_token}"
    async with aiohttp.ClientSession() as http, http.request(
            method, console.url + path, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _authenticated_by_api_server(kube: KubeClient, token: str) -> str:
    """The API server's own answer (its JWT authenticator discovers the issuer
    asynchronously at start; asked before the console so no refusal gets cached)."""
    async def review() -> str | None:
        answer = await kube.create(TOKENREVIEWS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}})
        status = answer.get("status") or {}
        return str(status["user"]["username"]) if status.get("authenticated") else None

    return await eventually(review, timeout=30, what="the API server accepting ID tokens")


async def _let_edit(kube: KubeClient, namespace: str, who: str) -> None:
    await grant(kube, namespace, "oidc-edit",
                [rule("sync.jobcontrol.io", ["syncjobs"], ["get", "list", "watch", "patch"])],
                [user(who)])


def _stamps(body: Any) -> list[str]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return [v for k, v in sorted(annotations.items()) if k.startswith(STAMP_PREFIX)]


async def test_an_oidc_user_behind_the_proxy_acts_in_their_own_name(
        console: ConsoleUnderTest, kube: KubeClient, cluster: LocalCluster) -> None:
    ns = console.namespace
    id_token = cluster.oidc.mint(ALICE, groups=["sync-team"])
    assert await _authenticated_by_api_server(kube, id_token) == f"oidc:{ALICE}"
    await _let_edit(kube, ns, f"oidc:{ALICE}")
    await kube.create(SYNCJOBS, syncjob("nightly", "quran", params=DEMO, paused=False), ns)

    status, me = await _as_proxy(console, "GET", "/api/v1/whoami", id_token,
                                 X_Forwarded_Email=ALICE, X_Forwarded_User="alice")
    assert status == 200
    assert me["user"] == f"oidc:{ALICE}"
    assert "oidc:sync-team" in me["groups"]

    status, can = await _as_proxy(console, "GET", f"/api/v1/namespaces/{ns}/access", id_token)
    assert status == 200
    assert can["pause"]
    assert not can["delete"]  # her Role has no delete: the console asks the API server
    status, body = await _as_proxy(console, "POST",
                                   f"/api/v1/namespaces/{ns}/syncjobs/nightly/pause", id_token)
    assert (status, body["ok"]) == (200, True)
    stored = await kube.get(SYNCJOBS, "nightly", ns)
    assert stored["spec"]["paused"] is True
    # The stamp policy wrote who did it, from the request's user: the OIDC identity.
    assert f"pause||oidc:{ALICE}" in _stamps(stored), _stamps(stored)


async def test_expired_foreign_and_unprivileged_id_tokens_are_refused(
        console: ConsoleUnderTest, kube: KubeClient, cluster: LocalCluster) -> None:
    ns = console.namespace
    oidc = cluster.oidc
    await _let_edit(kube, ns, f"oidc:{ALICE}")
    await kube.create(SYNCJOBS, syncjob("nightly", "quran", params=DEMO, paused=False), ns)
    assert await _authenticated_by_api_server(kube, oidc.mint(ALICE)) == f"oidc:{ALICE}"
    pause = f"/api/v1/namespaces/{ns}/syncjobs/nightly/pause"

    an_hour_ago = time.time() - 3600
    refused = {
        "expired": oidc.mint(ALICE, issued_at=an_hour_ago, expires_in=1800),
        "signed by another key": oidc.mint(ALICE, key=new_key()),  # same kid, wrong key
        "for another client": oidc.mint(ALICE, audience="some-other-app"),
        "from another issuer": oidc.mint(ALICE, iss="https://accounts.example.com"),
    }
    for why, token in refused.items():
        for method, path in (("GET", "/api/v1/whoami"), ("POST", pause)):
            status, body = await _as_proxy(console, method, path, token)
            assert status == 401, (why, path, body)
    # No token at all: whatever identity headers come along, nobody is logged in.
    status, _ = await _as_proxy(console, "POST", pause, None, X_Forwarded_User=ALICE,
                                X_Forwarded_Email=ALICE, X_Remote_User=f"oidc:{ALICE}")
    assert status == 401

    # mallory logs in fine (her token is genuine) but has no RBAC here: the API server
    # refuses her patch, though headers claim she is alice or ask to impersonate her.
    mallory = oidc.mint(MALLORY)
    status, me = await _as_proxy(console, "GET", "/api/v1/whoami", mallory,
                                 X_Forwarded_User=ALICE, X_Forwarded_Email=ALICE)
    assert (status, me["user"]) == (200, f"oidc:{MALLORY}")
    status, body = await _as_proxy(console, "POST", pause, mallory, X_Forwarded_Email=ALICE,
                                   Impersonate_User=f"oidc:{ALICE}")
    assert status == 403, body
    assert f'User "oidc:{MALLORY}" cannot patch' in body["detail"], body
    stored = await kube.get(SYNCJOBS, "nightly", ns)
    assert stored["spec"]["paused"] is False
    assert not any(MALLORY in s or ALICE in s for s in _stamps(stored)), _stamps(stored)
