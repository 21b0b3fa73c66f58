"""The dashboard in a real headless Chromium, against a real daemon and a real `zenaton dashboard`,
both started as a user starts them. Each page is saved as a screenshot (build/screenshots/)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chrome, screenshot  # noqa: F401  (fixture)
from tests.dashboard_helpers import dash_root  # noqa: F401  (fixture)
from tests.e2e import Daemon, zenaton

LIVE = 10.0  # seconds a page may take to show what the daemon did (it looks every 0.5 s)


class Served:
    """A project with its daemon and its dashboard running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemon = Daemon(root).started()
        self.board = Daemon(root, "--port", "0", command="dashboard")
        self.url = re.search(r"Zenaton dashboard: (http://\S+)", self.board.expect("Zenaton dashboard: "))[1]
        self.base = self.url.partition("/?")[0]

    def dispatch(self, *args: str) -> str:
        return json.loads(zenaton(self.root, "dispatch", *args, "--json").stdout)["id"]

    def view(self, instance: str) -> dict[str, Any]:
        return json.loads(zenaton(self.root, "inspect", instance, "--json").stdout)

    def until(self, instance: str, status: str) -> None:
        self.daemon.wait_until(lambda: self.view(instance)["status"] == status, what=f"{instance} {status}")

    def close(self) -> None:
        self.board.stop()
        self.daemon.stop()


@pytest.fixture
def served(dash_root: Path) -> Iterator[Served]:
    serving = Served(dash_root)
    yield serving
    serving.close()


REDRAWN = (StaleElementReferenceException, NoSuchElementException)  # the page's script swapped it


def text_of(driver: Any, element_id: str) -> str:
    """The element's text (read again if a live redraw replaced it meanwhile)."""
    return WebDriverWait(driver, LIVE, ignored_exceptions=REDRAWN).until(
        lambda d: d.find_element(By.ID, element_id).text or " "
    ).strip()


def click(driver: Any, element_id: str) -> None:
    WebDriverWait(driver, LIVE, ignored_exceptions=REDRAWN).until(
        lambda d: d.find_element(By.ID, element_id).click() or True
    )


def until_status(driver: Any, status: str) -> None:
    WebDriverWait(driver, LIVE, poll_frequency=0.1, ignored_exceptions=REDRAWN).until(
        lambda d: d.find_element(By.ID, "status").text == status
    )


def test_find_a_failed_instance_see_its_error_and_picture_retry_it(served: Served, chrome: Any) -> None:
    broken = served.dispatch("Breakable", "cy")
    served.dispatch("Waiter", "ada")
    served.until(broken, "paused")
    chrome.get(served.url)  # the address `zenaton dashboard` printed, token included
    assert "token" not in chrome.current_url  # it became a cookie
    screenshot(chrome, "instances")
    chrome.find_element(By.CSS_SELECTOR, "#counts a.status.paused").click()  # Breakable's paused count
    WebDriverWait(chrome, LIVE).until(lambda d: "status=paused" in d.current_url)  # the filtered list loaded
    rows = chrome.find_elements(By.CSS_SELECTOR, "#instances tbody tr")
    assert len(rows) == 1 and "Breakable" in rows[0].text
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    assert text_of(chrome, "status") == "paused"
    assert "RuntimeError: cy is broken" in text_of(chrome, "error")
    assert "Traceback (most recent call last)" in text_of(chrome, "error")
    bars = chrome.find_elements(By.CSS_SELECTOR, "#picture svg g.bar")
    assert len(bars) == 2  # Greet's attempt and Fragile's failed one
    screenshot(chrome, "instance-failed")
    (served.root / "fixed").touch()
    click(chrome, "retry")
    assert text_of(chrome, "done").startswith("retry: ")  # what the action did, once it was posted
    until_status(chrome, "completed")
    assert served.view(broken)["properties"]["result"] == "mended"
    assert len(chrome.find_elements(By.CSS_SELECTOR, "#picture svg g.bar")) == 3  # the retry is a bar of its own
    screenshot(chrome, "instance-retried")


