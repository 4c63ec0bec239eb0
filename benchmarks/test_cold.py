"""Cold latency: fresh interpreters, from process start to the first response, and the handler module's import.

The clock runs in this process: it starts just before the child is spawned and stops when the child's result
line arrives, written right after its first response. So it covers fork/exec, interpreter start-up, imports,
module scope and the first request, but not interpreter shutdown (nobody waits for that in Lambda). Import times
are measured inside the child, around the import alone, so interpreter start-up does not dilute the ratio.

These are not pytest-benchmark rounds: pytest-benchmark runs one benchmark's rounds back to back, and on this
shared machine the load drifts between two such series (in one trial the original's series met enough extra load
that its bare interpreter start-up took 7x the registry's). Taking turns, one fresh process of each at a time,
keeps that drift out of the ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import workload
from child import RESULT_MARKER
from helpers import CLIENT_KEY, INVALID_KEY, VALID_KEY
from report import (COLD_ORIGINAL, COLD_REGISTRY, FRESH_TIMINGS, IMPORT_DEPS, IMPORT_EXTRAS_SHOWN, IMPORT_HANDLER,
                    S3_ROUND_TRIP_SECONDS, TLS_ORIGINAL, TLS_REGISTRY, ZIP_WITH_BYTECODE, ZIP_WITHOUT_BYTECODE, Results)
from runtime_python import python313
from services import BUCKET, REPO, MotoService, ProxyService, SegmentService, clean_env
from tls_support import trust_bundle

CHILD = Path(__file__).resolve().parent / "child.py"
# Fresh processes take 0.3-1 s each here: enough rounds for a steady median inside the time budget (odd, so the
# median is a measured run).
COLD_ROUNDS = 9
IMPORT_REPETITIONS = 11
# The first fresh process after a code change compiles .pyc files; an untimed round before the timed ones absorbs it.
WARMUP_ROUNDS = 1
# A child that has not answered in this long is broken, not slow.
CHILD_TIMEOUT_SECONDS = 60
STACK_MODES = {COLD_REGISTRY: "registry", COLD_ORIGINAL: "original"}
# What child.py reports of a first response, and the rest of the wall time (spawn, interpreter start-up).
COLD_PARTS = ("import_s", "handle_s", "rest_s")


class FreshProcesses:
    """Runs child.py in fresh interpreters (this one's Python unless told); each run returns once the child
    reports, and is reaped later."""

    def __init__(self, env: dict[str, str], python: str = sys.executable):
        self.env = env
        self.python = python
        self._running: list[tuple[subprocess.Popen, Any]] = []

    def run(self, *arguments: str) -> dict[str, Any]:
        """The child's result, plus wall_s: seconds from just before the spawn to reading the result line."""
        log = tempfile.TemporaryFile()
        started = time.perf_counter()
        process = subprocess.Popen([self.python, str(CHILD), *arguments], stdout=subprocess.PIPE, stderr=log,
                                   env=self.env, text=True)
        self._running.append((process, log))
        assert process.stdout is not None
        for line in process.stdout:  # the registry logs JSON lines to stdout, as in Lambda, before the result
            if line.startswith(RESULT_MARKER):
                wall_s = time.perf_counter() - started
                result = json.loads(line[len(RESULT_MARKER):])
                if "import_s" in result:  # a first response: what its parts leave is spawn and interpreter start-up
                    result["rest_s"] = wall_s - result["import_s"] - result["handle_s"]
                return {**result, "wall_s": wall_s}
        process.wait(CHILD_TIMEOUT_SECONDS)
        log.seek(0)
        raise RuntimeError(f"child.py {' '.join(arguments)} exited {process.returncode} without a result:\n"
                           + log.read().decode(errors="replace")[-3000:])

    def reap(self) -> None:
        """Waits for the children to exit, so one's shutdown does not compete with the next one's start."""
        for process, log in self._running:
            if process.stdout:
                process.stdout.close()
            process.wait(CHILD_TIMEOUT_SECONDS)
            log.close()
        self._running.clear()


@pytest.fixture(scope="module")
def fresh(s3: MotoService, segment: SegmentService) -> Iterator[FreshProcesses]:
    """Children configured as the Lambda is, but with S3 at moto and Segment at the fake, both on loopback."""
    env = clean_env(
        PYTHONPATH=str(REPO / "function"),
        AWS_ENDPOINT_URL_S3=s3.url,
        REGISTRY_BUCKET=BUCKET,
        REGISTRY_WRITE_KEYS=CLIENT_KEY,
        VALID_SEGMENT_WRITE_KEY=VALID_KEY,
        INVALID_SEGMENT_WRITE_KEY=INVALID_KEY,
        SEGMENT_API_HOST=segment.url,
    )
    processes = FreshProcesses(env)
    yield processes
    processes.reap()


@pytest.fixture(scope="module")
def request_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cold") / "request.json"
    path.write_text(json.dumps(workload.request(workload.COLD_EVENTS, workload.COLD_SCHEMAS)))
    return str(path)


def test_first_response(fresh: FreshProcesses, request_path: str, segment: SegmentService, results: Results,
                        quick: bool) -> None:
    take_turns({stack: (fresh, STACK_MODES[stack]) for stack in STACK_MODES}, request_path, segment, results, quick)


@pytest.fixture(scope="module")
def over_tls(fresh: FreshProcesses, s3: MotoService, segment: SegmentService,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshProcesses]:
    """Children that reach S3 and Segment as the Lambda does: over TLS, trusting the system's CA certificates (and
    the proxies'), with every S3 request a round trip away. Segment answers at once, as elsewhere."""
    directory = tmp_path_factory.mktemp("tls")
    bundle = trust_bundle(directory)
    # boto3 would address the bucket as a subdomain of localhost, which neither resolves nor matches the certificate.
    aws_config = directory / "aws-config"
    aws_config.write_text("[default]\ns3 =\n    addressing_style = path\n")
    with ProxyService(s3.url, S3_ROUND_TRIP_SECONDS) as s3_front, ProxyService(segment.url, 0) as segment_front:
        processes = FreshProcesses({**fresh.env, "AWS_ENDPOINT_URL_S3": s3_front.url, "SEGMENT_API_HOST": segment_front.url,
                                    "SSL_CERT_FILE": str(bundle), "AWS_CA_BUNDLE": str(bundle),
                                    "AWS_CONFIG_FILE": str(aws_config)})
        yield processes
        processes.reap()


def test_first_response_over_tls(over_tls: FreshProcesses, request_path: str, segment: SegmentService,
                                 results: Results, quick: bool) -> None:
    """Where the registry's cold path meets what the loopback run leaves out: a TLS context and handshake per
    connection, and a round trip per S3 request (the registry fetches a batch's schemas at once)."""
    take_turns({TLS_REGISTRY: (over_tls, "registry"), TLS_ORIGINAL: (over_tls, "original")}, request_path, segment,
               results, quick)


def take_turns(stacks: dict[str, tuple[FreshProcesses, str]], request_path: str, segment: SegmentService,
               results: Results, quick: bool) -> None:
    """First responses of fresh processes, the stacks taking turns (ABBA) so load drifting on the shared machine
    weighs on all alike; records each stack's wall time, its parts and its peak memory."""
    runs: dict[str, list[dict[str, Any]]] = {stack: [] for stack in stacks}
    segment.reset()
    rounds = 1 if quick else WARMUP_ROUNDS + COLD_ROUNDS
    for round_ in range(rounds):
        order = list(stacks) if round_ % 2 == 0 else list(reversed(stacks))
        for stack in order:
            processes, mode = stacks[stack]
            outcome = processes.run(mode, request_path)
            processes.reap()
            if quick or round_ >= WARMUP_ROUNDS:
                runs[stack].append(outcome)

    for stack, outcomes in runs.items():
        assert [outcome["status"] for outcome in outcomes] == [200] * len(outcomes), stack
        results.record_samples(stack, [outcome["wall_s"] for outcome in outcomes])
        results.record_breakdown(stack, {part: [outcome[part] for outcome in outcomes] for part in COLD_PARTS})
        results.record_peak_memory(stack, [outcome["peak_kib"] for outcome in outcomes])
    assert sum(segment.events_by_key().values()) == workload.COLD_EVENTS * rounds * len(stacks)
    segment.reset()


def test_import_time(fresh: FreshProcesses, results: Results, quick: bool) -> None:
    """Interleaved, so a burst of load on the shared machine hits every figure alike."""
    samples: dict[str, list[float]] = {name: [] for name in FRESH_TIMINGS}
    for _ in range(1 if quick else IMPORT_REPETITIONS):
        for name, arguments in FRESH_TIMINGS.items():
            samples[name].append(fresh.run(*arguments)["seconds"])
            fresh.reap()
    for name, seconds in samples.items():
        results.record_samples(name, seconds)


def test_heaviest_extra_imports(fresh: FreshProcesses, results: Results) -> None:
    """Names what makes importing the handler dearer than importing its two dependencies."""
    dependencies, handler = FRESH_TIMINGS[IMPORT_DEPS][1:], FRESH_TIMINGS[IMPORT_HANDLER][1:]
    completed = subprocess.run([sys.executable, "-X", "importtime", str(CHILD), "import", *dependencies, *handler],
                               env=fresh.env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results.import_extras = imported_after(completed.stderr, dependencies[-1])[:IMPORT_EXTRAS_SHOWN]


def imported_after(importtime: str, last_module: str) -> list[tuple[str, float]]:
    """(module, self seconds), heaviest first, of what -X importtime lists after `last_module`'s top-level line."""
    rows = [line.split("|") for line in importtime.splitlines() if line.startswith("import time:") and "[us]" not in line]
    top_level = [index for index, row in enumerate(rows) if row[2] == f" {last_module}"]
    assert top_level, f"{last_module} is not in the -X importtime output"
    extras = [(row[2].strip(), int(row[0].split(":")[1]) / 1e6) for row in rows[top_level[0] + 1:]]
    return sorted(extras, key=lambda extra: extra[1], reverse=True)


@pytest.fixture(scope="module")
def unpacked_zip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The zip build.sh makes, unpacked twice as /var/task would hold it: as built, and with its bytecode removed."""
    from test_package import ZIP, build

    outcome = build()
    assert outcome.size is not None, f"the zip was not built: {outcome.note}"
    tasks = {}
    for variant in (ZIP_WITH_BYTECODE, ZIP_WITHOUT_BYTECODE):
        task = tasks[variant] = tmp_path_factory.mktemp(variant.replace(" ", "-"))
        with zipfile.ZipFile(ZIP) as archive:
            archive.extractall(task)
    bytecode = list(tasks[ZIP_WITHOUT_BYTECODE].rglob("*.pyc"))
    assert bytecode, "the zip holds no bytecode (build.sh found no python3.13?)"
    for path in bytecode:
        path.unlink()
    return tasks


def test_first_response_from_the_zip_under_python313(fresh: FreshProcesses, unpacked_zip: dict[str, Path],
                                                     request_path: str, segment: SegmentService, results: Results,
                                                     quick: bool) -> None:
    """The Lambda's case: its runtime's Python, the zip's contents alone on the path, and no bytecode written
    (/var/task is read-only): with the shipped bytecode, and without it (every module compiled at import)."""
    python = python313()
    if python is None:
        pytest.skip("no python3.13 on PATH or in pyenv: the runtime's Python is needed to load the zip's bytecode")
    stacks = {variant: (FreshProcesses({**fresh.env, "PYTHONPATH": str(task), "PYTHONDONTWRITEBYTECODE": "1"}, python),
                        "registry")
              for variant, task in unpacked_zip.items()}
    take_turns(stacks, request_path, segment, results, quick)
