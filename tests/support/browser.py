"""Debian's chromium, headless, driven by selenium through Debian's chromedriver.

For the HTML report's tests and the demo's screenshot. Both binaries are named explicitly,
so selenium never looks for (or downloads) a driver of its own; `.ci/ensure-chromium`
installs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CHROMEDRIVER", "CHROMIUM", "console_messages", "missing", "start_chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing() -> str | None:
    """What is missing to run the browser, said so that the fix is plain; None if nothing."""
    absent = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if absent:
        return f"{' and '.join(absent)} missing: run `bash .ci/ensure-chromium` (as root)"
    return None


def start_chromium(width: int = 1280, height: int = 900) -> Any:
    """A headless chromium showing pages of that size, keeping the console's messages."""
    from selenium import webdriver  # noqa: PLC0415 (only where a browser is wanted)
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    problem = missing()
    if problem:
        raise RuntimeError(problem)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # --window-size counts the window, not the page: make the page itself width x height.
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


def console_messages(driver: Any) -> list[dict[str, Any]]:
    """The browser console's messages since the last call (chromedriver's ``browser`` log)."""
    return list(driver.get_log("browser"))
