"""Headless Chromium from Debian, driven through selenium: for the page's tests and docs/screens/make.py.

    with Browser(downloads=folder) as browser:
        browser.driver.get(server_url)

Debian's `chromium` and `chromium-driver` packages (.ci/run installs them when missing); the flags
keep it off the network except for the loopback server under test (no component updates, no sync,
no QUIC), and every browser gets a fresh profile, so nothing carries over between runs.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--force-device-scale-factor=1", "--lang=zh-CN"]


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing (apt-get install chromium chromium-driver; .ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in the test extra)"
    return None


class Browser:
    def __init__(self, downloads: str | Path | None = None, size: tuple[int, int] = (1400, 1000)) -> None:
        self.downloads = Path(downloads) if downloads else None
        self.size = size
        self.profile = ""
        self.driver: Any = None

    def start(self) -> Self:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        self.profile = tempfile.mkdtemp(prefix="slarules-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}"]:
            options.add_argument(flag)
        if self.downloads is not None:
            options.add_experimental_option("prefs", {"download.default_directory": str(self.downloads),
                                                      "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(30)
        return self

    def stop(self) -> None:
        if self.driver is not None:
            self.driver.quit()
            self.driver = None
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
        """What `condition(driver)` returns once it is truthy (selenium's wait: TimeoutException after `timeout`).

        An element the page re-renders between a condition's find and its read is stale: that is asked
        again, as an element not found yet is, rather than failing the test on the page's timing."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.wait import WebDriverWait
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                             ).until(condition)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def visible(self, css: str, timeout: float = 30) -> Any:
        """The element matching `css` once it is displayed."""
        def shown(driver: Any) -> Any:
            found = self.find_all(css)
            return found[0] if found and found[0].is_displayed() else None
        return self.wait(shown, timeout)

    def navigate_by(self, css: str, timeout: float = 30) -> None:
        """Click what loads another document (a form's submit) and wait until the old one is gone:
        else the next find can still reach the old page's element and act on a stale one."""
        from selenium.webdriver.support.expected_conditions import staleness_of
        old = self.find("html")
        self.find(css).click()
        self.wait(staleness_of(old), timeout)

    def screenshot(self, path: str | Path) -> None:
        """The whole page (the window grown to its height, then put back) as a PNG."""
        width, height = self.size
        full = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, max(height, full + 100))
        self.driver.execute_script("window.scrollTo(0, 0)")
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(width, height)

    def console_errors(self) -> list[str]:
        """The page's console errors so far (a script that failed shows here)."""
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
