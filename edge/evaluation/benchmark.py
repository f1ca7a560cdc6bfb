"""Per-frame latency of the pipeline, side by side with OpenCV's runtime.

Frames are decoded one at a time, never all held in memory, and the two take turns
frame by frame, so that a machine whose speed drifts (a virtual machine's neighbours,
a board's thermal throttling) slows both alike. Only their own work is timed, on the
clock and in CPU time of all the process's threads (threads that spin while they wait
for a descheduled sibling show there). The CPU and the instruction-set extensions ncnn
can use are reported with the figures, since the speed-up over OpenCV depends on them;
``contention`` keeps other processes busy on the same cores, as a web app or an update
would on the device."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacegateError
from ..liveness.policy import LivenessChecker
from ..types import FaceAnalysis, Frame
from ..vision.images import IMAGE_SUFFIXES, read_image, read_video
from ..vision.pipeline import Pipeline, Stopwatch, no_lap, person_at_the_door
from .reference import OpenCVReference

# Extension families ncnn has kernels for, by the name /proc/cpuinfo gives them
# (x86 "flags", aarch64 "Features"). Where ncnn's Python module exposes its own
# check (cpu_support_x86_avx2, ...), that answer is used instead.
NCNN_ISA = {
    "x86_64": (
        "avx",
        "fma",
        "f16c",
        "avx2",
        "avx_vnni",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "xop",
    ),
    "aarch64": ("asimd", "asimdhp", "asimddp", "asimdfhm", "bf16", "i8mm", "sve", "sve2"),
}
NCNN_CHECKS = {
    "avx": "cpu_support_x86_avx",
    "avx2": "cpu_support_x86_avx2",
    "asimd": "cpu_support_arm_neon",
    "asimdhp": "cpu_support_arm_asimdhp",
}


def read_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(model name, flags) from the text of /proc/cpuinfo (x86 or aarch64)."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Model") and not model:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def ncnn_isa(machine: str, flags: set[str], ask_ncnn: Callable[[str], bool | None]) -> list[str]:
    """The extensions in NCNN_ISA this CPU has: ncnn's own answer where ``ask_ncnn``
    has one (not None), else whether /proc/cpuinfo lists the flag."""
    found = []
    for name in NCNN_ISA.get(machine, ()):
        answer = ask_ncnn(name)
        if answer if answer is not None else name in flags:
            found.append(name)
    return found


def cpu_report() -> dict:
    """This machine's CPU model, core count and the extensions ncnn can use on it."""
    import ncnn

    def ask_ncnn(name: str) -> bool | None:
        check = getattr(ncnn, NCNN_CHECKS.get(name, ""), None)
        return bool(check()) if check is not None else None

    cpuinfo = Path("/proc/cpuinfo")
    model, flags = read_cpuinfo(cpuinfo.read_text() if cpuinfo.exists() else "")
    machine = platform.machine()
    return {
        "model": model or platform.processor() or machine,
        "machine": machine,
        "cores": os.cpu_count() or 1,
        "ncnn_isa": ncnn_isa(machine, flags, ask_ncnn),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default"),
    }


def _busy(parent: int, deadline: float) -> None:
    """Spin on one core until the deadline or until the parent process is gone."""
    count = 0
    while True:
        count += 1
        if count % 100_000 == 0 and (os.getppid() != parent or time.monotonic() > deadline):
            return


