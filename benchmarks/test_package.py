"""The deployment zip's size, from ./build.sh; a build that fails or leaves out the handler fails the benchmark."""

from __future__ import annotations

import subprocess
import zipfile

from report import Results, ZipOutcome
from services import REPO

BUILD = REPO / "build.sh"
ZIP = REPO / "dist" / "reflekt-registry.zip"
HANDLER_MODULE = "reflekt_registry/handler.py"
# Installing two pure-Python packages and zipping them takes seconds; longer means the build is stuck.
BUILD_TIMEOUT_SECONDS = 300


def test_zip_size(results: Results) -> None:
    # Recorded before the checks, so a full run's table says why the zip is missing.
    outcome = results.zip = build()
    assert outcome.size is not None, outcome.note
    with zipfile.ZipFile(ZIP) as archive:
        assert HANDLER_MODULE in archive.namelist(), f"{ZIP.relative_to(REPO)} has no {HANDLER_MODULE}"


def build() -> ZipOutcome:
    ZIP.unlink(missing_ok=True)  # a zip left by an earlier build must not pass for this one's
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
