"""build.sh: the Lambda zip is reproducible, holds only what the Lambda runs, and runs where only boto3 is installed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from fakes.segment import FakeSegment
from helpers import CLIENT_KEY, VALID_KEY, api_event, track
from runtime_python import python313
from s3_support import create_bucket_with_schemas, lambda_env

REPO = Path(__file__).resolve().parents[1]
# What build.sh reads; copying just these proves the zip does not depend on the checkout's location or file times.
BUILD_INPUTS = ("build.sh", "requirements.txt", "function")
HANDLER_MODULE = "reflekt_registry/handler.py"
# The sub-packages that never run in Lambda.
DEV_ONLY_PACKAGES = ("reflekt_registry/local/", "reflekt_registry/tools/")
# The boto3 the python3.13 runtime provides is not bundled; the Lambda-like venv installs this one.
RUNTIME_BOTO3 = "boto3==1.44.8"
BUILD_TIMEOUT_SECONDS = 300
# The Lambda runtime's Python, whose bytecode the zip ships: PEP 3147's cache tag and the pyc flags of
# unchecked hash-based files (bit 0: hash-based; bit 1, check the source: unset).
RUNTIME_CACHE_TAG = "cpython-313"
UNCHECKED_HASH_FLAGS = 0b01


needs_python313 = pytest.mark.skipif(python313() is None, reason="no python3.13 here (PATH or pyenv): build.sh falls back "
                                     "to a zip without bytecode, which test_without_python313_the_zip_has_no_bytecode covers")


def build(root: Path, out: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "build.sh"), *args],
        env={**os.environ, "OUT": str(out), "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "reflekt-registry.zip"
    result = build(REPO, out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(out), "build.sh must print the zip's path last"
    return out


def test_the_same_sources_give_the_same_bytes(built_zip: Path, tmp_path: Path) -> None:
    # GIVEN the build inputs copied elsewhere (shutil.copy gives new timestamps), and one file's mode changed
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, copy_function=shutil.copy)
        else:
            shutil.copy(source, copy / name)
    (copy / "function" / HANDLER_MODULE).chmod(0o600)
    # WHEN the copy is built
    result = build(copy, tmp_path / "again.zip")
    # THEN the zip is byte for byte the same
    assert result.returncode == 0, result.stderr
    assert sha256(tmp_path / "again.zip") == sha256(built_zip)


def test_entries_are_sorted_with_fixed_times_and_modes(built_zip: Path) -> None:
    with zipfile.ZipFile(built_zip) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_the_zip_holds_the_package_and_its_runtime_dependencies_only(built_zip: Path) -> None:
    with zipfile.ZipFile(built_zip) as archive:
        names = set(archive.namelist())
    package = REPO / "function" / "reflekt_registry"
    lambda_modules = {f"reflekt_registry/{path.name}" for path in package.glob("*.py")}
    dev_only = {path.relative_to(package.parent).as_posix() for package_dir in DEV_ONLY_PACKAGES
                for path in (package.parent / package_dir).rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert HANDLER_MODULE in names
    assert lambda_modules <= names
    assert {"reflekt_registry/local/server.py", "reflekt_registry/tools/publish.py"} <= dev_only
    assert not [name for name in names if name.startswith(DEV_ONLY_PACKAGES)]
    assert {"fastjsonschema/__init__.py", "urllib3/__init__.py"} <= names
    top_level = {name.split("/")[0] for name in names}
    assert not top_level & {"boto3", "botocore", "s3transfer", "bin", "tests"}


def bytecode_of(source: str) -> str:
    folder, _, module = source.rpartition("/")
    return f"{folder}/__pycache__/{module[:-3]}.{RUNTIME_CACHE_TAG}.pyc"


@needs_python313
def test_every_module_ships_unchecked_bytecode_for_the_runtime(built_zip: Path) -> None:
    with zipfile.ZipFile(built_zip) as archive:
        names = set(archive.namelist())
        pycs = {name for name in names if name.endswith(".pyc")}
        assert pycs == {bytecode_of(name) for name in names if name.endswith(".py")}
        flags = {int.from_bytes(archive.read(name)[4:8], "little") for name in pycs}
    assert flags == {UNCHECKED_HASH_FLAGS}


@needs_python313
def test_python313_loads_the_bytecode_and_compiles_nothing(built_zip: Path, tmp_path: Path) -> None:
    """Run from the unpacked zip with bytecode writing off, as in /var/task: every module of the package and its
    dependencies comes from its .pyc (-v says "code object from" the file it read), none from source."""
    with zipfile.ZipFile(built_zip) as archive:
        archive.extractall(tmp_path)
    result = subprocess.run([python313(), "-v", "-c", "import reflekt_registry.handler, reflekt_registry.s3"],
                            cwd=tmp_path, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = [line.split("code object from ", 1)[1].strip("'") for line in result.stderr.splitlines()
              if "code object from" in line and str(tmp_path) in line]
    assert f"{tmp_path}/{bytecode_of(HANDLER_MODULE)}" in loaded
    assert f"{tmp_path}/{bytecode_of('urllib3/poolmanager.py')}" in loaded
    assert [path for path in loaded if not path.endswith(".pyc")] == []


def test_without_python313_the_zip_has_no_bytecode(tmp_path: Path) -> None:
    result = build(REPO, tmp_path / "plain.zip", LAMBDA_PYTHON=str(tmp_path / "no-such-python"))
    assert result.returncode == 0, result.stderr
    assert f"no python3.13 found at LAMBDA_PYTHON={tmp_path / 'no-such-python'}; the zip ships without bytecode" in result.stderr
    with zipfile.ZipFile(tmp_path / "plain.zip") as archive:
        names = archive.namelist()
    assert HANDLER_MODULE in names and not [name for name in names if name.endswith(".pyc")]


def test_an_unknown_architecture_fails_before_building(tmp_path: Path) -> None:
    result = build(REPO, tmp_path / "never.zip", "sparc")
    assert result.returncode == 2
    assert "arm64 or x86_64" in result.stderr
    assert not (tmp_path / "never.zip").exists()


# ---------------------------------------------------------------------------------------------------------------
# The zip in a Lambda-like Python: a clean venv with only boto3, the zip on sys.path first (as /var/task is),
# schemas in S3 (moto server) and Segment replaced by a loopback server.

# Runs inside the Lambda-like venv: imports the handler from the unpacked zip and invokes it once per event.
DRIVER = """
import json, sys

