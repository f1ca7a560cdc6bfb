"""Offline measurement, never imported at run time: verification pairs, identification,
liveness evaluation, the benchmark, the OpenCV reference and the demo's replayed visit."""
