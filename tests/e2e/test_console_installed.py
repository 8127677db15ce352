"""The console the chart runs, in a real headless Chromium: `helm install --wait` (the
console enabled, as by default), the console reached as a user reaches it (its
Service's endpoints: the pod's IP and port), `kubectl sync console` handing alice's
session to the browser; alice (bound to `edit`) watches a job's progress bar move,
pauses it with a click and resumes it; carol (bound to `view`) logs in with her token
and sees the jobs and no control, and the pod refuses her a pause; the audit rows the
console's API serves (from the PostgreSQL the chart's values name) say alice paused and
resumed.

Needs the suite's own cluster: alice and carol are its static users (tokens), and the
pods are local processes whose IPs this machine reaches.

Prints the install time and the time from install to the console answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from e2e_target import Target, prepare_release
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from sync_operator.kube.resources import Resource
from testkit.browser import (
    click,
    done,
    log_in,
    opened_browsers,
    phase,
    row,
    until,
)
from testkit.cluster import LocalCluster
from testkit.kubectl_sync import ok
from testkit.release import helm, install, pods_report
from testkit.syncjobs import syncjob, wait_phase
from testkit.waiting import eventually

pytestmark = pytest.mark.cluster

ENDPOINTS = Resource("", "v1", "endpoints")
SERVICES = Resource("", "v1", "services")
WEBHOOK_CONFIGS = [Resource("admissionregistration.k8s.io", "v1", plural, namespaced=False)
                   for plural in ("validatingwebhookconfigurations",
                                  "mutatingwebhookconfigurations")]
# ~15 s of work: long enough to be seen moving, paused and resumed before it finishes.
LONG = {"task": "demo", "items": 300, "unitSeconds": 0.05}


async def _console_url(kube: KubeClient, namespace: str, service: str) -> str:
    """http://IP:port of the Service's ready endpoint, the port its targetPort names."""
    target_port = (await kube.get(SERVICES, service, namespace))["spec"]["ports"][0][
        "targetPort"]

    async def address() -> str | None:
        body = await kube.get_or_none(ENDPOINTS, service, namespace)
        for subset in (body or {}).get("subsets") or []:
            ports = [p["port"] for p in subset.get("ports") or []
                     if p.get("name") == "http" or p["port"] == target_port]
            for addr in subset.get("addresses") or []:
                if ports:
                    return f"http://{addr['ip']}:{ports[0]}"
        return None

    return await eventually(address, timeout=60, what=f"a ready endpoint of {service}")


def _logged_in(driver: WebDriver, user: str) -> None:
    """Wait for the page to show `user` logged in, or say why it shows the login form."""
    def settled(d: WebDriver) -> bool:
        return bool(d.find_element(By.ID, "who").text or d.find_element(
            By.ID, "login-error").text)

    with contextlib.suppress(TimeoutException):
        until(driver, f"{user} logged in", settled)
    who = driver.find_element(By.ID, "who").text
    if who != user:
        whoami = driver.execute_async_script(
            "const done = arguments[0]; fetch('/api/v1/whoami').then("
            "r => r.text().then(t => done(r.status + ' ' + t)));")
        raise AssertionError(
            f"not logged in as {user} (shown: {who!r}); login error: "
            f"{driver.find_element(By.ID, 'login-error').text!r}; whoami: {whoami}; "
            f"browser log: {driver.get_log('browser')}")


