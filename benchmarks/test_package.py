"""The deployment zip's size, from ./build.sh when the repository has one."""

from __future__ import annotations

import subprocess

from report import Results, ZipOutcome
from services import REPO

BUILD = REPO / "build.sh"
ZIP = REPO / "dist" / "reflekt-registry.zip"
# Installing two pure-Python packages and zipping them takes seconds; longer means the build is stuck.
BUILD_TIMEOUT_SECONDS = 300


def test_zip_size(results: Results) -> None:
    results.zip = build()


def build() -> ZipOutcome:
    if not BUILD.exists():
        return ZipOutcome(None, "there is no ./build.sh")
    try:
        completed = subprocess.run([str(BUILD)], cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as e:
        return ZipOutcome(None, f"./build.sh did not run: {e}")
    if completed.returncode != 0:
        last = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        return ZipOutcome(None, f"./build.sh exited {completed.returncode}: {last[0][:200]}")
    if not ZIP.is_file():
        return ZipOutcome(None, f"./build.sh did not write {ZIP.relative_to(REPO)}")
    return ZipOutcome(ZIP.stat().st_size, "")
