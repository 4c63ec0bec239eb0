"""Fixtures shared by the benchmarks, the quick mode CI uses, and the results table printed at the end of a run.

Quick mode (BENCH_QUICK=1, or pytest-benchmark's own --benchmark-disable) runs every benchmark body once, checks
what it returned, and times nothing: CI keeps the benchmarks from rotting without judging a shared runner's speed.
Under CI=true a skipped benchmark fails the run, as in the suite (tests/ci_skips.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import ci_skips
import workload
from reflekt_registry import log
from report import Results, render, update_readme
from services import MotoService, SegmentService

QUICK_ENV = "BENCH_QUICK"
RESULTS = pytest.StashKey[Results]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: pytest-benchmark reads the option when its own pytest_configure builds its session.
    if os.environ.get(QUICK_ENV, "").strip() not in ("", "0"):
        config.option.benchmark_disable = True
    ci_skips.install(config)


@pytest.fixture(scope="session")
def results(pytestconfig: pytest.Config) -> Results:
    quick = pytestconfig.getoption("benchmark_disable") and not pytestconfig.getoption("benchmark_enable")
    collected = pytestconfig.stash[RESULTS] = Results(quick=bool(quick))
    return collected


@pytest.fixture(scope="session")
def quick(results: Results) -> bool:
    return results.quick


@pytest.fixture(scope="session")
def segment() -> Iterator[SegmentService]:
    with SegmentService() as service:
        yield service


@pytest.fixture(scope="session")
def s3() -> Iterator[MotoService]:
    """A moto S3 server holding the example project's schemas, laid out as both registries expect."""
    with MotoService() as service:
        service.publish(workload.schema_documents())
        yield service


@pytest.fixture(scope="session", autouse=True)
def lambda_logging() -> Iterator[None]:
    """Logs as lambda_handler sets it up (JSON lines at INFO), into /dev/null instead of CloudWatch: the handler
    pays for formatting and writing a line per request, as it does in Lambda."""
    logger = log.configure(debug=False)
    with open(os.devnull, "w") as devnull:
        previous = [handler.setStream(devnull) for handler in logger.handlers]
        yield
        for handler, stream in zip(logger.handlers, previous):
            handler.setStream(stream)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, None)
    if results is None:
        return
    table = render(results)
    terminalreporter.write_sep("=", "reflekt-registry benchmark results")
    terminalreporter.write(table)
    if results.complete:
        where = "benchmarks/README.md updated" if update_readme(table) else "README markers missing: not updated"
        terminalreporter.write_line(where)
