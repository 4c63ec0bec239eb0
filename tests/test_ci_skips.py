"""The CI skip guard, run as CI runs it: pytest in a child process on a small suite, with and without CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ci_skips import read_allowlist, under_ci

TESTS = Path(__file__).resolve().parent
PYTEST_TIMEOUT_SECONDS = 120
SUITE = {
    "conftest.py": """
        from pathlib import Path

        import ci_skips


        def pytest_configure(config):
            ci_skips.install(config, Path(__file__).with_name("allowed.txt"))
        """,
    "test_tools.py": """
        import pytest


        def test_runs():
            pass


        def test_needs_a_tool():
            pytest.skip("the tool is missing")


        @pytest.mark.skipif(True, reason="chromium is missing")
        def test_needs_a_browser():
            pass


        @pytest.mark.xfail(reason="known bug", strict=True)
        def test_known_bug():
            assert False
        """,
    "test_skipped_module.py": """
        import pytest

        pytest.skip("node is missing", allow_module_level=True)
        """,
}


def run_suite(tmp_path: Path, allowed: str = "", ci: str | None = "true") -> subprocess.CompletedProcess[str]:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "allowed.txt").write_text(allowed)
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(TESTS)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=PYTEST_TIMEOUT_SECONDS)


def test_under_ci_an_unlisted_skip_fails_the_run_and_is_named(tmp_path):
    result = run_suite(tmp_path)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "CI: 3 test(s) skipped that allowed.txt does not allow" in result.stdout
    assert "test_tools.py::test_needs_a_tool: the tool is missing" in result.stdout
    assert "test_tools.py::test_needs_a_browser: chromium is missing" in result.stdout
    assert "test_skipped_module.py: node is missing" in result.stdout
    assert "test_known_bug" not in result.stdout.partition("CI: ")[2]  # an expected failure ran: not a skip


def test_under_ci_only_listed_skips_pass(tmp_path):
    allowed = textwrap.dedent("""\
        # comments and blank lines are ignored

        test_tools.py::test_needs_a_tool -- the tool has no Debian package
        test_tools.py::test_needs_a_browser -- covered elsewhere
        """)
    result = run_suite(tmp_path, allowed)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "CI: 1 test(s) skipped" in result.stdout
    assert "test_skipped_module.py: node is missing" in result.stdout
    result = run_suite(tmp_path, allowed + "test_skipped_module.py -- no node here\n")
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
    assert "CI:" not in result.stdout


@pytest.mark.parametrize("ci", [None, "", "false"], ids=["unset", "empty", "false"])
def test_outside_ci_skips_pass_with_a_note(tmp_path, ci):
    result = run_suite(tmp_path, ci=ci)
    assert result.returncode == pytest.ExitCode.OK, result.stdout + result.stderr
    assert "3 skipped test(s) would fail this run under CI=true" in result.stdout


def test_an_entry_without_a_reason_stops_the_run_naming_its_line(tmp_path):
    result = run_suite(tmp_path, "# header\ntest_tools.py::test_needs_a_tool\n")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "allowed.txt, line 2: 'test_tools.py::test_needs_a_tool' needs a reason" in result.stderr


def test_an_entry_listed_twice_is_an_error(tmp_path):
    path = tmp_path / "allowed.txt"
    path.write_text("a.py::t -- one\na.py::t -- two\n")
    with pytest.raises(pytest.UsageError, match="line 2: a.py::t is listed twice"):
        read_allowlist(path)


@pytest.mark.parametrize(("value", "ci"), [("true", True), ("True", True), ("1", True), ("", False), ("0", False),
                                            ("false", False)])
def test_ci_is_recognised_as_ci_services_set_it(value, ci):
    assert under_ci({"CI": value}) is ci
