"""Running the pnnx converter, shared by the scripts that produce models_ncnn/.

Only the binary inside the pnnx wheel is used: importing the pnnx package would
import torch, and ``pip install --no-deps pnnx`` is enough for the binary.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path


def pnnx_binary() -> Path:
    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pnnx is not installed: pip install --no-deps pnnx")
    exe = Path(list(spec.submodule_search_locations)[0]) / "pnnx"
    if not exe.is_file():
        sys.exit(f"pnnx binary not found at {exe}")
    return exe


def pnnx(model: Path, *options: str) -> tuple[Path, Path]:
    """Convert ``model`` (ONNX or TorchScript) to ncnn fp32 beside it; returns param and bin."""
    done = subprocess.run(
        [str(pnnx_binary()), model.name, *options, "fp16=0"],
        cwd=model.parent,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"pnnx failed on {model.name}:\n{done.stdout}{done.stderr}")
    return model.with_name(f"{model.stem}.ncnn.param"), model.with_name(f"{model.stem}.ncnn.bin")
