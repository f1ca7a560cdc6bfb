"""``facegate liveness capture|calibrate|status``: teach the RGB liveness layer its own door.

``capture`` records presentations at the door's camera into a folder with a
manifest (the format ``facegate eval liveness`` reads); ``calibrate`` fits a head on
a manifest's captures and stores it, with its report, in the gallery; ``status``
says which layer is in use. The service holds the camera while it runs: stop it
before capturing, and restart it after calibrating so that it loads the result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2

from ..clock import SystemClock
from ..errors import ExitCode, FacegateError
from ..evaluation.liveness import COLUMNS, collect_outputs, presenter, read_manifest
from ..gallery.reports import format_time
from ..liveness.calibration import Head, calibrate
from .common import add_config_argument, config_from_args, print_json, progress
from .gallery import open_gallery

MANIFEST = "manifest.tsv"


def register(subparsers) -> None:
    liveness = subparsers.add_parser("liveness", help="capture, calibrate and inspect liveness")
    actions = liveness.add_subparsers(dest="liveness_action", metavar="ACTION")
    actions.required = True

    capture = actions.add_parser(
        "capture", help="record one presentation at the door's camera into a capture folder"
    )
    capture.add_argument(
        "--out",
        required=True,
        type=Path,
        help="capture folder; its manifest.tsv gains one row per capture",
    )
    capture.add_argument(
        "--label",
        required=True,
        choices=("live", "spoof"),
        help="live: a person presenting normally; spoof: an attack held up",
    )
    capture.add_argument(
        "--attack", default="none", help="attack type for --label spoof, such as print or replay"
    )
    capture.add_argument("--seconds", type=float, default=5.0, help="how long to record")
    add_config_argument(capture)
    capture.set_defaults(func=cmd_capture)

    calibrate_cmd = actions.add_parser(
        "calibrate", help="fit the RGB layer to this door's captures, or --revert to the default"
    )
    source = calibrate_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="TSV with header 'label attack path'")
    source.add_argument("--revert", action="store_true", help="use the default layer again")
    calibrate_cmd.add_argument(
        "--held-back",
        type=float,
        default=0.3,
        help="share of each kind of presentation kept back to judge the fit (default 0.3)",
    )
    calibrate_cmd.add_argument(
        "--bpcer",
        type=float,
        default=0.02,
        help="share of held-back live frames the threshold may refuse (default 0.02)",
    )
    calibrate_cmd.add_argument("--seed", type=int, default=0, help="seed of the split")
    calibrate_cmd.add_argument(
        "--require-attacks",
        default="print,replay",
        metavar="TYPES",
        help="comma-separated attack types the captures must hold "
        "(default print,replay): a head never shown one can accept it",
    )
    calibrate_cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    add_config_argument(calibrate_cmd)
    calibrate_cmd.set_defaults(func=cmd_calibrate)

    status = actions.add_parser("status", help="which RGB liveness layer is in use, and why")
    status.add_argument("--json", action="store_true", help="print JSON")
    add_config_argument(status)
    status.set_defaults(func=cmd_status)


def cmd_capture(args: argparse.Namespace) -> int:
    from ..camera import EndOfStream, create_source
    from ..vision.pipeline import Pipeline

    if (args.label == "live") != (args.attack == "none"):
        raise FacegateError(
            "--label live takes no --attack; --label spoof needs one (such as print or replay)"
        )
    if not args.attack.isidentifier():
        raise FacegateError(f"--attack must be a word such as print or replay, got {args.attack!r}")
    if not 0 < args.seconds <= 60:
        raise FacegateError("--seconds must be above 0 and at most 60")
    config = config_from_args(args)
    pipeline = Pipeline.from_config(config)
    manifest = args.out / MANIFEST
    args.out.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        read_manifest(manifest)  # never append to a file this command did not write
    number = 1 + max(
        (
            int(p.name.rsplit("_", 1)[1])
            for p in args.out.glob("capture_*")
            if p.name.rsplit("_", 1)[1].isdigit()
        ),
        default=0,
    )
    folder = args.out / f"capture_{number:03d}"
    folder.mkdir()
    names: list[str] = []
    with_face = 0
    with create_source(config.camera, SystemClock()) as camera:
        start = None
        while True:
            try:
                frame = camera.read()
            except EndOfStream:
                break
            start = frame.timestamp if start is None else start
            if frame.timestamp - start >= args.seconds:
                break
            names.append(f"frame_{len(names):04d}.jpg")
            if not cv2.imwrite(str(folder / names[-1]), frame.image):
                raise FacegateError(f"{folder / names[-1]}: cannot write the frame")
            with_face += presenter(pipeline.detect(frame.image)) is not None
    if not names:
        folder.rmdir()
        raise FacegateError("the camera gave no frames; nothing recorded")
    (folder / "frames.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    row = f"{args.label}\t{args.attack}\t{folder.name}/frames.txt\n"
    with open(manifest, "a", encoding="utf-8") as f:
        if f.tell() == 0:
            f.write("\t".join(COLUMNS) + "\n")
        f.write(row)
    print(f"{folder}: {len(names)} frames, {with_face} with a face; added to {manifest}")
    if with_face < len(names) / 2:
        print("warning: most frames show no face; record this presentation again")
    return ExitCode.OK


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.revert:
        with open_gallery(args) as gallery:
            reverted = gallery.revert_liveness_calibration()
        print(
            "no calibration was active; the default layer is in use"
            if reverted is None
            else f"calibration #{reverted} no longer applies; the default layer is in use "
            "(restart the service to load it)"
        )
        return ExitCode.OK
    if not 0 < args.held_back < 1:
        raise FacegateError("--held-back must be between 0 and 1")
    if not 0 <= args.bpcer < 1:
        raise FacegateError("--bpcer must be at least 0 and below 1")
    from ..liveness.policy import rgb_layer
    from ..vision.pipeline import Pipeline

    config = config_from_args(args)
    required = [a for a in args.require_attacks.split(",") if a]
    samples = read_manifest(args.manifest)
    missing = sorted(set(required) - {s.attack for s in samples})
    if missing:  # before the slow part
        raise FacegateError(
            f"{args.manifest}: no captures of attack type(s) {', '.join(missing)}; "
            "record them (facegate liveness capture --label spoof --attack ...) "
            "or name the types this door must refuse with --require-attacks"
        )
    with open_gallery(args) as gallery:  # before the slow part: a wrong key fails at once
        pipeline = Pipeline.from_config(config)
        rgb = rgb_layer(config.liveness, config.models)
        report_progress = progress("captures")
        presentations = []
        for i, sample in enumerate(samples, start=1):
            presentations += collect_outputs([sample], pipeline, rgb)
            if report_progress:
                report_progress(i, len(samples))
        head, report = calibrate(
            presentations,
            rgb.model_ids,
            [m.spec.bin_sha256 for m in rgb.models],
            config.liveness.threshold,
            held_back=args.held_back,
            bpcer=args.bpcer,
            seed=args.seed,
            required_attacks=required,
        )
        report["manifest"] = str(args.manifest.resolve())
        report["no_face"] = sum(not p.frames for p in presentations)
        report["id"] = gallery.add_liveness_calibration(
            head.to_json(), json.dumps(report), report["applied"]
        )
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    return ExitCode.OK


def _rates(r: dict) -> str:
    apcer = ", ".join(f"APCER({a}) {100 * v:.2f}%" for a, v in r["apcer"].items())
    return (
        f"threshold {r['threshold']:.3f}: {apcer}, BPCER {100 * r['bpcer']:.2f}%, "
        f"ACER {100 * r['acer']:.2f}%; AUC {r['auc']:.4f}"
    )


def _kinds(part: dict) -> str:
    return ", ".join(f"{k} {v['presentations']} ({v['frames']} frames)" for k, v in part.items())


def _print_report(r: dict) -> None:
    print(f"calibration #{r['id']}: fitted on {_kinds(r['fitted_on'])}")
    print(
        f"held back: {_kinds(r['held_back'])}; {r['no_face']} presentation(s) without a face "
        f"left out"
    )
    print(
        f"head on {r['inputs']} (penalty {r['penalty']:g}), threshold for BPCER <= "
        f"{100 * r['bpcer_target']:g}% on the held-back live frames"
    )
    print(f"  calibrated   {_rates(r['calibrated'])}")
    print(f"  uncalibrated {_rates(r['uncalibrated'])}")
    if r["applied"]:
        print(f"applied: calibration #{r['id']} is now in use (restart the service to load it)")
    else:
        print(
            "not applied: it does not beat the uncalibrated layer on the held-back captures; "
            "the layer in use is unchanged"
        )


def cmd_status(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with open_gallery(args) as gallery:
        records = gallery.liveness_calibrations()
    active = next((r for r in records if r.active), None)
    result: dict[str, Any] = {
        "models": list(config.liveness.models),
        "active": None,
        "attempts": len(records),
    }
    if active is not None:
        head = Head.from_json(active.head)
        result["active"] = {
            "id": active.id,
            "created": active.created,
            "threshold": head.threshold,
            "inputs": head.inputs,
            "models": list(head.models),
            "report": json.loads(active.report),
        }
    if args.json:
        print_json(result)
        return ExitCode.OK
    if active is None:
        print(
            f"default layer: mean live probability of {', '.join(config.liveness.models)}, "
            f"threshold {config.liveness.threshold:g} ({len(records)} calibration attempt(s) "
            "stored, none active)"
        )
        return ExitCode.OK
    a = result["active"]
    print(
        f"calibration #{a['id']} of {format_time(a['created'])}: head on {a['inputs']} of "
        f"{', '.join(a['models'])}, threshold {a['threshold']:.3f}"
    )
    print(f"  on its held-back captures: calibrated   {_rates(a['report']['calibrated'])}")
    print(f"                             uncalibrated {_rates(a['report']['uncalibrated'])}")
    return ExitCode.OK
