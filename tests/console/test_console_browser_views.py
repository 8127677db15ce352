"""The console's other views in a real headless Chromium: alice opens a job and reads
its conditions, checkpoint, Events, audit trail and log (followed while it runs);
creates a job with the form; edits a schedule (and reads the API server's refusal of a
bad cron) and runs it now; sees
throughput and the timeline drawn. carol, who may only read jobs, gets no control in
the job view and is told she may not read schedules."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import ConsoleUnderTest, let_read_events
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from sync_operator.api import SYNCSCHEDULES
from sync_operator.api.common import API_VERSION, SYNCJOBS
from sync_operator.kube import KubeClient
from testkit.browser import click, log_in, opened_browsers, row, script_errors, until
from testkit.syncjobs import grant_pod_logs, syncjob, wait_phase

pytestmark = pytest.mark.cluster
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def browsers() -> Iterator[Callable[[], WebDriver]]:
    with opened_browsers() as open_one:
        yield open_one


def _shot(driver: WebDriver, tmp_path: Path, name: str) -> None:
    """SYNC_SCREENSHOTS=1 refreshes the README's pictures; otherwise into tmp."""
    where = DOCS if os.environ.get("SYNC_SCREENSHOTS") == "1" else tmp_path
    assert driver.save_screenshot(str(where / name))


def _texts(driver: WebDriver, selector: str) -> list[str]:
    return [el.text for el in driver.find_elements(By.CSS_SELECTOR, selector)]


def _tab(driver: WebDriver, tab: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'nav button[data-tab="{tab}"]').click()


def _schedule_field(driver: WebDriver, name: str, field: str) -> Any:
    return driver.find_element(
        By.CSS_SELECTOR, f'#schedules tr[data-name="{name}"] input[data-field="{field}"]')


