"""Printed-photo attacks as a near-infrared camera would see them (no public IR spoof exists).

Under NIR light, paper reflects strongly (more than skin), black carbon ink or toner
hardly at all, and the cyan, magenta and yellow inks of a colour print are almost
transparent. So a colour print shows only its black ink on bright paper, and a
black-and-white laser print shows the whole face as carbon dots. The print is
halftoned at ``cell`` camera pixels per screen cell (resolved dots when the camera
is close or the screen coarse; a smooth image once blur hides them), given paper
grain, lit so the paper reaches ``paper`` grey levels, blurred and noised like a
small camera.
"""

from __future__ import annotations

import cv2
import numpy as np

PAPER, INK = 0.85, 0.06  # NIR reflectance of office paper and of carbon black
SUPERSAMPLE = 4


def ink_coverage(source: np.ndarray, colour: bool) -> np.ndarray:
    """Black ink (or toner) coverage, 0..1, that a print of ``source`` (BGR) lays down."""
    rgb = source.astype(np.float32) / 255.0
    if colour:
        # Grey-component replacement: black ink only where all three inks would be heavy.
        return np.clip((1.0 - rgb.max(axis=2) - 0.2) / 0.8, 0.0, 1.0)
    return 1.0 - cv2.cvtColor(source, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0


def nir_print(
    source: np.ndarray, *, colour: bool, cell: float, blur: float, paper: float, seed: int = 0
) -> np.ndarray:
    """The NIR frame (BGR, grey) of a print of ``source`` held up before a dark room."""
    rng = np.random.default_rng(seed)
    h, w = source.shape[:2]
    coverage = cv2.resize(
        ink_coverage(source, colour),
        (w * SUPERSAMPLE, h * SUPERSAMPLE),
        interpolation=cv2.INTER_LINEAR,
    )
    # A 45-degree dot screen: a pixel is inked where coverage exceeds the screen.
    v, u = np.mgrid[0 : h * SUPERSAMPLE, 0 : w * SUPERSAMPLE].astype(np.float32)
    period = cell * SUPERSAMPLE
    a, b = (u + v) / np.sqrt(2), (u - v) / np.sqrt(2)
    screen = 0.5 - 0.25 * (np.cos(2 * np.pi * a / period) + np.cos(2 * np.pi * b / period))
    grain = 1.0 + 0.02 * cv2.GaussianBlur(
        rng.normal(0, 1, coverage.shape).astype(np.float32), (0, 0), SUPERSAMPLE
    )
    reflectance = np.where(coverage > screen, INK, PAPER * grain)
    camera = cv2.resize(reflectance, (w, h), interpolation=cv2.INTER_AREA)
    if blur > 0:
        camera = cv2.GaussianBlur(camera, (0, 0), blur)
    sheet = camera * (paper / PAPER) + rng.normal(0, 2.0, camera.shape)
    # The sheet with a margin, held before a dark room.
    margin = h // 8
    frame = np.full((h + 2 * margin, w + 2 * margin), 25.0, np.float32)
    frame[margin // 2 : -margin // 2, margin // 2 : -margin // 2] = paper
    frame[margin:-margin, margin:-margin] = sheet
    return cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def main() -> int:
    """Print what the NIR check (default settings) says about a grid of synthetic prints
    and about every real nir_dev face: ``python -m tests.liveness.synthetic_prints``."""
    import argparse
    from collections import Counter
    from pathlib import Path

    from edge.config import default_config
    from edge.evaluation.demo_sequence import DEMO_PHOTOS
    from edge.liveness.policy import LivenessChecker
    from edge.vision.pipeline import Pipeline

    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=repo.parent / "shared" / "data")
    args = parser.parse_args()
    config = default_config()
    pipeline = Pipeline.from_config(config)
    nir = LivenessChecker.from_config(
        config.liveness, config.models, pipeline.detector, ir_camera=True
    ).nir

    def verdict(image: np.ndarray) -> str:
        faces = pipeline.detect(image)
        if not faces:
            return "no face found"
        result = nir.check(image, max(faces, key=lambda f: f.width))
        return "passed" if result.passed else result.reason.split(" (")[0]

    real = Counter(
        verdict(cv2.imread(str(p))) for p in sorted((args.data / "nir_dev").glob("*.jpg"))
    )
    print(f"real nir_dev faces: {dict(real)}")
    photos = {p.name: cv2.imread(str(p)) for p in sorted(DEMO_PHOTOS.glob("*.jpg"))}
    nir_photos = {}
    for path in sorted((args.data / "nir_dev").glob("*-0-*.jpg"))[:3]:
        image = cv2.imread(str(path))
        x1, y1, x2, y2 = (int(v) for v in max(pipeline.detect(image), key=lambda f: f.width).bbox)
        pad = (x2 - x1) // 2
        nir_photos[path.name] = image[max(y1 - pad, 0) : y2 + pad, max(x1 - pad, 0) : x2 + pad]
    families = {
        "colour print of a colour photo": (photos, True),
        "laser print of a colour photo": (photos, False),
        "laser print of an NIR photo": (nir_photos, False),
    }
    for family, (sources, colour) in families.items():
        for cell, blur in ((1.5, 0.6), (1.5, 1.5), (3.0, 0.6), (3.0, 1.5), (6.0, 0.6), (6.0, 1.5)):
            seen = Counter(
                verdict(nir_print(src, colour=colour, cell=cell, blur=blur, paper=paper))
                for src in sources.values()
                for paper in (200.0, 255.0)
            )
            print(f"{family}, screen {cell:g} px, blur {blur:g} px: {dict(sorted(seen.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
