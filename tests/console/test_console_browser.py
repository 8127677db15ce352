"""The console in a real headless Chromium (Debian's, driven by Selenium through its
chromedriver): alice watches a progress bar move, pauses a job with a click, cancels
three at once; carol, who may only read, sees the jobs and no control at all."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import ConsoleUnderTest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from sync_operator.api.common import SYNCJOBS
from sync_operator.kube import KubeClient
from testkit.syncjobs import syncjob

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
# SYNC_SCREENSHOTS=1 refreshes the README's picture; otherwise it goes to the test's tmp dir.
SCREENSHOT = REPO / "docs" / "console.png"
WAIT = 60
BULK = ("bulk-1", "bulk-2", "bulk-3")


def _chromium() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,900", "--disable-gpu"):
        options.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture
def browsers() -> Iterator[Callable[[], WebDriver]]:
    opened: list[WebDriver] = []

    def open_one() -> WebDriver:
        driver = _chromium()
        opened.append(driver)
        return driver

    yield open_one
    for driver in opened:
        driver.quit()


def _until(driver: WebDriver, what: str, check: Callable[[WebDriver], Any]) -> Any:
    """Wait for `check`; a row replaced by a live update meanwhile is looked up again."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        check, message=what)


def _click(driver: WebDriver, name: str, selector: str) -> None:
    """Click an element of a job's row, finding it afresh if a live update replaced it."""
    def clicked(d: WebDriver) -> bool:
        row = _row(d, name)
        if row is None:
            return False
        row.find_element(By.CSS_SELECTOR, selector).click()
        return True

    _until(driver, f"{selector} of {name} clicked", clicked)


def _log_in(driver: WebDriver, console: ConsoleUnderTest, user: str) -> None:
    driver.get(f"{console.url}/?namespace={console.namespace}")
    token = _until(driver, "the login form", lambda d: d.find_element(By.ID, "token"))
    token.send_keys(console.tokens[user])
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    _until(driver, f"logged in as {user}",
           lambda d: d.find_element(By.ID, "who").text == user)


def _row(driver: WebDriver, name: str) -> Any:
    rows = driver.find_elements(By.CSS_SELECTOR, f'#jobs tr[data-name="{name}"]')
    return rows[0] if rows else None


def _phase(driver: WebDriver, name: str) -> str | None:
    row = _row(driver, name)
    return None if row is None else str(row.find_element(By.CSS_SELECTOR, "td.phase").text)


def _done(driver: WebDriver, name: str) -> int:
    row = _row(driver, name)
    if row is None:
        return -1
    value = row.find_element(By.CSS_SELECTOR, "td.progress").get_attribute("data-done")
    return int(value) if value else -1


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
        first = _until(driver, "the progress bar to start",
                       lambda d: _done(d, "long") > 0 and _done(d, "long"))
        _until(driver, "the progress bar to move", lambda d: _done(d, "long") > first)
        shot = SCREENSHOT if os.environ.get("SYNC_SCREENSHOTS") == "1" else (
            tmp_path / "console.png")
        assert driver.save_screenshot(str(shot))
        _click(driver, "long", 'button[data-action="pause"]')
        _until(driver, "long shown Paused", lambda d: _phase(d, "long") == "Paused")

    await asyncio.to_thread(watch_progress_and_pause)
    assert (await kube.get(SYNCJOBS, "long", ns))["status"]["phase"] == "Paused"

    def bulk_cancel() -> None:
        for name in BULK:
            _click(driver, name, "input[type=checkbox]")
        _until(driver, "the bulk bar", lambda d: d.find_element(By.ID, "bulk").is_displayed())
        driver.find_element(By.CSS_SELECTOR, 'button[data-bulk="cancel"]').click()
        driver.switch_to.alert.accept()  # "cancel 3 jobs? This cannot be undone."
        _until(driver, "the bulk result",
               lambda d: "cancel: 3 done" in d.find_element(By.ID, "message").text)
        _until(driver, "the three shown Cancelled",
               lambda d: all(_phase(d, n) == "Cancelled" for n in BULK))

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
        row = _until(driver, "the job listed", lambda d: _row(d, "seen"))
        assert row.find_elements(By.CSS_SELECTOR, "button") == []
        assert row.find_elements(By.CSS_SELECTOR, "select") == []
        assert not driver.find_element(By.ID, "bulk").is_displayed()
        # alice, in the same page after logging in, has the controls carol lacks.
        driver.find_element(By.ID, "logout").click()
        _log_in(driver, console, "alice")
        _until(driver, "alice's resume button", lambda d: _row(d, "seen") and _row(
            d, "seen").find_elements(By.CSS_SELECTOR, 'button[data-action="resume"]'))

    await asyncio.to_thread(as_carol_then_alice)
