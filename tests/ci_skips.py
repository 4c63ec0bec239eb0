"""Under CI (CI=true), a skipped test fails the run and is named, unless tests/ci-allowed-skips.txt lists it with a reason.

A skip says a tool is missing on this machine; locally that is a fact to report, in CI it is a test that silently
stopped running. The suite (tests/conftest.py) and the benchmarks (benchmarks/conftest.py) both install the guard.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).resolve().with_name("ci-allowed-skips.txt")
# Between a node id and its reason; node ids hold "::" and parameters, so a plain colon or space cannot separate.
SEPARATOR = " -- "
PLUGIN_NAME = "ci-skip-guard"
# What CI services set; GitHub, GitLab and most others say "true".
CI_VALUES = frozenset({"true", "1", "yes"})


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in CI_VALUES


def read_allowlist(path: Path) -> dict[str, str]:
    """Node id -> why CI may skip it. Blank lines and # comments are ignored; an entry without a reason is an error."""
    allowed: dict[str, str] = {}
    name = path.name
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        node_id, _, reason = (part.strip() for part in line.partition(SEPARATOR))
        if not reason:
            raise pytest.UsageError(f"{name}, line {number}: '{line.strip()}' needs a reason: <node id>{SEPARATOR}<why>")
        if node_id in allowed:
            raise pytest.UsageError(f"{name}, line {number}: {node_id} is listed twice")
        allowed[node_id] = reason
    return allowed


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


class SkipGuard:
    """Collects the skips the allowlist does not name; under CI they fail the session."""

    def __init__(self, allowlist: Path, enforce: bool, root: Path):
        self.allowlist = allowlist
        self.allowed = read_allowlist(allowlist)
        self.enforce = enforce
        # The file as the reader finds it from the repository (absolute when it lies elsewhere).
        self.shown = allowlist.relative_to(root) if allowlist.is_relative_to(root) else allowlist
        self.unexpected: dict[str, str] = {}

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)  # a module skipped as a whole

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        # An expected failure is reported as skipped too, but it ran.
        if report.skipped and not hasattr(report, "wasxfail") and report.nodeid not in self.allowed:
            self.unexpected[report.nodeid] = skip_reason(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.enforce and self.unexpected and session.exitstatus in (pytest.ExitCode.OK,
                                                                        pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.unexpected:
            return
        count = len(self.unexpected)
        if not self.enforce:
            terminalreporter.write_line(f"{count} skipped test(s) would fail this run under CI=true "
                                        "(README, Development, says what each tool needs)", yellow=True)
            return
        terminalreporter.write_sep("=", f"CI: {count} test(s) skipped that {self.allowlist.name} does not allow",
                                   red=True)
        for node_id, reason in sorted(self.unexpected.items()):
            terminalreporter.write_line(f"{node_id}: {reason}", red=True)
        terminalreporter.write_line(f"Install what they need, or list each in {self.shown} with its reason. "
                                    "This run fails.", red=True)


def install(config: pytest.Config, allowlist: Path = ALLOWLIST) -> None:
    """Registers the guard once per session, whichever conftests asked for it."""
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(SkipGuard(allowlist, under_ci(), config.rootpath), PLUGIN_NAME)
