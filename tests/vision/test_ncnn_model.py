import os
import re
import subprocess
import sys

from tests.helpers import REPO


def openmp_settings(code: str, **env) -> dict[str, str]:
    """The settings GNU libgomp (bundled with ncnn) starts with in a fresh interpreter
    running ``code``, as its OMP_DISPLAY_ENV report gives them."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env, "OMP_DISPLAY_ENV": "VERBOSE"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(re.findall(r"^\s+(\w+) = '([^']*)'", done.stderr, re.M))


def test_ncnn_threads_sleep_rather_than_spin_when_facegate_loads_ncnn():
    assert openmp_settings("import ncnn")["GOMP_SPINCOUNT"] == "300000"  # libgomp's default
    assert openmp_settings("import edge.vision.ncnn_model, ncnn")["GOMP_SPINCOUNT"] == "0"


def test_a_wait_policy_or_spin_count_set_by_the_operator_is_kept():
    spins = openmp_settings("import edge.vision.ncnn_model, ncnn", OMP_WAIT_POLICY="ACTIVE")
    assert int(spins["GOMP_SPINCOUNT"]) > 300000
    spins = openmp_settings("import edge.vision.ncnn_model, ncnn", GOMP_SPINCOUNT="1000")
    assert spins["GOMP_SPINCOUNT"] == "1000"
