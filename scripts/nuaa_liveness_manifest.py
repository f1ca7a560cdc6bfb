#!/usr/bin/env python3
"""Write `facegate eval liveness` (and `liveness calibrate`) manifests from NUAA.

Two manifests come out in --out:

* ``frames.tsv``: every chosen frame as its own presentation (the passive RGB
  layer alone, one frame at a time);
* ``sequences.tsv``: each recorded sequence cut into runs of --run frames, each run
  one presentation written as a .txt frame list (what the daemon sees over a
  decision window, so the temporal cues apply, and what a calibration holds back
  whole).

NUAA's train split was recorded in two sessions (the fourth field of every file
name). Anything fitted on NUAA must be judged on the other session: a split of
one session measures the session, not liveness. --session picks one.

Usage: python scripts/nuaa_liveness_manifest.py --data ../shared/data/nuaa_train
           --out /tmp/nuaa-02 --session 02
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.evaluation.liveness import COLUMNS  # noqa: E402

HEADER = "\t".join(COLUMNS) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the nuaa_train folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the manifests")
    parser.add_argument("--session", choices=("01", "02"), help="one session (default: both)")
    parser.add_argument("--subjects", help="comma-separated subjects (default: all)")
    parser.add_argument("--run", type=int, default=10, help="frames per sequence presentation")
    args = parser.parse_args()

    subjects = set(args.subjects.split(",")) if args.subjects else None
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
        if (subjects is not None and subject not in subjects) or (
            args.session is not None and session != args.session
        ):
            continue
        live = label == "live"
        tag = ("live", "none") if live else ("spoof", "print")
        paths = frames.split()
        frames_rows += [f"{tag[0]}\t{tag[1]}\t{data}/{p}\n" for p in paths]
        name = f"{label}_{subject}_{glasses}_{pos}_{session}"
        for i in range(0, len(paths) - args.run + 1, args.run):
            run_file = runs_dir / f"{name}_{i:03d}.txt"
            rel_data = os.path.relpath(args.data.resolve(), runs_dir.resolve())
            run_file.write_text("".join(f"{rel_data}/{p}\n" for p in paths[i : i + args.run]))
            run_rows.append(f"{tag[0]}\t{tag[1]}\truns/{run_file.name}\n")
    (args.out / "frames.tsv").write_text(HEADER + "".join(frames_rows))
    (args.out / "sequences.tsv").write_text(HEADER + "".join(run_rows))
    chosen = ",".join(sorted(subjects)) if subjects else "all"
    print(
        f"{len(frames_rows)} frames and {len(run_rows)} runs of {args.run} frames of session "
        f"{args.session or '01 and 02'}, subjects {chosen}, in {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
