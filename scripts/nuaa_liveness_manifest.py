#!/usr/bin/env python3
"""Write `facegate eval liveness` manifests for held-out NUAA subjects.

Two manifests come out in --out:

* ``frames.tsv``: every frame of the held-out subjects as its own presentation
  (the passive RGB layer alone, one frame at a time);
* ``sequences.tsv``: each recorded sequence cut into runs of --run frames, each run
  one presentation written as a .txt frame list (what the daemon sees over a
  decision window, so the temporal cues apply).

The default subjects are the ones scripts/train_liveness.py holds out, so neither
manifest contains a face the model was trained on.

Usage: python scripts/nuaa_liveness_manifest.py --data ../shared/data/nuaa_train --out /tmp/nuaa
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.liveness.evaluate import COLUMNS  # noqa: E402

HEADER = "\t".join(COLUMNS) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the nuaa_train folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the manifests")
    parser.add_argument("--subjects", default="0007,0008,0009", help="comma-separated subjects")
    parser.add_argument("--run", type=int, default=10, help="frames per sequence presentation")
    args = parser.parse_args()

    subjects = set(args.subjects.split(","))
    table = args.data / "sequences.tsv"
    if not table.is_file():
        sys.exit(f"{table}: not found (is --data the nuaa_train folder?)")
    args.out.mkdir(parents=True, exist_ok=True)
    runs_dir = args.out / "runs"
    runs_dir.mkdir(exist_ok=True)
    data = os.path.relpath(args.data.resolve(), args.out.resolve())
    frames_rows, run_rows = [], []
    for line in table.read_text().splitlines()[1:]:
        label, subject, glasses, pos, session, _, frames = line.split("\t")
        if subject not in subjects:
            continue
        live = label == "live"
        tag = ("live", "none") if live else ("spoof", "print")
        paths = frames.split()
        frames_rows += [f"{tag[0]}\t{tag[1]}\t{data}/{p}\n" for p in paths]
        name = f"{label}_{subject}_{glasses}_{pos}_{session}"
        for i in range(0, len(paths) - args.run + 1, args.run):
            run_file = runs_dir / f"{name}_{i:03d}.txt"
            rel_data = os.path.relpath(args.data.resolve(), runs_dir.resolve())
            run_file.write_text("".join(f"{rel_data}/{p}\n" for p in paths[i:i + args.run]))
            run_rows.append(f"{tag[0]}\t{tag[1]}\truns/{run_file.name}\n")
    (args.out / "frames.tsv").write_text(HEADER + "".join(frames_rows))
    (args.out / "sequences.tsv").write_text(HEADER + "".join(run_rows))
    print(f"{len(frames_rows)} frames and {len(run_rows)} runs of {args.run} frames "
          f"of subjects {','.join(sorted(subjects))} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
