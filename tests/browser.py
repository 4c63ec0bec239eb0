"""Debian's Chromium, headless and offline, for the tests that need a real browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (as .ci/run does) to run the browser tests",
)
# Headless and offline: no first-run or background traffic, sRGB so colours are exact. Virtual time runs timers
# (polls, retries) without waiting for them in real time.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--force-color-profile=srgb",
    "--hide-scrollbars",
)
WINDOW = (1280, 900)
# Only guards against a hung browser; nothing asserts on how long a page takes.
CHROMIUM_TIMEOUT_SECONDS = 60


def chromium(tmp_path: Path, url: str, *args: str, virtual_seconds: int = 5) -> str:
    """Loads `url`, lets `virtual_seconds` of page time pass, and returns what Chromium printed (e.g. --dump-dom)."""
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         f"--virtual-time-budget={virtual_seconds * 1000}", *args, url],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_SECONDS, check=True,
    )
    return result.stdout
