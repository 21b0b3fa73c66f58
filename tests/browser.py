"""A real headless Chromium (Debian's chromium and chromedriver), driven by Selenium.

Without the browser a test is skipped on a developer's machine, and fails under CI=true: CI
installs it (.ci/run), so a browser that does not start there is a defect to see, not to hide.
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = os.environ.get("ZENATON_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ZENATON_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
SCREENSHOTS = Path(os.environ.get("ZENATON_SCREENSHOTS", Path(__file__).parent.parent / "build" / "screenshots"))


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests need Chromium under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[object]:
    """A fresh headless Chromium with an empty profile of its own."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        unavailable(f"selenium is not installed ({error})")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not (Path(binary).is_file() or shutil.which(binary)):
            unavailable(f"{binary} is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except Exception as error:  # the browser or its driver would not start
        unavailable(f"chromium did not start: {type(error).__name__}: {error}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: object, name: str) -> Path:
    """A screenshot of the whole page as a test artifact (build/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]  # type: ignore[attr-defined]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
