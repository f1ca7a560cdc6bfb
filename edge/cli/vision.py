"""``facegate eval pairs|identify|liveness`` and ``facegate bench``: accuracy and speed,
printed as numbers."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import FacegateError
from ..evaluation.benchmark import (
    contention,
    cpu_report,
    iter_frames,
    peak_rss_mb,
    reference_frame,
    side_by_side,
)
from ..evaluation.demo_sequence import DEMO_PHOTOS, write_sequence
from ..evaluation.identification import identify, read_people, split_people
from ..evaluation.liveness import read_manifest, run_sample, summarise
from ..evaluation.pairs import nearest_centre, read_pairs, score_pairs, verification_metrics
from ..evaluation.preview_load import preview_cost
from ..evaluation.reference import OpenCVReference
from ..evaluation.visits import enrol_visitor, link_frames, replay_visit, visit_frames
from ..gallery.enrolment import ImageVerdict, capture_from_images
from ..gallery.matcher import matching_benchmark
from ..gallery.store import Gallery, GalleryConfig, create_gallery
from ..liveness.calibration import active_head
from ..liveness.policy import LEVELS, LivenessChecker
from ..types import Frame
from ..vision.images import read_image
from ..vision.pipeline import Pipeline
from .common import add_config_argument, config_from_args, print_json, progress

WARMUP_FRAMES = 5
MAX_CONTENDERS = 64


def register(subparsers) -> None:
    evaluate = subparsers.add_parser("eval", help="measure accuracy on labelled data")
    kinds = evaluate.add_subparsers(dest="eval_kind", metavar="KIND")
    kinds.required = True
    pairs = kinds.add_parser("pairs", help="face verification on an LFW-format pair list")
    pairs.add_argument("--pairs", required=True, type=Path, help="pair list (LFW format)")
    pairs.add_argument(
        "--images", required=True, type=Path, help="folder of <name>/<name>_NNNN.jpg"
    )
    pairs.add_argument(
        "--reference",
        action="store_true",
        help="also score the pairs with OpenCV's runtime on the source ONNX files",
    )
    pairs.add_argument("--json", action="store_true", help="print JSON")
    add_config_argument(pairs, required=False)
    pairs.set_defaults(func=cmd_eval_pairs)

    ident = kinds.add_parser("identify", help="open-set 1:N identification (FPIR, FNIR, rank-1)")
    ident.add_argument(
        "--images", required=True, type=Path, help="folder with one sub-folder of photos per person"
    )
    ident.add_argument(
        "--enrol",
        type=int,
        default=1,
        metavar="K",
        help="enrol the first K photos of each person with more than K; "
        "people with K or fewer are strangers (default 1)",
    )
    ident.add_argument(
        "--quality-gate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="search only with photos that pass the quality gate, as the door "
        "decides only on such frames (default); --no-quality-gate searches with "
        "every photo",
    )
    ident.add_argument("--json", action="store_true", help="print JSON")
    add_config_argument(ident, required=False)
    ident.set_defaults(func=cmd_eval_identify)

    liveness = kinds.add_parser("liveness", help="presentation-attack detection (ISO/IEC 30107-3)")
    liveness.add_argument(
        "--manifest",
        required=True,
        type=Path,
        help="TSV with header 'label attack path' (see README)",
    )
    liveness.add_argument(
        "--level",
        choices=("standard", "strict"),
        help="liveness level to measure (default: the config's)",
    )
    liveness.add_argument(
        "--model",
        action="append",
        metavar="ID",
        help="measure the RGB layer made of this model, uncalibrated; repeat "
        "for a fusion (default: the config's layer with the site calibration "
        "in its gallery, if any)",
    )
    liveness.add_argument(
        "--fps",
        type=float,
        default=15.0,
        help="frame rate of image sequences, for the checker's timing",
    )
    liveness.add_argument("--json", action="store_true", help="print JSON")
    add_config_argument(liveness, required=False)
    liveness.set_defaults(func=cmd_eval_liveness)

    bench = subparsers.add_parser("bench", help="per-stage latency, compared with OpenCV")
    source = bench.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of frames (searched recursively)")
    source.add_argument("--video", type=Path, help="video file")
    source.add_argument(
        "--visit",
        metavar="FRAMES",
        help="replay one visit through the door loop with tracking off and on: a folder of "
        "frames (in the order their names count), a text file listing frames, or 'demo' "
        "(the demo's enrolled person walking up); see --enrol",
    )
    bench.add_argument(
        "--enrol",
        nargs="+",
        type=Path,
        metavar="PHOTO",
        help="--visit: photos of the visitor to enrol first (the demo visit brings its own)",
    )
    bench.add_argument("--fps", type=float, default=15.0, help="--visit: the camera's frame rate")
    bench.add_argument(
        "--liveness", choices=LEVELS, help="--visit: liveness level (default: the config's)"
    )
    bench.add_argument(
        "--runs", type=int, default=3, help="--visit: runs of each, alternating (medians)"
    )
    bench.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads of the embedder and of OpenCV (the other networks: "
        "[models] light_threads)",
    )
    bench.add_argument("--limit", type=int, default=200, help="most frames to time")
    bench.add_argument(
        "--contend",
        type=int,
        default=0,
        metavar="N",
        help=f"keep N other processes busy on the CPU meanwhile (0..{MAX_CONTENDERS})",
    )
    bench.add_argument(
        "--preview",
        action="store_true",
        help="instead: the door loop's per-frame time with and without someone watching the "
        "camera preview (--images: a replay with a face)",
    )
    bench.add_argument("--rounds", type=int, default=5, help="--preview: alternating rounds")
    bench.add_argument("--json", action="store_true", help="print JSON")
    add_config_argument(bench, required=False)
    bench.set_defaults(func=cmd_bench)


def _run_facts(config, args: argparse.Namespace) -> dict:
    return {
        "threads": args.threads,
        "light_threads": config.models.resolved_light_threads(),
        "contenders": args.contend,
        "cpu": cpu_report(),
    }


def _threads(r: dict) -> str:
    return f"{r['threads']} threads ({r['light_threads']} for the detector, mesh and liveness)"


def _with_threads(config, threads: int):
    models = dataclasses.replace(config.models, threads=threads)
    return dataclasses.replace(config, models=models)


def _reference(config) -> OpenCVReference:
    return OpenCVReference.from_manifest(
        config.models.resolved_dir(),
        config.detector.model,
        config.embedder.model,
        score_threshold=config.detector.min_score,
    )


def _centre_face_embedder(detect, embed):
    """path -> vector of the face nearest the image centre, or None when none is found."""

    def embed_image(path: Path):
        image = read_image(path)
        faces = detect(image)
        if not faces:
            return None
        return embed(image, nearest_centre(faces, image))

    return embed_image


def cmd_eval_pairs(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    pairs = read_pairs(args.pairs)
    if not args.images.is_dir():
        raise FacegateError(f"{args.images}: no such folder")
    pipeline = Pipeline.from_config(config)
    ours = _centre_face_embedder(
        pipeline.detect, lambda image, face: pipeline.embed(image, face).vector
    )
    scores, failed = score_pairs(pairs, ours, args.images, progress("embedding images"))
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    result = {
        **verification_metrics(scores, same, folds),
        "failed_detections": failed,
        "model": pipeline.model_id,
        "detector_input_size": config.detector.input_size,
    }
    if args.reference:
        reference = _reference(config)
        theirs = _centre_face_embedder(reference.detect, reference.embed)
        ref_scores, ref_failed = score_pairs(pairs, theirs, args.images, progress("reference"))
        result["reference"] = {
            **verification_metrics(ref_scores, same, folds),
            "failed_detections": ref_failed,
            "runtime": "opencv",
        }
    if args.json:
        print_json(result)
    else:
        _print_eval(result)
    return 0


def _print_eval(result: dict) -> None:
    rows = [("ncnn pipeline", result)]
    if "reference" in result:
        rows.append(("opencv reference", result["reference"]))
    print(f"{result['pairs']} pairs, {result['folds']}-fold, model {result['model']}")
    for label, r in rows:
        print(
            f"{label:17} accuracy {100 * r['accuracy']:.2f}% ± {100 * r['accuracy_std']:.2f}"
            f"  threshold {r['threshold']:.3f}  TAR@FAR=1e-3 {100 * r['tar_at_far_1e-3']:.2f}%"
            f"  failed detections {r['failed_detections']}"
        )


def _search_capture(pipeline: Pipeline, quality_gate: bool):
    """path -> the verdict on the face nearest the centre; None when the gate holds it back."""

    def capture(path: Path) -> ImageVerdict | None:
        image = read_image(path)
        faces = pipeline.detect(image)
        if not faces:
            return ImageVerdict(path, "no face")
        face = nearest_centre(faces, image)
        aligned = pipeline.align(image, face)
        if quality_gate and not pipeline.quality.assess(aligned).passed:
            return None
        return ImageVerdict(path, "ok", pipeline.embedder.embed(aligned), face.score)

    return capture


def cmd_eval_identify(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    split = split_people(read_people(args.images), args.enrol)
    pipeline = Pipeline.from_config(config)

    def capture_enrolment(path: Path) -> ImageVerdict:
        (verdict,) = capture_from_images(pipeline, [path], choose=nearest_centre)
        return verdict

    with tempfile.TemporaryDirectory(prefix="facegate-identify-") as tmp:
        store = GalleryConfig(path=str(Path(tmp) / "gallery.db"), key_file=str(Path(tmp) / "key"))
        create_gallery(store)
        with Gallery.from_config(store) as gallery:
            result = identify(
                split,
                capture_enrolment,
                _search_capture(pipeline, args.quality_gate),
                gallery,
                config.enrolment,
                config.matcher.min_similarity,
                pipeline.model_id,
                progress("embedding photos"),
            )
    result.update(enrol=args.enrol, quality_gate=args.quality_gate, model=pipeline.model_id)
    if args.json:
        print_json(result)
    else:
        _print_identify(result)
    return 0


def _print_identify(r: dict) -> None:
    print(
        f"{r['people']} people, {r['enrolled']} enrolled from {r['enrol']} photo(s) each "
        f"({r['templates']} templates), model {r['model']}"
    )
    print(
        f"{r['failed_enrolments']} could not be enrolled (their {r['searches_of_unenrolled']} "
        f"searches are left out)"
    )
    print(
        f"{r['mated_searches']} mated and {r['stranger_searches']} stranger searches, "
        f"{r['searches_without_face']} without a face, {r['searches_gated']} held back by "
        f"the quality gate"
    )
    print(f"rank-1 {100 * r['rank1']:.2f}%")
    print(
        f"at min_similarity {r['threshold']:.3f}: FPIR {100 * r['fpir']:.2f}%  "
        f"FNIR {100 * r['fnir']:.2f}%  (wrong person {100 * r['wrong_person']:.2f}%)"
    )
    for target, point in r["fnir_at_fpir"].items():
        bound = "  (upper bound: too few strangers)" if point["bound"] else ""
        print(
            f"at FPIR {float(target):g}: FNIR {100 * point['fnir']:.2f}%  "
            f"threshold {point['threshold']:.3f}{bound}"
        )
    for size, point in r["by_gallery_size"].items():
        print(
            f"gallery of {int(size):>5} people: FPIR {100 * point['fpir']:.2f}%  "
            f"FNIR {100 * point['fnir']:.2f}%  ({point['draws']} draw(s))"
        )


def cmd_eval_liveness(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    changes = {"level": args.level} if args.level else {}
    if args.model:
        changes["models"] = tuple(args.model)
    section = dataclasses.replace(config.liveness, **changes)
    section.validate()
    config = dataclasses.replace(config, liveness=section)
    if section.level == "off":
        raise FacegateError("liveness.level is off: pass --level standard or --level strict")
    if args.fps <= 0:
        raise FacegateError("--fps must be positive")
    samples = read_manifest(args.manifest)
    head = None
    if args.config and not args.model and Path(config.gallery.path).exists():
        with Gallery.from_config(config.gallery) as gallery:
            head = active_head(gallery)
    pipeline = Pipeline.from_config(config)
    checker = LivenessChecker.from_config(
        section, config.models, pipeline.detector, ir_camera=False, calibration=head
    )
    report = progress("presentations")
    outcomes = []
    for i, sample in enumerate(samples, start=1):
        outcomes.append(run_sample(checker, pipeline, sample, args.fps))
        if report:
            report(i, len(samples))
    result = summarise(outcomes, checker.threshold, section.level)
    result["models"] = list(checker.rgb.model_ids)
    result["calibration"] = head.calibration_id if head is not None else None
    if args.json:
        print_json(result)
    else:
        _print_liveness(result)
    return 0


def _print_liveness(r: dict) -> None:
    layer = (
        f"site calibration #{r['calibration']}"
        if r["calibration"] is not None
        else "mean live probability"
    )
    print(
        f"{r['samples']} presentations, level {r['level']}, models {', '.join(r['models'])} "
        f"({layer}), threshold {r['threshold']:.3f}"
    )
    for attack, rate in r["apcer"].items():
        print(f"APCER({attack}) {100 * rate:.2f}%")
    print(f"BPCER {100 * r['bpcer']:.2f}%   ACER {100 * r['acer']:.2f}%")
    for kind, verdicts in r["verdicts"].items():
        refused = r["refused_by"].get(kind, {})
        by = f"  (refused by: {', '.join(f'{c} {n}' for c, n in sorted(refused.items()))})"
        print(
            f"  {kind}: "
            + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items()))
            + (by if refused else "")
        )
    s = r["scores"]
    print(f"by score alone: AUC {s['auc']:.4f}", end="")
    if "apcer_at_bpcer" in s:
        rates = ", ".join(f"{a} {100 * v:.2f}%" for a, v in s["apcer_at_bpcer"].items())
        print(f"; at BPCER <= 2% (threshold {s['threshold_at_bpcer']:.3f}) APCER {rates}", end="")
    if "bpcer_at_apcer" in s:
        print(
            f"; at APCER <= 2% (threshold {s['threshold_at_apcer']:.3f}) "
            f"BPCER {100 * s['bpcer_at_apcer']:.2f}%",
            end="",
        )
    print()


def cmd_bench(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise FacegateError("--threads must be at least 1")
    if not 0 <= args.contend <= MAX_CONTENDERS:
        raise FacegateError(f"--contend must be between 0 and {MAX_CONTENDERS}")
    if args.visit is not None and not (args.fps > 0 and args.runs >= 1):
        raise FacegateError("--fps must be positive and --runs at least 1")
    config = _with_threads(config_from_args(args), args.threads)
    cv2.setNumThreads(args.threads)
    if args.preview:
        return _bench_preview(config, args)
    with contention(args.contend):
        result = _bench(config, args) if args.visit is None else _bench_visit(config, args)
    result.update(_run_facts(config, args))
    if args.json:
        print_json(result)
    elif args.visit is None:
        _print_bench(result)
    else:
        _print_visit(result)
    return 0


def _bench_preview(config, args: argparse.Namespace) -> int:
    if args.images is None or args.rounds < 1 or args.limit < 1:
        raise FacegateError("--preview needs --images (a replay folder), --rounds and --limit >= 1")
    with contention(args.contend):
        result = preview_cost(config, args.images, args.limit, args.rounds)
    result.update(_run_facts(config, args))
    if args.json:
        print_json(result)
        return 0
    cpu = result["cpu"]
    print(f"CPU {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores), {_threads(result)}")
    print(
        f"door loop, {result['rounds']} x {result['frames_per_round']} frames each way, "
        f"{result['contenders']} busy processes alongside"
    )
    for mode in ("unwatched", "watched"):
        print(
            f"  {mode:9}: median {result[f'{mode}_median_ms']:.2f} ms per frame, "
            f"p90 {result[f'{mode}_p90_ms']:.2f} ms"
        )
    print(
        f"watching costs {result['difference_percent']:+.1f}% per frame "
        f"({result['previews']} preview frames sent)"
    )
    return 0


def _bench_visit(config, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="facegate-visit-") as tmp:
        work = Path(tmp)
        if args.visit == "demo":
            # as the demo replays it: empty frames, then the person walking up
            write_sequence([DEMO_PHOTOS / "obama_2.jpg"], work / "frames")
            photos = args.enrol or [DEMO_PHOTOS / "obama_1.jpg"]
        elif not args.enrol:
            raise FacegateError("--visit needs --enrol PHOTO...: photos of the visitor")
        else:
            link_frames(visit_frames(Path(args.visit)), work / "frames")
            photos = args.enrol
        store = GalleryConfig(path=str(work / "gallery.db"), key_file=str(work / "key"))
        level = args.liveness or config.liveness.level
        config = dataclasses.replace(
            config,
            gallery=store,
            control=dataclasses.replace(config.control, socket=""),
            liveness=dataclasses.replace(config.liveness, level=level),
            # as many agreeing photos as there are, up to the configured minimum
            enrolment=dataclasses.replace(
                config.enrolment, min_templates=min(config.enrolment.min_templates, len(photos))
            ),
        )
        pipeline = Pipeline.from_config(config)
        enrol_visitor(config, pipeline, photos)
        frames = sorted((work / "frames").iterdir())
        warm = Frame(read_image(frames[len(frames) // 2]), 0.0)
        for _ in range(WARMUP_FRAMES):  # caches and thread pools settle before timing
            pipeline.analyse(warm)
        runs: dict[str, list[dict]] = {"off": [], "on": []}
        for _ in range(args.runs):
            for mode, runs_of_mode in runs.items():
                tracking = dataclasses.replace(config.tracking, enabled=mode == "on")
                visit = dataclasses.replace(config, tracking=tracking)
                runs_of_mode.append(replay_visit(visit, pipeline, work / "frames", args.fps))
    result: dict = {"visit": args.visit, "fps": args.fps, "liveness": level, "runs": args.runs}
    for mode, figures in runs.items():
        summary = dict(figures[0])  # frames and decisions are the same every run
        for key in ("cpu_ms_visit", "wall_ms_visit", "ms_to_decision", "cpu_ms_to_decision"):
            if key in summary:
                summary[key] = float(np.median([f[key] for f in figures]))
        result[f"tracking_{mode}"] = summary
    on, off = result["tracking_on"]["cpu_ms_visit"], result["tracking_off"]["cpu_ms_visit"]
    result["cpu_ratio"] = off / on if on > 0 else float("nan")
    return result


def _print_visit(r: dict) -> None:
    cpu = r["cpu"]
    off = r["tracking_off"]
    print(
        f"CPU {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores), {_threads(r)}, "
        f"{r['contenders']} busy processes alongside"
    )
    print(
        f"visit {r['visit']}: {off['frames']} frames at {r['fps']:g} fps, a face in "
        f"{off['frames_with_a_face']} from frame {off['first_sight']}; liveness {r['liveness']}; "
        f"{r['runs']} run(s) of each, medians"
    )
    for mode in ("off", "on"):
        v = r[f"tracking_{mode}"]
        if "decision" in v:
            decided = (
                f"{v['decision']} ({v['decided_as'] or 'unknown'}) after "
                f"{v['frames_to_decision']} frames, {v['ms_to_decision']:.0f} ms from first "
                f"sight; CPU {v['cpu_ms_to_decision']:.0f} ms to the decision"
            )
        else:
            decided = "no decision"
        print(
            f"tracking {mode + ':':4} {decided}; the visit: CPU {v['cpu_ms_visit']:.0f} ms, "
            f"{v['embedded_visit']} faces embedded in {v['frames_with_a_face']} frames"
        )
    print(f"CPU per visit {r['cpu_ratio']:.2f}x lower with tracking")


def _bench(config, args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    pipeline = Pipeline.from_config(config)
    load_ms = (time.perf_counter() - start) * 1000
    first = next(iter_frames(args.images, args.video, 1))
    pipeline.analyse(Frame(first, 0.0))
    cold_start_ms = (time.perf_counter() - start) * 1000
    for _ in range(WARMUP_FRAMES):  # caches and thread pools settle before timing
        pipeline.analyse(Frame(first, 0.0))
    liveness = None
    if config.liveness.level != "off":
        liveness = LivenessChecker.from_config(
            config.liveness, config.models, pipeline.detector, ir_camera=False
        )
    rss_mb = peak_rss_mb()  # the pipeline's, before OpenCV's models load beside it
    reference = _reference(config)
    for _ in range(WARMUP_FRAMES):
        reference_frame(reference, first)
    frames = iter_frames(args.images, args.video, args.limit)
    result = side_by_side(pipeline, reference, frames, liveness)
    result.update(
        detector_input_size=config.detector.input_size,
        model_load_ms=load_ms,
        cold_start_ms=cold_start_ms,
        peak_rss_mb=rss_mb,
    )
    result["matching"] = {str(n): t for n, t in matching_benchmark().items()}
    return result


def _print_bench(r: dict) -> None:
    cpu = r["cpu"]
    print(
        f"CPU {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores), ncnn can use: "
        f"{' '.join(cpu['ncnn_isa']) or 'no vector extensions'}; "
        f"OMP_WAIT_POLICY {cpu['omp_wait_policy']}, GOMP_SPINCOUNT {cpu['gomp_spincount']}"
    )
    print(
        f"{r['frames']} frames, {_threads(r)}, "
        f"detection at {r['detector_input_size']} px, "
        f"{r['contenders']} busy processes alongside"
    )
    stages = "  ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
    print(f"stages (median ms): {stages}")
    print(
        f"end to end: median {r['end_to_end_median_ms']:.2f} ms, "
        f"p90 {r['end_to_end_p90_ms']:.2f} ms"
        f"  ({r['embedded_faces_per_frame']:.2f} faces embedded per frame)"
    )
    if "liveness_median_ms" in r:
        print(
            f"liveness ({r['liveness_level']}), per checked face: median "
            f"{r['liveness_median_ms']:.2f} ms, p90 {r['liveness_p90_ms']:.2f} ms"
        )
    print(
        f"opencv FaceDetectorYN+FaceRecognizerSF: median {r['opencv_median_ms']:.2f} ms,"
        f" p90 {r['opencv_p90_ms']:.2f} ms"
    )
    opencv = "  ".join(f"{k} {v:.2f}" for k, v in r["opencv_stages"].items())
    print(f"opencv stages (median ms): {opencv}")
    print(
        f"CPU time per frame (all threads): ncnn pipeline {r['cpu_ms_per_frame']:.1f} ms,"
        f" opencv {r['opencv_cpu_ms_per_frame']:.1f} ms"
    )
    print(
        f"speedup {r['speedup']:.2f}x (medians); frame by frame, OpenCV's time over the "
        f"pipeline's: median {r['speedup_per_frame_median']:.2f}x"
    )
    print(
        f"model load {r['model_load_ms']:.0f} ms   load to first result "
        f"{r['cold_start_ms']:.0f} ms   peak RSS {r['peak_rss_mb']:.0f} MB (the pipeline)"
    )
    for size, t in r["matching"].items():
        print(
            f"1:N match against {int(size):>6} templates: median {t['median_ms']:.3f} ms,"
            f" p90 {t['p90_ms']:.3f} ms"
        )
