#!/usr/bin/env python3
"""Figures for many doors over one broker (README, Many doors (MQTT)), on loopback only,
with a real Mosquitto (TLS, a password per terminal) started here and stopped at the end:

1. people:  the time for N people enrolled at one terminal to reach a new terminal
            (from the new terminal's broker client starting to every person applied
            and its sync marker back);
2. events:  events per second one broker takes from T simulated terminals (each a real
            broker client on its own gallery, E events waiting in its outbox), counted
            by a subscriber that checks none is lost and each terminal's are in order;
3. latency: the door loop's time per frame (real models, replayed visits), with the
            broker client off, and on while it applies the N people from the site in
            its own process (run with the people figure, whose terminal it uses);
4. idle:    the processor time 'facegate mqtt' (its own process, in step with the site,
            no control socket) takes in --idle seconds with nothing to do, and how long
            an event the door logs after a quiet spell takes to reach a subscriber.

    .venv/bin/python scripts/mqtt_bench.py [--people 1000] [--terminals 50]
        [--events 200] [--frames 200] [--workers 2] [--idle 60]
        [--figures events people idle]

Every wait is bounded; the run stops with an error past --deadline seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.access.gpio.mock import MockGpio  # noqa: E402
from edge.camera.replay import ReplaySource  # noqa: E402
from edge.clock import SystemClock  # noqa: E402
from edge.config import Config, parse_config  # noqa: E402
from edge.daemon import build_daemon  # noqa: E402
from edge.evaluation.demo_sequence import DEMO_PHOTOS, write_sequence  # noqa: E402
from edge.evaluation.mosquitto import HOST, Mosquitto  # noqa: E402
from edge.gallery import sync  # noqa: E402
from edge.gallery.events import insert_event  # noqa: E402
from edge.gallery.store import Gallery, create_gallery  # noqa: E402
from edge.mqtt import topics  # noqa: E402
from edge.mqtt.service import MqttService, make_client  # noqa: E402
from edge.mqtt.site_key import new_site_key  # noqa: E402
from edge.notify import Notifier  # noqa: E402
from edge.types import Embedding, EventKind  # noqa: E402
from edge.vision.pipeline import Pipeline  # noqa: E402

SITE = "bench"
MODEL = "sface_2021dec"
DEADLINE_S = 600.0
FIGURES = ["events", "people", "idle"]
IDLE_EVENTS = 10


def wait_for(
    condition: Callable[[], object], what: str, deadline: float, every: float = 0.01
) -> float:
    """Seconds until ``condition()`` held, looking ``every`` seconds (a costly look less
    often: it shares the processor with what it measures)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > deadline:
            raise SystemExit(f"mqtt_bench: {what}: not within {deadline:g} s")
        time.sleep(every)
    return time.monotonic() - start


