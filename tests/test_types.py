"""The typed public surface passes mypy (the files listed under [tool.mypy] in
pyproject.toml), and the package says it is typed (PEP 561)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_py_typed_marker_ships():
    assert (REPO / "kerabert" / "py.typed").is_file()
    assert '"py.typed"' in (REPO / "pyproject.toml").read_text()


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy not installed (pip install -e '.[dev]')")
@pytest.mark.slow
def test_mypy_passes_on_the_public_modules():
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout
