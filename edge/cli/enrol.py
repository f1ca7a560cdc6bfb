"""``facegate enrol --name NAME IMAGE...``: enrol a person from photo files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ExitCode
from ..gallery.enrolment import capture_from_images, enrol_photos
from ..gallery.store import ROLES, Gallery, normalise_name
from .common import add_config_argument, config_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "enrol",
        aliases=["enroll"],  # the spelling it had before
        help="enrol a person from photos of their face",
    )
    parser.add_argument("--name", required=True, help="the person's name (not only digits)")
    parser.add_argument(
        "--role",
        choices=ROLES,
        default="user",
        help="admins may authorise on-device enrolment (default: user)",
    )
    parser.add_argument(
        "--force", action="store_true", help="enrol even if the face already matches someone else"
    )
    parser.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="photos with exactly one face each"
    )
    add_config_argument(parser)
    parser.set_defaults(func=cmd_enrol)


def cmd_enrol(args: argparse.Namespace) -> int:
    from ..vision.pipeline import Pipeline  # loads the models: only this command needs them

    config = config_from_args(args)
    name = normalise_name(args.name)  # refused before any photo is read
    pipeline = Pipeline.from_config(config)
    verdicts = capture_from_images(pipeline, args.images, config.enrolment.max_photo_pixels)
    for verdict in verdicts:
        print(f"{verdict.path}: {verdict.verdict}")
    with Gallery.from_config(config.gallery) as gallery:
        person_id, templates = enrol_photos(
            gallery, verdicts, name, args.role, config.enrolment, config.matcher, args.force
        )
    usable = sum(v.ok for v in verdicts)
    print(
        f"enrolled {name} as #{person_id} with {len(templates.embeddings)} "
        f"templates from {usable} usable photos ({templates.rejected} dropped as outliers)"
    )
    return ExitCode.OK