class Bench:
    def __init__(self, folder: Path, terminals: list[str]) -> None:
        self.folder = folder
        users = {name: f"pw-{name}" for name in terminals + ["watcher"]}
        # saving every minute, as a site's broker would (see README, Setting up a site)
        self.broker = Mosquitto(folder / "broker", users, save_every_change=False)
        self.key_file = folder / "site.key"
        new_site_key(self.key_file)

    def config_text(self, name: str, **sections: dict) -> str:
        folder = self.folder / name
        folder.mkdir(exist_ok=True)
        password = folder / "password"
        base: dict[str, dict] = {
            "gpio": {"backend": "mock"},
            "gallery": {"path": str(folder / "g.db"), "key_file": str(folder / "g.key")},
            "liveness": {"level": "off"},
            "control": {"socket": ""},
            "mqtt": {
                **self.broker.mqtt_section(name, password, SITE, self.key_file),
                "homeassistant": False,
            },
        }
        for section, settings in sections.items():
            base.setdefault(section, {}).update(settings)
        return "\n".join(
            f"[{s}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in kv.items())
            for s, kv in base.items()
        )

    def subscriber(self, topic: str, on_message: Callable) -> mqtt.Client:
        """A plain client of the site, subscribed to ``topic`` (QoS 1) and running."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher", clean_session=True)
        client.tls_set(ca_certs=str(self.broker.cert))
        client.username_pw_set("watcher", self.broker.users["watcher"])
        subscribed = threading.Event()
        client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = on_message
        client.connect(HOST, self.broker.port)
        client.loop_start()
        wait_for(subscribed.is_set, "the subscriber", 60)
        return client

    def config(self, name: str, **sections: dict) -> Config:
        config = parse_config(self.config_text(name, **sections))
        if not Path(config.gallery.path).exists():
            create_gallery(config.gallery)
        return config


class Running:
    """A broker client in a thread of this process, on its own gallery connection."""

    def __init__(self, config: Config) -> None:
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.service: MqttService | None = None

        def main() -> None:
            with Gallery.from_config(config.gallery) as gallery:
                self.service = MqttService(
                    config.mqtt,
                    gallery,
                    MODEL,
                    SystemClock(),
                    client=make_client(config.mqtt, reconnect_max_s=1),
                )
                self.ready.set()
                self.service.run(self.stop)

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        self.ready.wait(60)

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(60)


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def people_figure(bench: Bench, count: int, deadline: float) -> tuple[Config, Running, str]:
    source = bench.config("origin")
    with Gallery.from_config(source.gallery) as gallery:
        sync.configure(gallery, "origin", source.mqtt.outbox_retention_s)
        for i, vector in enumerate(unit_vectors(count, 1)):
            gallery.add_person(f"person {i:04d}", "user", [Embedding(vector, MODEL)], [0.9])
    origin = Running(source)
    with Gallery.from_config(source.gallery) as gallery:
        key = origin.service.keys.current_id if origin.service else ""
        published = wait_for(
            lambda: not sync.to_publish(gallery, key), "the origin published", deadline, 0.5
        )
    fresh = bench.config("fresh")
    start = time.monotonic()
    newcomer = Running(fresh)
    with Gallery.from_config(fresh.gallery) as gallery:
        wait_for(
            lambda: (
                len(gallery.people()) == count
                and newcomer.service is not None
                and newcomer.service.synced.is_set()
            ),
            "the new terminal holds everyone",
            deadline,
        )
    elapsed = time.monotonic() - start
    newcomer.halt()
    line = (
        f"people: {count} people reached a new terminal in {elapsed:.2f} s "
        f"({count / elapsed:.0f} people/s; the origin published them in {published:.2f} s)"
    )
    return source, origin, line


def _events_worker(texts: list[str], go, stop) -> None:
    go.wait()
    running = [Running(parse_config(text)) for text in texts]
    stop.wait()
    for r in running:
        r.halt()


def events_figure(
    bench: Bench, terminals: list[str], per_terminal: int, workers: int, deadline: float
) -> str:
    texts = []
    for name in terminals:
        text = bench.config_text(name)
        config = parse_config(text)
        create_gallery(config.gallery)
        with Gallery.from_config(config.gallery) as gallery:
            sync.configure(gallery, name, config.mqtt.outbox_retention_s)
            with gallery.writing() as conn:
                now = time.time()
                for i in range(per_terminal):
                    insert_event(conn, kind=EventKind.DENIED_UNKNOWN, time=now, reason=f"{i}")
        texts.append(text)
    context = multiprocessing.get_context("fork")  # before this process has threads
    go, stop = context.Event(), context.Event()
    processes = [
        context.Process(target=_events_worker, args=(texts[w::workers], go, stop))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    seen: dict[str, list[int]] = {name: [] for name in terminals}
    ids: set[str] = set()
    messages = [0]
    stamps: list[float] = []
    lock = threading.Lock()

    def on_message(client, userdata, message):
        body = json.loads(message.payload)
        with lock:
            messages[0] += 1
            stamps.append(time.monotonic())
            if body["id"] not in ids:
                ids.add(body["id"])
                seen[body["terminal"]].append(body["seq"])

    watcher = bench.subscriber(topics.events(SITE), on_message)
    total = len(terminals) * per_terminal
    start = time.monotonic()
    go.set()
    elapsed = wait_for(lambda: len(ids) >= total, "every event at the subscriber", deadline)
    stop.set()
    for process in processes:
        process.join(120)
    watcher.disconnect()
    watcher.loop_stop()
    in_order = all(seqs == sorted(seqs) for seqs in seen.values())
    complete = all(sorted(s) == list(range(1, per_terminal + 1)) for s in seen.values())
    flowing = stamps[-1] - stamps[0]
    return (
        f"events: {total} events from {len(terminals)} terminals ({workers} processes) in "
        f"{elapsed:.2f} s from their clients' start = {total / elapsed:.0f} events/s "
        f"({total / flowing:.0f} events/s from the first to the last received, "
        f"{stamps[0] - start:.2f} s after the start); lost {total - len(ids)}, "
        f"complete {complete}, in order per terminal {in_order}, "
        f"{messages[0] - len(ids)} duplicates (by id)"
    )


def _loop_times(config: Config, pipeline: Pipeline, frames: int) -> list[float]:
    clock = SystemClock()
    daemon = build_daemon(
        config,
        clock,
        pipeline=pipeline,
        source=ReplaySource.from_config(config.camera, clock),
        gpio=MockGpio(clock),
        notifier=Notifier({}),
        threaded=False,
    )
    times = []
    try:
        for _ in range(frames):
            start = time.perf_counter()
            daemon.step()
            times.append(time.perf_counter() - start)
    finally:
        daemon.close()
    return times


def _summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (
        f"median {statistics.median(ms):.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, "
        f"max {ms[-1]:.1f} ms"
    )


def latency_figure(
    bench: Bench, origin: Config, frames: int, people: int, deadline: float
) -> list[str]:
    """The door loop with the broker client off, then on (its own process, as installed)
    while the origin terminal edits its people, EDITS_PER_S a second, so that the
    door's gallery takes a stream of updates from the site as the loop runs."""
    replay = bench.folder / "visits"
    write_sequence([DEMO_PHOTOS / "obama_2.jpg", DEMO_PHOTOS / "biden_1.jpg"], replay, 16, 8)
    camera = {
        "source": "replay",
        "replay_path": str(replay),
        "fps": 10.0,
        "realtime": False,
        "loop": True,
    }
    decision = {"cooldown_seconds": 0.5}
    pipeline = Pipeline.from_config(parse_config(""))
    image = cv2.imread(str(DEMO_PHOTOS / "obama_1.jpg"))
    template = pipeline.embed(image, pipeline.detect(image)[0])
    lines = []
    for mode in ("off", "on"):
        name = f"door-{mode}"
        text = bench.config_text(name, camera=camera, decision=decision)
        if mode == "off":
            text = text.replace("enabled = true", "enabled = false")
        config = parse_config(text)
        create_gallery(config.gallery)
        with Gallery.from_config(config.gallery) as gallery:
            gallery.add_person("Barack Obama", "user", [template], [0.9])
        process = editor = None
        stop = threading.Event()
        if mode == "on":
            path = bench.folder / name / "config.toml"
            path.write_text(text)
            process = subprocess.Popen(
                [sys.executable, "-m", "edge", "mqtt", "--config", str(path)],
                cwd=REPO,
                stderr=subprocess.DEVNULL,
            )
            with Gallery.from_config(config.gallery) as gallery:
                wait_for(lambda: len(gallery.people()) > people, "the door synced", deadline)
            editor = threading.Thread(target=_edit_everyone, args=(origin, stop))
        try:
            _loop_times(config, pipeline, 10)  # warm-up
            with Gallery.from_config(config.gallery) as gallery:
                before = _synced(gallery)
            if editor is not None:
                editor.start()
            times = _loop_times(config, pipeline, frames)
            with Gallery.from_config(config.gallery) as gallery:
                applied = _synced(gallery) - before
        finally:
            stop.set()
            if editor is not None:
                editor.join(60)
            if process is not None:
                process.terminate()
                process.wait(60)
        extra = f"; {applied} updates from the site applied meanwhile" if mode == "on" else ""
        lines.append(f"latency, sync {mode}: {frames} frames, {_summary(times)}{extra}")
    return lines