class Context:
    function_name = "reflekt-registry"
    aws_request_id = "smoke-test"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return 10_000

events_path, results_path = sys.argv[1:]
from reflekt_registry.handler import lambda_handler
import fastjsonschema, urllib3

responses = [lambda_handler(event, Context()) for event in json.load(open(events_path))]
modules = {module.__name__: module.__file__ for module in (fastjsonschema, urllib3)}
aws_sdk = sorted(name for name in sys.modules if name.split(".")[0] in ("boto3", "botocore"))
json.dump({"responses": responses, "modules": modules, "aws_sdk": aws_sdk}, open(results_path, "w"))
"""


@pytest.fixture(scope="module")
def lambda_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("lambda-venv")
    # The runtime's Python where there is one, so the zip's bytecode is what runs.
    subprocess.run([python313() or sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", RUNTIME_BOTO3],
                   check=True, timeout=BUILD_TIMEOUT_SECONDS)
    return python


def test_the_handler_runs_from_the_zip_next_to_only_boto3(
    built_zip: Path, lambda_python: Path, moto_url: str, segment: FakeSegment, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the zip unpacked as /var/task would be, and one schema in the bucket
    task = tmp_path / "task"
    with zipfile.ZipFile(built_zip) as archive:
        archive.extractall(task)
    create_bucket_with_schemas(boto3.client("s3", region_name="us-east-1"))
    events = [
        api_event(method="GET", path=f"/v1/projects/{CLIENT_KEY}/settings"),
        api_event({"batch": [track(test_property="hello", message_id="smoke-message-1")], "sentAt": "2026-11-26T18:00:01.000Z"}),
    ]
    (tmp_path / "events.json").write_text(json.dumps(events))
    # The environment Terraform gives the function, and nothing from this machine's AWS setup.
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(task),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_S3": moto_url,
        **lambda_env(segment.url),
    }

    # WHEN the Lambda-like Python invokes the handler with a settings fetch and a batch
    result = subprocess.run(
        [str(lambda_python), "-c", DRIVER, str(tmp_path / "events.json"), str(tmp_path / "results.json")],
        cwd=task, env=env, capture_output=True, text=True, timeout=60,
    )

    # THEN both succeed, the valid event reached the valid source, and the zip's own dependencies were used
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    settings, batch_response = results["responses"]
    assert settings["statusCode"] == 200, settings
    assert batch_response["statusCode"] == 200, batch_response
    assert json.loads(batch_response["body"]) == {"success": True}
    assert segment.message_ids(VALID_KEY) == ["smoke-message-1"]
    assert all(Path(path).is_relative_to(task) for path in results["modules"].values()), results["modules"]
    assert results["aws_sdk"] == []  # boto3 is there, as in the runtime, and left alone