@contextlib.contextmanager
def contention(workers: int, limit_s: float = 1800.0) -> Iterator[list]:
    """``workers`` processes busy on the CPU while the block runs; each stops when it
    ends, when this process dies, or after ``limit_s`` seconds, whichever is first."""
    context = multiprocessing.get_context("spawn")  # no copy of loaded models or threads
    deadline = time.monotonic() + limit_s  # CLOCK_MONOTONIC is system-wide on Linux
    procs = [
        context.Process(target=_busy, args=(os.getpid(), deadline), daemon=True)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join()


def frame_paths(images: Path, limit: int) -> list[Path]:
    paths = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FacegateError(f"{images}: no images found")
    return paths[:limit]


def iter_frames(images: Path | None, video: Path | None, limit: int) -> Iterator[np.ndarray]:
    """BGR frames from a folder of images or a video file, at most ``limit``."""
    if images is not None:
        for path in frame_paths(images, limit):
            yield read_image(path)
        return
    if video is None:
        raise FacegateError("give a folder of images or a video")
    yield from itertools.islice(read_video(video), limit)


def percentiles(values_ms: list[float]) -> tuple[float, float]:
    if not values_ms:
        return float("nan"), float("nan")
    return float(np.median(values_ms)), float(np.percentile(values_ms, 90))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timings:
    """One side's time per frame, on the clock and in CPU time of all the process's
    threads, and per stage (the laps taken while a frame is timed)."""

    def __init__(self) -> None:
        self.stopwatch = Stopwatch()
        self.totals: list[float] = []
        self.cpu: list[float] = []
        self.stages: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def frame(self) -> Iterator[Stopwatch]:
        """Times the block as one frame; its stages are the laps of the stopwatch given."""
        self.stopwatch.start()
        start, start_cpu = time.perf_counter(), time.process_time()
        yield self.stopwatch
        self.totals.append((time.perf_counter() - start) * 1000)
        self.cpu.append((time.process_time() - start_cpu) * 1000)
        for stage, seconds in self.stopwatch.laps.items():
            self.stages.setdefault(stage, []).append(seconds * 1000)

    def summary(self) -> dict:
        median, p90 = percentiles(self.totals)
        return {
            "median_ms": median,
            "p90_ms": p90,
            "cpu_ms_per_frame": float(np.mean(self.cpu)) if self.cpu else float("nan"),
            "stages": {stage: percentiles(v)[0] for stage, v in self.stages.items()},
            "stages_p90": {stage: percentiles(v)[1] for stage, v in self.stages.items()},
        }


def reference_frame(
    reference: OpenCVReference, image: np.ndarray, lap: Callable[[str], None] = no_lap
) -> None:
    """OpenCV's usual use: detect at frame size, then align and embed every face."""
    faces = reference.detect(image)
    lap("detect")
    for face in faces:
        reference.embed(image, face)
        lap("align + embed")


def side_by_side(
    pipeline: Pipeline,
    reference: OpenCVReference,
    frames: Iterator[np.ndarray],
    liveness: LivenessChecker | None = None,
    fps: float = 15.0,
) -> dict:
    """The pipeline's and OpenCV's latency per frame, taking turns frame by frame (and
    which goes first, so neither always finds the caches the other left): on a machine
    whose speed drifts, both are timed under the same conditions. The liveness check of
    the person at the door is timed on its own, since OpenCV's pipeline has none."""
    ours, theirs = Timings(), Timings()
    ratios: list[float] = []
    faces: list[int] = []
    checks: list[float] = []

    def our_turn(frame: Frame) -> list[FaceAnalysis]:
        with ours.frame() as stopwatch:
            return pipeline.analyse(frame, stopwatch)

    def their_turn(frame: Frame) -> None:
        with theirs.frame() as stopwatch:
            reference_frame(reference, frame.image, stopwatch.lap)

    for i, image in enumerate(frames):
        frame = Frame(image=image, timestamp=i / fps, seq=i)
        if i % 2 == 0:
            results = our_turn(frame)
            their_turn(frame)
        else:
            their_turn(frame)
            results = our_turn(frame)
        ratios.append(theirs.totals[-1] / ours.totals[-1])
        faces.append(sum(r.embedding is not None for r in results))
        subject = person_at_the_door(results)
        if liveness is not None and subject is not None:
            start = time.perf_counter()
            liveness.check(frame, subject.face, subject.mesh)
            checks.append((time.perf_counter() - start) * 1000)
    pipeline_times, opencv_times = ours.summary(), theirs.summary()
    extra: dict[str, Any] = {}
    if liveness is not None:
        extra["liveness_median_ms"], extra["liveness_p90_ms"] = percentiles(checks)
        extra["liveness_level"] = liveness.config.level
    return {
        **extra,
        "frames": len(ours.totals),
        "end_to_end_median_ms": pipeline_times["median_ms"],
        "end_to_end_p90_ms": pipeline_times["p90_ms"],
        "cpu_ms_per_frame": pipeline_times["cpu_ms_per_frame"],
        "stages": pipeline_times["stages"],
        "stages_p90": pipeline_times["stages_p90"],
        "embedded_faces_per_frame": float(np.mean(faces)) if faces else 0.0,
        "opencv_median_ms": opencv_times["median_ms"],
        "opencv_p90_ms": opencv_times["p90_ms"],
        "opencv_cpu_ms_per_frame": opencv_times["cpu_ms_per_frame"],
        "opencv_stages": opencv_times["stages"],
        "speedup": opencv_times["median_ms"] / pipeline_times["median_ms"],
        "speedup_per_frame_median": percentiles(ratios)[0],
    }
