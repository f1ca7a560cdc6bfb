"""Does watching the camera preview slow the door? The real door loop (``build_daemon``:
camera on a replay, the pipeline, matcher, decisions, mock door, control socket) is
stepped on the same frames in alternating rounds, with nobody watching the preview and
with a client in another process reading it as the web app does (JPEG, at the preview's
rate); each step is timed. The door loop's thread only hands over a reference to the
frame; the control server's thread scales, draws and encodes it, and that thread shares
the process (and its cores) with the loop, which is what this measures.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..access.gpio.mock import MockGpio
from ..clock import SystemClock
from ..config import Config
from ..control import ControlClient
from ..daemon import build_daemon
from ..gallery.store import GalleryConfig, create_gallery
from ..notify import Notifier

WARMUP_STEPS = 10


def _watch(path: str, stop: Any, frames: Any) -> None:
    """In another process: read the preview until told to stop (as the web app does)."""
    with ControlClient(path) as client:
        client.settimeout(10.0)
        for line in client.stream("preview"):
            if "preview" in line:
                frames.value += 1
            if stop.is_set():
                return


def preview_cost(config: Config, replay: Path, frames: int, rounds: int) -> dict[str, Any]:
    """Per-step milliseconds of the door loop, without and with a preview watcher."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding ncnn
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = dataclasses.replace(
            config,
            camera=dataclasses.replace(
                config.camera, source="replay", replay_path=str(replay), loop=True, realtime=False
            ),
            gallery=GalleryConfig(path=str(folder / "g.db"), key_file=str(folder / "g.key")),
            control=dataclasses.replace(config.control, socket=str(folder / "control.sock")),
        )
        create_gallery(config.gallery)
        clock = SystemClock()
        daemon = build_daemon(
            config, clock, gpio=MockGpio(clock), notifier=Notifier({}), threaded=False
        )
        times: dict[str, list[float]] = {"unwatched": [], "watched": []}
        sent = 0
        try:
            for _ in range(WARMUP_STEPS):
                daemon.step()
            for _ in range(rounds):
                for mode in ("unwatched", "watched"):
                    watcher = None
                    if mode == "watched":
                        stop, seen = context.Event(), context.Value("i", 0)
                        watcher = context.Process(
                            target=_watch, args=(config.control.socket, stop, seen)
                        )
                        watcher.start()
                        while not daemon.control.preview_wanted:  # type: ignore[union-attr]
                            daemon.step()
                    for _ in range(frames):
                        start = time.perf_counter()
                        daemon.step()
                        times[mode].append((time.perf_counter() - start) * 1000.0)
                    if watcher is not None:
                        stop.set()
                        watcher.join(timeout=30)
                        sent += seen.value
        finally:
            daemon.close()
    result: dict[str, Any] = {"frames_per_round": frames, "rounds": rounds, "previews": sent}
    for mode, samples in times.items():
        result[f"{mode}_median_ms"] = float(np.median(samples))
        result[f"{mode}_p90_ms"] = float(np.percentile(samples, 90))
    result["difference_percent"] = 100.0 * (
        result["watched_median_ms"] / result["unwatched_median_ms"] - 1.0
    )
    return result
