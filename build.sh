#!/usr/bin/env bash
# Builds the Lambda deployment zip: function/ plus the runtime requirements, installed for the Lambda platform.
#   ./build.sh [arm64|x86_64]    the architecture may also come from ARCH; default arm64
# OUT overrides the output path (default dist/reflekt-registry.zip); PYTHON the interpreter that runs pip.
# The same sources give the same bytes (sorted entries, fixed timestamps and modes), so Terraform's
# source_code_hash changes only when the code does. The zip's path is the last line printed.
set -euo pipefail
cd "$(dirname "$0")"

ARCH=${1:-${ARCH:-arm64}}
OUT=${OUT:-dist/reflekt-registry.zip}
PYTHON=${PYTHON:-python3}
# The Lambda runtime in terraform/lambda.tf.
LAMBDA_PYTHON_VERSION=3.13

case $ARCH in
  arm64) platform=manylinux2014_aarch64 ;;
  x86_64) platform=manylinux2014_x86_64 ;;
  *)
    echo "build.sh: unknown architecture '$ARCH'; use arm64 or x86_64" >&2
    exit 2
    ;;
esac

deps=$(mktemp -d)
trap 'rm -rf "$deps"' EXIT

echo "build.sh: installing requirements.txt for $platform, Python $LAMBDA_PYTHON_VERSION" >&2
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile \
  --platform "$platform" --implementation cp --python-version "$LAMBDA_PYTHON_VERSION" --only-binary=:all: \
  --target "$deps" --requirement requirements.txt

mkdir -p "$(dirname "$OUT")"
"$PYTHON" - "$OUT" "$deps" function <<'PY'
import os
import sys
import zipfile
from pathlib import Path

out, deps, function = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
HANDLER_MODULE = "reflekt_registry/handler.py"
# Sub-packages the Lambda never imports: the local server (`./dev serve`) with its inspection page, and the
# publish and check-events commands. Whole folders are left out, so a new dev-only module needs no list entry.
DEV_ONLY_PACKAGES = {"reflekt_registry/local", "reflekt_registry/tools"}
SKIPPED_DIRS = {"__pycache__", "tests"}
# Zip timestamps cannot predate 1980.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--


def entries(root, skip_top_level=frozenset()):
    for path in root.rglob("*"):
        name = path.relative_to(root).as_posix()
        parts = name.split("/")
        if (
            path.is_file()
            and parts[0] not in skip_top_level
            and not SKIPPED_DIRS.intersection(parts)
            and not name.endswith(".pyc")
            and not any(name.startswith(package + "/") for package in DEV_ONLY_PACKAGES)
        ):
            yield name, path


# pip's bin/ holds console scripts, which the Lambda never runs.
files = dict(entries(deps, skip_top_level={"bin"}))
for name, path in entries(function):
    if name in files:
        sys.exit(f"build.sh: {function / name} clashes with a file from requirements.txt")
    files[name] = path
if HANDLER_MODULE not in files:
    sys.exit(f"build.sh: {function / HANDLER_MODULE} is missing; the Lambda handler lives there")

partial = out.with_name(out.name + ".partial")
with zipfile.ZipFile(partial, "w") as archive:
    for name in sorted(files):
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
        info.create_system = 3  # Unix, so external_attr holds the mode
        info.external_attr = FILE_MODE << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, files[name].read_bytes(), compresslevel=9)
os.replace(partial, out)
print(f"build.sh: {len(files)} files, {out.stat().st_size} bytes", file=sys.stderr)
PY
echo "$OUT"
