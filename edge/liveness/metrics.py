"""ISO/IEC 30107-3 error rates for presentation-attack detection.

APCER: the share of attack presentations accepted as live (score >= threshold).
BPCER: the share of bona fide (live) presentations rejected (not score >= threshold,
so a NaN score counts as rejected, as the door treats it).
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
    bpcer = float(np.mean(~(live >= threshold))) if live.size else float("nan")
    return ErrorRates(apcer, bpcer)


def threshold_for_bpcer(live: np.ndarray, bpcer: float) -> float:
    """The highest threshold whose BPCER on these live scores stays at or below ``bpcer``."""
    live = np.sort(np.asarray(live, float))
    if live.size == 0:
        raise ValueError("no live scores to set a threshold on")
    # Rejecting k live samples is allowed; the threshold sits on the (k+1)-th lowest.
    k = int(np.floor(bpcer * live.size + 1e-9))
    return float(live[min(k, live.size - 1)])


def threshold_for_apcer(spoof: np.ndarray, apcer: float) -> float:
    """The lowest threshold whose APCER on these attack scores stays at or below ``apcer``."""
    spoof = np.sort(np.asarray(spoof, float))[::-1]
    if spoof.size == 0:
        raise ValueError("no attack scores to set a threshold on")
    # Accepting k attacks is allowed; the threshold sits just above the (k+1)-th highest.
    k = int(np.floor(apcer * spoof.size + 1e-9))
    return float(np.nextafter(spoof[k], np.inf)) if k < spoof.size else float(spoof[-1])


def auc(live: np.ndarray, spoof: np.ndarray) -> float:
    """The chance that a live sample outscores an attack (ties count half); NaN when a
    side is empty. 1.0: some threshold separates them perfectly."""
    live, spoof = np.asarray(live, float), np.asarray(spoof, float)
    if not live.size or not spoof.size:
        return float("nan")
    ranks = _ranks(np.concatenate([live, spoof]))
    # Mann-Whitney U of the live scores, normalised.
    u = ranks[: live.size].sum() - live.size * (live.size + 1) / 2
    return float(u / (live.size * spoof.size))


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, float)
    sorted_values = values[order]
    start = 0
    for end in range(1, values.size + 1):
        if end == values.size or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2
            start = end
    return ranks


def operating_points(
    live: np.ndarray, spoof_by_attack: dict[str, np.ndarray], target: float = 0.02
) -> dict:
    """Scores alone, as ISO/IEC 30107-3 compares detectors: AUC (live against every
    attack), APCER per attack type at the highest threshold with BPCER <= ``target``,
    and BPCER at the lowest threshold with every attack type's APCER <= ``target``."""
    live = np.asarray(live, float)
    attacks = {a: np.asarray(s, float) for a, s in sorted(spoof_by_attack.items()) if len(s)}
    every_attack = np.concatenate(list(attacks.values())) if attacks else np.zeros(0)
    result: dict = {"auc": auc(live, every_attack)}
    if live.size:
        at = threshold_for_bpcer(live, target)
        result["threshold_at_bpcer"] = at
        result["apcer_at_bpcer"] = {a: error_rates(live, s, at).apcer for a, s in attacks.items()}
    if attacks:
        at = max(threshold_for_apcer(s, target) for s in attacks.values())
        result["threshold_at_apcer"] = at
        result["bpcer_at_apcer"] = error_rates(live, every_attack, at).bpcer
    return result