async def test_job_view_schedules_and_charts_as_alice_and_carol(
        console: ConsoleUnderTest, kube: KubeClient, start_operator: Any, database_url: str,
        browsers: Callable[[], WebDriver], tmp_path: Path) -> None:
    ns = console.namespace
    await let_read_events(kube, ns, "alice")
    await grant_pod_logs(kube, ns, ["alice"])
    start_operator(database_url=database_url)
    await kube.create(SYNCSCHEDULES, {
        "apiVersion": API_VERSION, "kind": "SyncSchedule", "metadata": {"name": "nightly"},
        "spec": {"jobType": "hadith", "schedule": "0 2 * * *", "suspend": True}}, ns)
    await kube.create(SYNCJOBS, syncjob("shown", "quran", params={
        "task": "demo", "items": 20, "unitSeconds": 0.1}), ns)
    await kube.create(SYNCJOBS, syncjob("waiting", "audio", paused=True), ns)
    await wait_phase(kube, ns, "shown", "Succeeded", timeout=90)
    driver = await asyncio.to_thread(browsers)

    def job_view() -> None:
        log_in(driver, console.url, ns, user="alice", token=console.tokens["alice"])
        until(driver, "the job listed", lambda d: row(d, "shown"))
        driver.find_element(By.CSS_SELECTOR, '#jobs tr[data-name="shown"] td.name a').click()
        until(driver, "the job view", lambda d: d.find_element(By.ID, "d-name").text == "shown")
        assert driver.find_element(By.ID, "d-phase").text == "Succeeded"
        progress = driver.find_element(By.ID, "d-progress")
        assert progress.get_attribute("data-done") == "20"
        until(driver, "conditions", lambda d: "Complete" in _texts(
            d, "#d-conditions tbody td:first-child") or None)
        until(driver, "Events of the job and its Job", lambda d: {
            t.split("/")[0] for t in _texts(d, "#d-events tbody td:nth-child(4)")} == {
            "SyncJob", "Job"})
        until(driver, "the audit trail", lambda d: "create" in _texts(
            d, "#d-audit tbody td:nth-child(2)"))
        facts = driver.find_element(By.ID, "d-facts").text
        assert "checkpoint" in facts
        assert "attempts" in facts
        until(driver, "the runner's log", lambda d: "runner.exit" in d.find_element(
            By.ID, "d-logs").text)
        _shot(driver, tmp_path, "console-job.png")

    await asyncio.to_thread(job_view)

    await kube.create(SYNCJOBS, syncjob("chatty", "prayer", params={
        "task": "demo", "items": 40, "unitSeconds": 0.25}), ns)
    await wait_phase(kube, ns, "chatty", "Running", timeout=60)

    def followed_log() -> None:
        until(driver, "chatty listed", lambda d: d.find_element(
            By.CSS_SELECTOR, '#jobs tr[data-name="chatty"] td.name a')).click()
        until(driver, "the job view", lambda d: d.find_element(By.ID, "d-name").text
              == "chatty")
        lines = until(driver, "the log open", lambda d: len(d.find_element(
            By.ID, "d-logs").text.splitlines()))
        until(driver, "the log growing while it runs", lambda d: len(d.find_element(
            By.ID, "d-logs").text.splitlines()) > lines)
        until(driver, "the log followed to the runner's exit", lambda d: "runner.exit" in
              d.find_element(By.ID, "d-logs").text)

    await asyncio.to_thread(followed_log)

    def new_job_form() -> None:
        driver.find_element(By.CSS_SELECTOR, "#new-job summary").click()
        driver.find_element(By.ID, "n-name").send_keys("from-form")
        driver.find_element(By.ID, "n-params").send_keys('{"task": "demo", "items": 3}')
        driver.find_element(By.ID, "n-paused").click()
        driver.find_element(By.CSS_SELECTOR, "#new-job-form button").click()
        until(driver, "the new job listed", lambda d: row(d, "from-form"))

    await asyncio.to_thread(new_job_form)

    def priority_selector() -> None:
        # A button until clicked (a thousand rows of selects are slow to paint).
        click(driver, "waiting", 'button[data-action="priority"]')
        select = until(driver, "the selector", lambda d: row(d, "waiting").find_element(
            By.CSS_SELECTOR, "select"))
        Select(select).select_by_value("2")
        until(driver, "priority 2 shown", lambda d: row(d, "waiting").find_element(
            By.CSS_SELECTOR, 'button[data-action="priority"]').text.startswith("2"))

    await asyncio.to_thread(priority_selector)
    assert (await kube.get(SYNCJOBS, "waiting", ns))["spec"]["priority"] == 2
    made = await kube.get(SYNCJOBS, "from-form", ns)
    assert (made["spec"]["jobType"], made["spec"]["paused"]) == ("quran", True)

    def schedule_manager() -> None:
        _tab(driver, "schedules")
        cron = until(driver, "the schedule row", lambda d: _schedule_field(d, "nightly",
                                                                          "schedule"))
        cron.clear()
        cron.send_keys("*/10 * * * *")
        priority = _schedule_field(driver, "nightly", "priority")
        priority.clear()
        priority.send_keys("3")
        driver.find_element(By.CSS_SELECTOR,
                            '#schedules tr[data-name="nightly"] button[data-action="save"]'
                            ).click()
        until(driver, "saved", lambda d: d.find_element(By.ID, "s-message").text
              == "nightly: saved")
        _shot(driver, tmp_path, "console-schedules.png")
        until(driver, "the run-now button", lambda d: d.find_element(
            By.CSS_SELECTOR, '#schedules tr[data-name="nightly"] button[data-action="run now"]'
        )).click()
        until(driver, "started", lambda d: d.find_element(By.ID, "s-message").text.startswith(
            "nightly: started nightly-manual-"))

    await asyncio.to_thread(schedule_manager)
    spec = (await kube.get(SYNCSCHEDULES, "nightly", ns))["spec"]
    assert (spec["schedule"], spec["priority"], spec["suspend"]) == ("*/10 * * * *", 3, True)

    def bad_cron() -> str:
        cron = until(driver, "the schedule row again",
                     lambda d: _schedule_field(d, "nightly", "schedule"))
        cron.clear()
        cron.send_keys("every night")
        driver.find_element(By.CSS_SELECTOR,
                            '#schedules tr[data-name="nightly"] button[data-action="save"]'
                            ).click()
        return str(until(driver, "the refusal", lambda d: d.find_element(
            By.CSS_SELECTOR, "#s-message.error").text))

    refusal = await asyncio.to_thread(bad_cron)
    assert "spec.schedule" in refusal
    assert (await kube.get(SYNCSCHEDULES, "nightly", ns))["spec"]["schedule"] == "*/10 * * * *"

    def charts() -> None:
        _tab(driver, "analytics")
        until(driver, "the throughput bar of quran", lambda d: d.find_elements(
            By.CSS_SELECTOR, '#throughput rect[data-type="quran"]'))
        until(driver, "the run on the timeline", lambda d: d.find_elements(
            By.CSS_SELECTOR, '#timeline rect[data-phase="Succeeded"]'))
        Select(driver.find_element(By.ID, "t-bucket")).select_by_value("minute")
        until(driver, "two hours of minute buckets", lambda d: len(d.find_elements(
            By.CSS_SELECTOR, "#throughput rect[data-type]")) and d.execute_script(
            "return document.querySelector('#throughput svg').dataset.buckets") == "121")
        _shot(driver, tmp_path, "console-analytics.png")

    await asyncio.to_thread(charts)

    def as_carol() -> None:
        driver.find_element(By.ID, "logout").click()
        log_in(driver, console.url, ns, user="carol", token=console.tokens["carol"])
        _tab(driver, "jobs")
        until(driver, "the paused job listed", lambda d: row(d, "waiting"))
        driver.find_element(By.CSS_SELECTOR, '#jobs tr[data-name="waiting"] td.name a').click()
        until(driver, "the job view", lambda d: d.find_element(By.ID, "d-name").text
              == "waiting")
        assert driver.find_elements(By.CSS_SELECTOR, "#d-controls button") == []
        assert not driver.find_element(By.ID, "d-logs").is_displayed()
        until(driver, "carol told she may not read Events", lambda d: "carol" in d.find_element(
            By.ID, "d-events-note").text)
        _tab(driver, "schedules")
        until(driver, "carol refused the schedules", lambda d: "carol" in d.find_element(
            By.ID, "s-message").text)
        assert not driver.find_element(By.ID, "new-job").is_displayed()

    await asyncio.to_thread(as_carol)
    assert await asyncio.to_thread(script_errors, driver) == []