def _synced(gallery: Gallery) -> int:
    return len(gallery.events(kind="synced"))


EDITS_PER_S = 20


def _edit_everyone(origin: Config, stop: threading.Event) -> None:
    """Disable and enable the origin's people in turn, EDITS_PER_S changes a second."""
    with Gallery.from_config(origin.gallery) as gallery:
        everyone = [p.id for p in gallery.people()]
        enabled = False
        while not stop.is_set():
            for person_id in everyone:
                if stop.is_set():
                    return
                gallery.set_enabled(person_id, enabled)
                stop.wait(1 / EDITS_PER_S)
            enabled = not enabled


QUIET_S = 5.0  # long enough for the broker client's wait to grow to its longest


def cpu_seconds(pid: int) -> float:
    """A process's user and system processor time so far (Linux /proc, as ps reads it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_figure(bench: Bench, seconds: float, samples: int, deadline: float) -> str:
    text = bench.config_text("idle")
    config = parse_config(text)
    create_gallery(config.gallery)
    path = bench.folder / "idle" / "config.toml"
    path.write_text(text)
    arrived: list[float] = []
    watcher = bench.subscriber(topics.events(SITE), lambda *_: arrived.append(time.monotonic()))
    process = subprocess.Popen(
        [sys.executable, "-m", "edge", "mqtt", "--config", str(path)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Gallery.from_config(config.gallery) as gallery:

            def delay() -> float:
                """Seconds from an event logged after a quiet spell to the subscriber."""
                time.sleep(QUIET_S + random.uniform(0, 2))  # not in step with the client's looks
                count, start = len(arrived), time.monotonic()
                gallery.log_event("denied_unknown", time.time())
                wait_for(lambda: len(arrived) > count, "the event at the subscriber", deadline)
                return arrived[count] - start

            wait_for(lambda: sync.last_sync(gallery) is not None, "the client in step", deadline)
            time.sleep(QUIET_S)
            before = cpu_seconds(process.pid)
            time.sleep(seconds)
            used = cpu_seconds(process.pid) - before
            delays = [delay() for _ in range(samples)]
    finally:
        process.terminate()
        process.wait(60)
        watcher.disconnect()
        watcher.loop_stop()
    return (
        f"idle: facegate mqtt in step with nothing to do used {used:.2f} s of processor in "
        f"{seconds:g} s ({100 * used / seconds:.2f}% of one core, user+system); an event "
        f"logged after {QUIET_S:g} to {QUIET_S + 2:g} s of quiet reached the subscriber in median "
        f"{statistics.median(delays):.2f} s, max {max(delays):.2f} s ({samples} events)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--events", type=int, default=200, help="events per terminal")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--deadline", type=float, default=DEADLINE_S)
    parser.add_argument(
        "--idle", type=float, default=60.0, help="seconds the idle client is measured"
    )
    parser.add_argument(
        "--figures",
        nargs="+",
        choices=FIGURES,
        default=FIGURES,
        help="which figures (people includes the door's latency)",
    )
    args = parser.parse_args()
    terminals = [f"t{i:02d}" for i in range(args.terminals)]
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as folder:
        names = terminals + ["origin", "fresh", "door-off", "door-on", "idle"]
        bench = Bench(Path(folder), names)
        print(
            f"broker: mosquitto on {HOST}:{bench.broker.port}, TLS, a password per terminal, "
            f"persistence saved every 60 s; {os.cpu_count()} CPUs"
        )
        # the event figure forks its workers first, before this process has threads
        bench.broker.start()
        try:
            if "events" in args.figures:
                print(
                    events_figure(bench, terminals, args.events, args.workers, args.deadline),
                    flush=True,
                )
            if "people" in args.figures:
                source, origin, line = people_figure(bench, args.people, args.deadline)
                print(line, flush=True)
                try:
                    for line in latency_figure(
                        bench, source, args.frames, args.people, args.deadline
                    ):
                        print(line, flush=True)
                finally:
                    origin.halt()
            if "idle" in args.figures:
                print(idle_figure(bench, args.idle, IDLE_EVENTS, args.deadline), flush=True)
        finally:
            bench.broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
