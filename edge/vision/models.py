"""The model manifest: which ncnn files exist, their hashes, licences and I/O specs.

Everything a wrapper needs to know about a model (blob names, input size, colour
order, mean/norm, embedding size) comes from ``models_ncnn/manifest.json``, not from
code. Files are verified against their sha256 before ncnn sees them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..schema import setting

MANIFEST_NAME = "manifest.json"

# A manifest entry's own files are fp32; other precisions are entries under its
# "variants", made from those files (scripts/quantise_int8.py).
PRECISIONS = ("fp32", "int8")
BASE_PRECISION = "fp32"


def bundled_models_dir() -> Path:
    """``models_ncnn/`` beside the ``edge`` package (a checkout or editable install)."""
    return Path(__file__).resolve().parents[2] / "models_ncnn"


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = setting("", "folder holding manifest.json and the ncnn files; empty = bundled")
    threads: int = setting(
        0, "ncnn CPU threads of the embedder; 0 = one per CPU core", min=0, max=64
    )
    light_threads: int = setting(
        1,
        "ncnn CPU threads of the detector, face mesh and liveness networks, whose layers"
        " are too small to gain from more; 0 = one per CPU core",
        min=0,
        max=64,
    )

    def resolved_dir(self) -> Path:
        return Path(self.dir) if self.dir else bundled_models_dir()

    def resolved_threads(self) -> int:
        return _per_core(self.threads)

    def resolved_light_threads(self) -> int:
        return _per_core(self.light_threads)


def _per_core(threads: int) -> int:
    return threads or (os.cpu_count() or 1)


@dataclass(frozen=True)
class ModelSpec:
    """One model's manifest entry with its files resolved to paths."""

    model_id: str
    param_path: Path
    bin_path: Path
    param_sha256: str
    bin_sha256: str
    entry: dict
    precision: str = BASE_PRECISION

    @property
    def input(self) -> dict:
        return self.entry["input"]

    @property
    def outputs(self) -> dict:
        return self.entry["outputs"]

    def verify(self) -> None:
        """Raise ModelError unless both files exist with the manifest's sha256."""
        for path, expected in (
            (self.param_path, self.param_sha256),
            (self.bin_path, self.bin_sha256),
        ):
            if not path.is_file():
                raise ModelError(f"model file missing: {path} (expected sha256 {expected})")
            actual = sha256_file(path)
            if actual != expected:
                raise ModelError(
                    f"model file altered: {path}: expected sha256 {expected}, found {actual}"
                )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(models_dir: Path) -> dict[str, Any]:
    path = Path(models_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model manifest missing: {path}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest unreadable: {path}: {exc}") from None
    if not isinstance(manifest.get("models"), dict):
        raise ModelError(f"model manifest {path} has no 'models' table")
    return manifest


def model_spec(models_dir: Path, model_id: str, precision: str = BASE_PRECISION) -> ModelSpec:
    """The verified spec of ``model_id`` at ``precision``; raises ModelError naming what is
    wrong.

    A variant shares the model id of its fp32 entry: it computes the same embedding
    space, approximately, so templates stay comparable (tests/vision measure how closely).
    """
    models_dir = Path(models_dir)
    models = load_manifest(models_dir)["models"]
    if model_id not in models:
        known = ", ".join(sorted(models))
        raise ModelError(f"model {model_id!r} not in {models_dir / MANIFEST_NAME} (known: {known})")
    base = {k: v for k, v in models[model_id].items() if k != "variants"}
    variants = models[model_id].get("variants", {})
    if precision == BASE_PRECISION:
        entry = base
    elif precision in variants:
        entry = {**base, **variants[precision]}
    else:
        have = ", ".join([BASE_PRECISION, *sorted(variants)])
        raise ModelError(
            f"model {model_id!r} has no {precision!r} files in {models_dir / MANIFEST_NAME} "
            f"(it has: {have}); make them with scripts/quantise_int8.py or choose another precision"
        )
    spec = ModelSpec(
        model_id=model_id,
        param_path=models_dir / entry["param"]["file"],
        bin_path=models_dir / entry["bin"]["file"],
        param_sha256=entry["param"]["sha256"],
        bin_sha256=entry["bin"]["sha256"],
        entry=entry,
        precision=precision,
    )
    spec.verify()
    return spec


def update_manifest(models_dir: Path, entries: dict[str, dict]) -> None:
    """Write ``entries`` into the manifest, keeping every other model's entry.

    Each conversion or training script owns only its own models, so none of them
    may rewrite the file from scratch. The write is atomic: a crash leaves the old
    manifest, never half a new one.
    """
    path = Path(models_dir) / MANIFEST_NAME
    manifest: dict[str, Any] = (
        load_manifest(models_dir) if path.exists() else {"format": 1, "models": {}}
    )
    if manifest.get("format") != 1:
        raise ModelError(
            f"{path}: manifest format {manifest.get('format')!r} is not 1; refusing to rewrite it"
        )
    models = {**manifest["models"], **entries}
    manifest["models"] = dict(sorted(models.items()))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
