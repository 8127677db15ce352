"""The console in a real headless Chromium (Debian's, driven by Selenium through its
chromedriver): alice watches a progress bar move, pauses a job with a click, cancels
three at once; carol, who may only read, sees the jobs and no control at all."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import ConsoleUnderTest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from testkit.browser import click, done, log_in, opened_browsers, phase, row, until
from testkit.syncjobs import syncjob

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
# SYNC_SCREENSHOTS=1 refreshes the README's picture; otherwise it goes to the test's tmp dir.
SCREENSHOT = REPO / "docs" / "console.png"
BULK = ("bulk-1", "bulk-2", "bulk-3")


@pytest.fixture
def browsers() -> Iterator[Callable[[], WebDriver]]:
    with opened_browsers() as open_one:
        yield open_one


def _log_in(driver: WebDriver, console: ConsoleUnderTest, user: str) -> None:
    log_in(driver, console.url, console.namespace, user=user, token=console.tokens[user])


async def test_alice_watches_progress_pauses_with_a_click_and_bulk_cancels(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any,
        database_url: str, browsers: Callable[[], WebDriver], tmp_path: Path) -> None:
    """The browser steps run in a thread: Selenium blocks, and the console being
    browsed answers from this test's event loop."""
    ns = console.namespace
    start_operator(database_url=database_url)
    await kube.create(SYNCJOBS, syncjob("long", "quran", params={
        "task": "demo", "items": 400, "unitSeconds": 0.05}), ns)
    for name in ("bulk-1", "bulk-2", "bulk-3"):
        await kube.create(SYNCJOBS, syncjob(name, "prayer", paused=True, params={
            "task": "demo", "items": 10, "unitSeconds": 0.1}), ns)
    driver = await asyncio.to_thread(browsers)
    await asyncio.to_thread(_log_in, driver, console, "alice")

    def watch_progress_and_pause() -> None:
        first = until(driver, "the progress bar to start",
                      lambda d: done(d, "long") > 0 and done(d, "long"))
        until(driver, "the progress bar to move", lambda d: done(d, "long") > first)
        shot = SCREENSHOT if os.environ.get("SYNC_SCREENSHOTS") == "1" else (
            tmp_path / "console.png")
        assert driver.save_screenshot(str(shot))
        click(driver, "long", 'button[data-action="pause"]')
        until(driver, "long shown Paused", lambda d: phase(d, "long") == "Paused")

    await asyncio.to_thread(watch_progress_and_pause)
    assert (await kube.get(SYNCJOBS, "long", ns))["status"]["phase"] == "Paused"

    def bulk_cancel() -> None:
        for name in BULK:
            click(driver, name, "input[type=checkbox]")
        until(driver, "the bulk bar", lambda d: d.find_element(By.ID, "bulk").is_displayed())
        driver.find_element(By.CSS_SELECTOR, 'button[data-bulk="cancel"]').click()
        driver.switch_to.alert.accept()  # "cancel 3 jobs? This cannot be undone."
        until(driver, "the bulk result",
              lambda d: "cancel: 3 done" in d.find_element(By.ID, "message").text)
        until(driver, "the three shown Cancelled",
              lambda d: all(phase(d, n) == "Cancelled" for n in BULK))

    await asyncio.to_thread(bulk_cancel)
    for name in BULK:
        assert (await kube.get(SYNCJOBS, name, ns))["status"]["phase"] == "Cancelled"


async def test_a_view_only_user_sees_the_jobs_and_no_control(
        console: ConsoleUnderTest, kube: KubeClient,
        browsers: Callable[[], WebDriver]) -> None:
    await kube.create(SYNCJOBS, syncjob("seen", "hadith", paused=True), console.namespace)
    driver = await asyncio.to_thread(browsers)

    def as_carol_then_alice() -> None:
        _log_in(driver, console, "carol")
        listed = until(driver, "the job listed", lambda d: row(d, "seen"))
        assert listed.find_elements(By.CSS_SELECTOR, "button") == []
        assert listed.find_elements(By.CSS_SELECTOR, "select") == []
        assert not driver.find_element(By.ID, "bulk").is_displayed()
        # alice, in the same page after logging in, has the controls carol lacks.
        driver.find_element(By.ID, "logout").click()
        _log_in(driver, console, "alice")
        until(driver, "alice's resume button", lambda d: row(d, "seen") and row(
            d, "seen").find_elements(By.CSS_SELECTOR, 'button[data-action="resume"]'))

    await asyncio.to_thread(as_carol_then_alice)
