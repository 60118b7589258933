"""Headless Chromium from the system's packages, driven by Selenium, for the dashboard tests.

Selenium is given the system's `chromedriver` and `chromium` paths, so it never looks for or
downloads a browser of its own. Without them (or without the `selenium` package) the tests
skip locally, saying why, and fail in CI (`CI` set), where `.ci/run` installs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("SLA_ENGINE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SLA_ENGINE_CHROMEDRIVER", "/usr/bin/chromedriver")
LAPTOP = (1366, 768)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) and not shutil.which(path):
            return f"{path} is missing (apt-get install -y {package})"
    return None


def require_browser() -> None:
    """Skip (locally) or fail (in CI) when headless Chromium is not available."""
    why = browser_missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run: {why}; CI must run them")
    pytest.skip(f"browser tests skipped locally: {why}")


@contextmanager
def chromium(size: tuple[int, int] = LAPTOP, *, dark: bool = False) -> Iterator[Any]:
    """A headless Chromium WebDriver whose viewport is exactly `size` (CSS pixels)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--lang=en-US",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False},
        )
        scheme = "dark" if dark else "light"
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        yield driver
    finally:
        driver.quit()
