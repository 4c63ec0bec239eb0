#!/usr/bin/env bash
# Builds the Lambda deployment zip: function/ plus the runtime requirements, installed for the Lambda platform.
#   ./build.sh [arm64|x86_64]    the architecture may also come from ARCH; default arm64
# OUT overrides the output path (default dist/reflekt-registry.zip); PYTHON the interpreter that runs pip;
# LAMBDA_PYTHON the python3.13 that compiles the bytecode (default: python3.13 on PATH, else pyenv's).
# The zip ships bytecode for the runtime's Python, so a cold start compiles nothing (/var/task is read-only, so
# the runtime could never cache it). The bytecode is hash-based and unchecked: no source timestamps inside, so
# the same sources still give the same bytes (sorted entries, fixed timestamps and modes), and Terraform's
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

# is_lambda_python PATH: whether PATH runs and is the runtime's Python version (its bytecode is version-specific).
is_lambda_python() {
  [[ -n $1 ]] && "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$LAMBDA_PYTHON_VERSION'.split('.'))))" 2>/dev/null
}

find_lambda_python() {
  if [[ -n ${LAMBDA_PYTHON+set} ]]; then
    is_lambda_python "$LAMBDA_PYTHON" && echo "$LAMBDA_PYTHON"
    return 0
  fi
  local candidate
  for candidate in "python$LAMBDA_PYTHON_VERSION" $(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/$LAMBDA_PYTHON_VERSION".*/bin/python"$LAMBDA_PYTHON_VERSION" 2>/dev/null | sort -rV); do
    if is_lambda_python "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
}

compiler=$(find_lambda_python)
if [[ -z $compiler ]]; then
  echo "build.sh: WARNING: no python$LAMBDA_PYTHON_VERSION found${LAMBDA_PYTHON+ at LAMBDA_PYTHON=$LAMBDA_PYTHON}; the zip ships without bytecode," >&2
  echo "build.sh: WARNING: so every cold start compiles every module. Install Python $LAMBDA_PYTHON_VERSION or set LAMBDA_PYTHON." >&2
fi

deps=$(mktemp -d)
trap 'rm -rf "$deps"' EXIT

echo "build.sh: installing requirements.txt for $platform, Python $LAMBDA_PYTHON_VERSION" >&2
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile \
  --platform "$platform" --implementation cp --python-version "$LAMBDA_PYTHON_VERSION" --only-binary=:all: \
  --target "$deps" --requirement requirements.txt

mkdir -p "$(dirname "$OUT")"
"$PYTHON" - "$OUT" "$deps" function "$compiler" <<'PY'
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

out, deps, function, compiler = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
HANDLER_MODULE = "reflekt_registry/handler.py"
# Sub-packages the Lambda never imports: the local server (`./dev serve`) with its inspection page, and the
# publish and check-events commands. Whole folders are left out, so a new dev-only module needs no list entry.
DEV_ONLY_PACKAGES = {"reflekt_registry/local", "reflekt_registry/tools"}
SKIPPED_DIRS = {"__pycache__", "tests"}
# Zip timestamps cannot predate 1980.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
# Where the Lambda unpacks the zip; compiled code names its source files there, so tracebacks point at them.
TASK_ROOT = "/var/task"


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


def compiled(files, compiler):
    """{zip name: bytes} of the __pycache__ entries the runtime's Python would write for every module.

    Unchecked-hash pycs carry no source mtime, and the runtime trusts them without reading the source again; a
    fixed hash seed keeps the order of set constants (and so the bytes) the same from one build to the next.
    """
    with tempfile.TemporaryDirectory() as stage:
        for name, path in files.items():
            if name.endswith(".py"):
                (Path(stage) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, Path(stage) / name)
        subprocess.run([compiler, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                        "-s", stage, "-p", TASK_ROOT, stage],
                       check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        return {path.relative_to(stage).as_posix(): path.read_bytes() for path in Path(stage).rglob("*.pyc")}


contents = {name: path.read_bytes() for name, path in files.items()}
if compiler:
    contents.update(compiled(files, compiler))

partial = out.with_name(out.name + ".partial")
with zipfile.ZipFile(partial, "w") as archive:
    for name in sorted(contents):
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
        info.create_system = 3  # Unix, so external_attr holds the mode
        info.external_attr = FILE_MODE << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, contents[name], compresslevel=9)
os.replace(partial, out)
bytecode = f"bytecode by {compiler}" if compiler else "no bytecode"
print(f"build.sh: {len(contents)} files ({bytecode}), {out.stat().st_size} bytes", file=sys.stderr)
PY
echo "$OUT"
