"""The package ships py.typed, which tells users' type checkers to trust its annotations: mypy
checks them with the settings in pyproject.toml ([tool.mypy]: every function annotated)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPOSITORY


def test_the_package_type_checks(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPOSITORY / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "no issues found" in completed.stdout
