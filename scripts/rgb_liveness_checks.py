#!/usr/bin/env python3
"""Run the RGB liveness layer --checks times on one face: a fixed workload to count.

Timings on a shared machine are noisy; instruction counts are not. Run this under
callgrind twice, with --checks 0 and --checks N, and divide the difference of the
two totals by N: the instructions of one check (both crops and both networks),
free of start-up and model loading.

  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg0 \\
      .venv/bin/python scripts/rgb_liveness_checks.py --checks 0
  valgrind --tool=callgrind --callgrind-out-file=/tmp/cg20 \\
      .venv/bin/python scripts/rgb_liveness_checks.py --checks 20
  callgrind_annotate /tmp/cg0 | grep 'PROGRAM TOTALS'   (and /tmp/cg20)

OMP_WAIT_POLICY=PASSIVE keeps idle OpenMP threads from spinning, which would
count instructions that do no work.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config import default_config  # noqa: E402
from edge.evaluation.demo_sequence import DEMO_PHOTOS  # noqa: E402
from edge.liveness.policy import rgb_layer  # noqa: E402
from edge.vision.images import read_image  # noqa: E402
from edge.vision.pipeline import Pipeline  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, required=True, help="how many checks to run")
    parser.add_argument("--threads", type=int, default=2, help="ncnn threads per network")
    parser.add_argument("--image", type=Path, default=DEMO_PHOTOS / "obama_1.jpg")
    args = parser.parse_args()
    config = default_config()
    config = dataclasses.replace(
        config, models=dataclasses.replace(config.models, threads=args.threads)
    )
    pipeline = Pipeline.from_config(config)
    rgb = rgb_layer(config.liveness, config.models)
    image = read_image(args.image)
    face = max(pipeline.detect(image), key=lambda f: f.width * f.height)
    rgb.score(image, face)  # first run: ncnn's one-time set-up, in both counts
    for _ in range(args.checks):
        rgb.score(image, face)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
