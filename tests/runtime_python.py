"""Finds the Lambda runtime's Python (3.13) on this machine, where build.sh looks for it: PATH, then pyenv."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

RUNTIME_VERSION = (3, 13)


@functools.cache
def python313() -> str | None:
    """The interpreter's path, or None when this machine has no Python 3.13."""
    candidates = [shutil.which("python3.13"), *sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"), reverse=True)]
    for candidate in filter(None, candidates):
        probe = subprocess.run([str(candidate), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if probe.stdout.strip() == str(RUNTIME_VERSION):
            return str(candidate)
    return None