async def _call(method: str, url: str, token: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(
            method, url, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.timeout(480)  # an install, one ~15 s job paused and resumed, an uninstall
async def test_the_charts_console_pod_in_chromium_alice_steers_carol_only_reads(
        target: Target, e2e_cluster: Target | None, e2e_kube: KubeClient,
        e2e_namespace: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if e2e_cluster is not None or not target.process_pods:
        pytest.skip("the console's browser test needs the suite's own cluster (its static "
                    "users' tokens, pod IPs this machine reaches)")
    cluster: LocalCluster = request.getfixturevalue("cluster")
    kubectl_env: dict[str, str] = request.getfixturevalue("kubectl_env")
    kube, namespace, config = e2e_kube, e2e_namespace, target.kubeconfig
    release = f"c-{namespace}"
    fullname = f"{release}-sync-operator"
    webhook_name = f"sync.jobcontrol.io-{namespace}"
    tokens = cluster.tokens
    # Plain HTTP to the pod's IP (not localhost, not HTTPS): a browser drops a Secure
    # cookie there, so the session cookie is sent without it, as values.yaml says.
    values = await prepare_release(kube, target, namespace, webhook_name, **{
        "console.enabled": "true", "console.cookieSecure": "false"})
    try:
        installed = await install(config, release, namespace, values)
    except AssertionError as err:
        raise AssertionError(f"{err}\n{await pods_report(kube, namespace, target.log_dir)}"
                             ) from None
    try:
        started = time.monotonic()
        url = await _console_url(kube, namespace, f"{fullname}-console")
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
            assert resp.status == 200, await resp.text()
        answering = time.monotonic() - started
        api = f"{url}/api/v1/namespaces/{namespace}"

        await kube.create(SYNCJOBS, syncjob("long", "quran", params=LONG), namespace)
        await kube.create(SYNCJOBS, syncjob("held", "prayer", paused=True, params={
            "task": "demo", "items": 5, "unitSeconds": 0.05}), namespace)
        # `kubectl sync console`, run with alice's own kubeconfig against the pod: a
        # handover code in the URL, never her token.
        alice_env = {**kubectl_env,
                     "KUBECONFIG": str(cluster.user_kubeconfig("alice", namespace))}
        handover = (await ok(alice_env, "console", "--console", url, "--no-browser")
                    ).strip()
        assert handover.startswith(f"{url}/?"), handover
        assert tokens["alice"] not in handover
        assert parse_qs(urlsplit(handover).query)["namespace"] == [namespace]

        with opened_browsers() as browsers:
            driver: WebDriver = await asyncio.to_thread(browsers)

            def alice_pauses_and_resumes() -> None:
                driver.get(handover)
                _logged_in(driver, "alice")
                first = until(driver, "the progress bar to start",
                              lambda d: done(d, "long") > 0 and done(d, "long"))
                until(driver, "the progress bar to move", lambda d: done(d, "long") > first)
                assert driver.save_screenshot(str(tmp_path / "console-pod.png"))
                click(driver, "long", 'button[data-action="pause"]')
                until(driver, "long shown Paused", lambda d: phase(d, "long") == "Paused")
                click(driver, "long", 'button[data-action="resume"]')
                until(driver, "long running again", lambda d: phase(d, "long") in (
                    "Pending", "Queued", "Running", "Succeeded"))

            await asyncio.to_thread(alice_pauses_and_resumes)

            def carol_only_reads() -> None:
                driver.find_element(By.ID, "logout").click()
                log_in(driver, url, namespace, user="carol", token=tokens["carol"])
                for name in ("long", "held"):
                    listed = until(driver, f"{name} listed", lambda d, n=name: row(d, n))
                    assert listed.find_elements(By.CSS_SELECTOR, "button") == [], name
                    assert listed.find_elements(By.CSS_SELECTOR, "select") == [], name
                assert not driver.find_element(By.ID, "bulk").is_displayed()

            await asyncio.to_thread(carol_only_reads)

        status, body = await _call("POST", f"{api}/syncjobs/held/resume", tokens["carol"])
        assert status == 403, body
        status, body = await _call("POST", f"{api}/syncjobs/long/pause", tokens["carol"])
        assert status == 403, body
        # alice's resume held: the job finishes, every item done.
        finished = await wait_phase(kube, namespace, "long", "Succeeded", timeout=120)
        assert finished["status"]["progress"]["done"] == LONG["items"]

        # The audit, as alice reads it through the pod (its database from the chart's
        # values): she paused and resumed; carol's refused pause left no row.
        async def audited() -> dict[str, list[str]] | None:
            status, rows = await _call("GET", f"{api}/audit?search=long", tokens["alice"])
            assert status == 200, rows
            by_action: dict[str, list[str]] = {}
            for r in rows:
                if r["name"] == "long":
                    by_action.setdefault(r["action"], []).append(r["user"])
            return by_action if {"pause", "resume"} <= by_action.keys() else None

        by_action = await eventually(audited, timeout=60, what="long's pause and resume")
        assert by_action["pause"] == ["alice"], by_action
        assert by_action["resume"] == ["alice"], by_action
        print(f"\nhelm install --wait (console enabled): {installed:.1f} s; install to the "
              f"console pod answering /healthz: {answering:.1f} s")
    except BaseException:
        print(await pods_report(kube, namespace, target.log_dir))
        raise
    finally:
        await helm(config, "uninstall", release, "--namespace", namespace, "--wait",
                   "--timeout", "120s")
        for res in WEBHOOK_CONFIGS:  # never leave a stale Fail webhook to other tests
            if await kube.get_or_none(res, webhook_name) is not None:
                await kube.delete(res, webhook_name)


