"""A headless Chromium (Debian's chromium, driven by Selenium through its chromedriver)
and the console's page in it: for the console's browser tests and the console benchmark.

Selenium blocks: callers on an event loop run these in a thread."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 60
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,900", "--disable-gpu")


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


@contextlib.contextmanager
def opened_browsers() -> Iterator[Callable[[], webdriver.Chrome]]:
    """A factory of browsers; every one it opened is closed on the way out."""
    opened: list[webdriver.Chrome] = []

    def open_one() -> webdriver.Chrome:
        driver = chromium()
        opened.append(driver)
        return driver

    try:
        yield open_one
    finally:
        for driver in opened:
            with contextlib.suppress(Exception):
                driver.quit()


def until(driver: WebDriver, what: str, check: Callable[[WebDriver], Any],
          timeout: float = WAIT) -> Any:
    """Wait for `check`; a row replaced by a live update meanwhile is looked up again."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        check, message=what)


def log_in(driver: WebDriver, url: str, namespace: str, user: str, token: str) -> None:
    """Open the console on `namespace` and log in as `user` with the login form."""
    driver.get(f"{url}/?namespace={namespace}")
    # The form is in the page from the start, hidden until the page learns it has no
    # session: wait until it is shown, not merely there.
    field = until(driver, "the login form", lambda d: (lambda el: el.is_displayed() and el)(
        d.find_element(By.ID, "token")))
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(driver, f"logged in as {user}", lambda d: d.find_element(By.ID, "who").text == user)


def row(driver: WebDriver, name: str) -> Any:
    """The job table's row of `name`, or None."""
    rows = driver.find_elements(By.CSS_SELECTOR, f'#jobs tr[data-name="{name}"]')
    return rows[0] if rows else None


def phase(driver: WebDriver, name: str) -> str | None:
    found = row(driver, name)
    return None if found is None else str(found.find_element(By.CSS_SELECTOR, "td.phase").text)


def done(driver: WebDriver, name: str) -> int:
    """The row's progress (data-done), -1 if there is no row or no progress yet."""
    found = row(driver, name)
    if found is None:
        return -1
    value = found.find_element(By.CSS_SELECTOR, "td.progress").get_attribute("data-done")
    return int(value) if value else -1


def click(driver: WebDriver, name: str, selector: str) -> None:
    """Click an element of a job's row, finding it afresh if a live update replaced it."""
    def clicked(d: WebDriver) -> bool:
        found = row(d, name)
        if found is None:
            return False
        found.find_element(By.CSS_SELECTOR, selector).click()
        return True

    until(driver, f"{selector} of {name} clicked", clicked)



def script_errors(driver: WebDriver) -> list[str]:
    """Errors the page's own scripts raised (failed requests, which tests provoke on
    purpose, are not counted)."""
    chrome: Any = driver  # get_log is Chromium's own (the W3C WebDriver has no logs)
    return [entry["message"] for entry in chrome.get_log("browser")
            if entry.get("source") == "javascript"]
