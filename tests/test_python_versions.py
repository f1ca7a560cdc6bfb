"""facegate runs on Python 3.10 (JetPack 6) and later. No 3.10 interpreter can be
installed here, so vermin checks the source statically for what 3.10 lacks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VERMIN = Path(sys.executable).parent / "vermin"  # requirements-dev.txt installs it


def test_the_package_declares_python_3_10():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^requires-python = ">=3\.10"$', text, re.M)
    assert "tomli>=1.1; python_version < '3.11'" in text  # tomllib is 3.11+


@pytest.mark.skipif(not VERMIN.exists(), reason="vermin not installed beside this Python")
def test_nothing_needs_more_than_python_3_10():
    result = subprocess.run(
        [
            str(VERMIN),
            "--target=3.10-",
            "--no-tips",
            "--violations",
            "--eval-annotations",
            "edge",
            "scripts",
            "tests",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