def test_a_page_follows_its_instance_live(served: Served, chrome: Any) -> None:
    waiter = served.dispatch("Waiter", "ada")
    served.until(waiter, "running")
    served.daemon.wait_until(lambda: len(served.view(waiter)["steps"]) == 2, what="the wait")
    chrome.get(served.url)
    chrome.get(f"{served.base}/instances/{waiter}")
    assert text_of(chrome, "status") == "running"
    click(chrome, "pause")
    until_status(chrome, "paused")
    chrome.execute_script("window.stillTheSamePage = true")
    chrome.find_element(By.ID, "event-args").send_keys("[7]")  # typed, not sent
    zenaton(served.root, "resume", waiter)
    until_status(chrome, "running")  # redrawn by the page's own script, not reloaded
    assert chrome.find_element(By.ID, "event-args").get_attribute("value") == "[7]"  # kept
    assert text_of(chrome, "done") == "pause: done, Waiter is now paused"  # the notice stays
    zenaton(served.root, "send-event", waiter, "Go", "42")
    until_status(chrome, "completed")
    assert chrome.execute_script("return window.stillTheSamePage") is True
    kinds = [row.find_elements(By.TAG_NAME, "td")[1].text for row in chrome.find_elements(By.CSS_SELECTOR, "#steps tr.step")]
    assert kinds == ["task", "wait", "pause", "resume", "event", "parallel", "parallel", "completed"]
    assert '"got": 42' in text_of(chrome, "properties")
    screenshot(chrome, "instance-completed")


def test_pause_resume_and_kill_a_waiting_instance_from_its_page(served: Served, chrome: Any) -> None:
    waiter = served.dispatch("Waiter", "bob")
    served.daemon.wait_until(lambda: len(served.view(waiter)["steps"]) == 2, what="the wait")
    chrome.get(served.url)
    chrome.get(f"{served.base}/instances/{waiter}")
    click(chrome, "pause")
    until_status(chrome, "paused")
    assert served.view(waiter)["status"] == "paused"
    assert text_of(chrome, "done") == "pause: done, Waiter is now paused"
    screenshot(chrome, "instance-paused")
    click(chrome, "resume")
    until_status(chrome, "running")
    click(chrome, "kill")
    WebDriverWait(chrome, LIVE, ignored_exceptions=REDRAWN).until(  # the confirmation page, once it loaded
        lambda d: "Kill Waiter?" in d.find_element(By.TAG_NAME, "h1").text
    )
    assert served.view(waiter)["status"] == "running"
    screenshot(chrome, "confirm-kill")
    click(chrome, "confirm")
    until_status(chrome, "killed")
    assert [s["kind"] for s in served.view(waiter)["steps"]][-3:] == ["pause", "resume", "kill"]


def test_errors_schedules_and_daemons_pages(served: Served, chrome: Any) -> None:
    broken = [served.dispatch("Breakable", name) for name in ("e1", "e2")]
    for instance in broken:
        served.until(instance, "paused")
    zenaton(served.root, "schedule", "Waiter", "0 9 * * 1", "weekly")
    chrome.get(served.url)
    chrome.find_element(By.LINK_TEXT, "Errors").click()
    WebDriverWait(chrome, LIVE, ignored_exceptions=REDRAWN).until(
        lambda d: "2 instance(s)" in d.find_element(By.CSS_SELECTOR, "section.group h2").text
    )
    screenshot(chrome, "errors")
    (served.root / "fixed").touch()
    chrome.find_element(By.CSS_SELECTOR, "button.retry-all").click()
    assert "retry posted for 2 instance(s)" in text_of(chrome, "done")
    for instance in broken:
        served.until(instance, "completed")
    chrome.find_element(By.LINK_TEXT, "Schedules").click()
    assert "0 9 * * 1" in text_of(chrome, "schedules")
    screenshot(chrome, "schedules")
    chrome.find_element(By.LINK_TEXT, "Daemons").click()
    WebDriverWait(chrome, LIVE).until(lambda d: str(served.daemon.process.pid) in text_of(d, "daemons"))
    assert "alive" in text_of(chrome, "daemons")
    screenshot(chrome, "daemons")
