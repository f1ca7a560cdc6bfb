"""ISO/IEC 30107-3 error rates for presentation-attack detection.

APCER: the share of attack presentations accepted as live (score >= threshold).
BPCER: the share of bona fide (live) presentations rejected (score < threshold).
ACER: their mean, taking the worst attack type's APCER, as the standard's earlier
edition and the common benchmarks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorRates:
    apcer: float
    bpcer: float


def error_rates(live: np.ndarray, spoof: np.ndarray, threshold: float) -> ErrorRates:
    """APCER and BPCER of one attack type's scores at ``threshold`` (NaN when a side is empty)."""
    live, spoof = np.asarray(live, float), np.asarray(spoof, float)
    apcer = float(np.mean(spoof >= threshold)) if spoof.size else float("nan")
    bpcer = float(np.mean(live < threshold)) if live.size else float("nan")
    return ErrorRates(apcer, bpcer)


def threshold_for_bpcer(live: np.ndarray, bpcer: float) -> float:
    """The highest threshold whose BPCER on these live scores stays at or below ``bpcer``."""
    live = np.sort(np.asarray(live, float))
    if live.size == 0:
        raise ValueError("no live scores to set a threshold on")
    # Rejecting k live samples is allowed; the threshold sits on the (k+1)-th lowest.
    k = int(np.floor(bpcer * live.size + 1e-9))
    return float(live[min(k, live.size - 1)])
