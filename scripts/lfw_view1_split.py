#!/usr/bin/env python3
"""Lay out LFW View 1's two disjoint sets of people as `facegate eval identify` folders.

View 1's DevTrain and DevTest pair lists name different people (2,132 and 963).
This writes --out/devtrain and --out/devtest, each with one symbolic link per
person to their folder of photos, so that a threshold can be chosen on DevTrain's
people and measured on DevTest's, which the choice never saw.

Usage: python scripts/lfw_view1_split.py --data ../shared/data/lfw_view1 --out /tmp/v1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.evaluation.pairs import read_pairs  # noqa: E402

SPLITS = {"devtrain": "pairsDevTrain.txt", "devtest": "pairsDevTest.txt"}


def people(pairs_file: Path) -> set[str]:
    """Everyone a pair list names (the folder part of each image path)."""
    return {
        Path(path).parent.name
        for pair in read_pairs(pairs_file)
        for path in (pair.first, pair.second)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the lfw_view1 folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the splits in")
    args = parser.parse_args()

    names = {split: people(args.data / pairs) for split, pairs in SPLITS.items()}
    if names["devtrain"] & names["devtest"]:
        sys.exit("DevTrain and DevTest share people: not LFW View 1's pair lists")
    for split, members in names.items():
        folder = args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(members):
            source = (args.data / "images" / name).resolve()
            if not source.is_dir():
                sys.exit(f"{source}: no such folder")
            link = folder / name
            if not link.is_symlink():
                link.symlink_to(source, target_is_directory=True)
        print(f"{folder}: {len(members)} people")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
