""".ci/run runs the README's test command verbatim and turns pytest's exit code 5 into a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI_RUN = ROOT / ".ci" / "run"


def readme_test_command(readme: str) -> str:
    """The first fenced block after the test-command marker, as a user copies it."""
    after = readme.split("<!-- test-command -->", 1)[1]
    return re.search(r"```[a-z]*\n(.*?)\n```", after, re.S).group(1)


def run_ci(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(cwd / ".ci" / "run"), *args], capture_output=True, text=True, timeout=60
    )


def test_ci_run_is_an_executable_strict_bash_script():
    assert os.access(CI_RUN, os.X_OK)
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text


def test_ci_runs_exactly_the_readme_test_command():
    command = readme_test_command((ROOT / "README.md").read_text())
    result = run_ci("--print-command")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == command
    assert "pytest" in command and "pip install -e '.[dev]'" in command


@pytest.mark.parametrize(("exit_code", "message"), [(0, "passed"), (1, "FAILED"), (5, "no tests")])
def test_ci_passes_on_the_commands_exit_code(tmp_path, exit_code, message):
    # A stand-in checkout whose README's "test command" exits with a chosen code.
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI_RUN, tmp_path / ".ci" / "run")
    readme = f"# x\n\n<!-- test-command -->\n```bash\necho ran && exit {exit_code}\n```\n"
    (tmp_path / "README.md").write_text(readme)
    result = run_ci(cwd=tmp_path)
    assert result.returncode == exit_code
    assert "ran" in result.stdout
    assert message in result.stdout + result.stderr


def test_ci_fails_without_a_test_command(tmp_path):
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI_RUN, tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text("# no command here\n")
    result = run_ci(cwd=tmp_path)
    assert result.returncode == 2
    assert "no test command" in result.stderr
