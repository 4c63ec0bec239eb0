"""The real Segment JavaScript SDKs, installed from tests/sdk-js's lockfile on first use (node_modules/ is not
committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SDK_DIR = Path(__file__).resolve().parent / "sdk-js"
NODE_SDK_SCRIPT = SDK_DIR / "send.mjs"
# analytics.js as Segment's CDN serves it: the UMD build, which the package ships gzipped.
BROWSER_BUNDLE = SDK_DIR / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd" / "index.js.gz"
NPM_TIMEOUT_SECONDS = 300


def install() -> Path:
    """The SDK folder, installed; skips the calling test where Node.js or npm is missing."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node.js and npm are needed to run the real JavaScript SDKs")
    if not BROWSER_BUNDLE.is_file() or not (SDK_DIR / "node_modules" / "@segment" / "analytics-node").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SDK_DIR, check=True, capture_output=True,
                       timeout=NPM_TIMEOUT_SECONDS)
    return SDK_DIR
