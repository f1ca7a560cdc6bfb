"""Site calibration: a small head, fitted at one door, on the frozen RGB models' outputs.

No RGB liveness model is right for every camera, light and print stock; a door can
learn its own from a few minutes of captures: people presenting normally, and the
installer holding up prints and a phone or tablet replay. The networks stay frozen;
only a logistic regression on their outputs is fitted, in numpy.

Captures are split by presentation (a manifest row: one video or frame list is one
capture, all of its frames on one side of the split). A held-back part, taken from
every kind of presentation, is never used for fitting: the head's inputs (the
logits alone, or with the 128 features under them) and its regularisation are
chosen by cross-validation over whole presentations of the fitted part. On the
held-back part the threshold is set for the stated BPCER on its live frames and
both layers are measured; the head is applied only if its ACER there is lower than
the uncalibrated layer's at the configured threshold.

Each presentation weighs the same in the fit whatever its length, and the two
classes weigh the same whatever their counts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import FacegateError, ModelError
from .metrics import error_rates, operating_points, threshold_for_bpcer
from .rgb import ModelOutputs, fused_probability

INPUTS = ("logits", "logits+features")
# Strengths of the L2 penalty tried for each kind of input, weakest first.
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0)
FOLDS = 5
NEWTON_STEPS = 50


@dataclass(frozen=True)
class Presentation:
    """One manifest row's frames, as the RGB models saw them (frames without a face dropped)."""

    label: str
    attack: str
    frames: tuple[tuple[ModelOutputs, ...], ...]


@dataclass(frozen=True, eq=False)
class Head:
    """Logistic regression on standardised model outputs; ``threshold`` applies to its score.

    ``models`` and ``model_sha256`` name the networks (and their weights) it was fitted on:
    on any other networks its inputs mean nothing.
    """

    models: tuple[str, ...]
    model_sha256: tuple[str, ...]
    inputs: str
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    calibration_id: int | None = None  # the gallery's id for it, once stored

    def score(self, outputs: Sequence[ModelOutputs]) -> float:
        if len(outputs) != len(self.models):
            raise ValueError(
                f"the head takes {len(self.models)} models' outputs, got {len(outputs)}"
            )
        x = (input_vector(outputs, self.inputs) - self.mean) / self.scale
        return float(_sigmoid(x @ self.weights + self.bias))

    def check_models(self, models: Sequence[str], sha256: Sequence[str]) -> None:
        """Raise ModelError unless these are the networks the head was fitted on."""
        if tuple(models) != self.models or tuple(sha256) != self.model_sha256:
            raise ModelError(
                f"the active liveness calibration was fitted on {', '.join(self.models)} "
                f"(weights {', '.join(h[:12] for h in self.model_sha256)}), but liveness.models "
                f"are {', '.join(models)} (weights {', '.join(h[:12] for h in sha256)}): "
                "calibrate again, or 'facegate liveness calibrate --revert'"
            )

    def to_json(self) -> str:
        return json.dumps(
            {
                "models": list(self.models),
                "model_sha256": list(self.model_sha256),
                "inputs": self.inputs,
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "weights": self.weights.tolist(),
                "bias": self.bias,
                "threshold": self.threshold,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Head:
        """The stored head; FacegateError if it is not one this code can use."""
        try:
            d = json.loads(text)
            head = cls(
                tuple(d["models"]),
                tuple(d["model_sha256"]),
                d["inputs"],
                np.asarray(d["mean"], float),
                np.asarray(d["scale"], float),
                np.asarray(d["weights"], float),
                float(d["bias"]),
                float(d["threshold"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise FacegateError(f"stored liveness calibration unreadable: {exc}") from None
        arrays = (head.mean, head.scale, head.weights)
        if (
            head.inputs not in INPUTS
            or len({a.shape for a in arrays}) != 1
            or head.mean.ndim != 1
            or not all(np.all(np.isfinite(a)) for a in arrays)
            or not np.all(head.scale > 0)
            or not np.isfinite(head.bias)
            or not 0.0 <= head.threshold <= 1.0
        ):
            raise FacegateError(
                "stored liveness calibration is malformed (shapes, scale, "
                "threshold or a value that is not finite)"
            )
        return head


def active_head(gallery) -> Head | None:
    """The head of the gallery's active calibration, or None: the default layer applies."""
    record = gallery.active_liveness_calibration()
    if record is None:
        return None
    return dataclasses.replace(Head.from_json(record.head), calibration_id=record.id)


def input_vector(outputs: Sequence[ModelOutputs], inputs: str) -> np.ndarray:
    """What the head sees of one frame: each model's logits, then (if asked) its features."""
    parts = [o.logits for o in outputs]
    if inputs == "logits+features":
        parts += [o.features for o in outputs]
    return np.concatenate(parts)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, float)))


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, penalty: float):
    """Weights and bias minimising the weighted log-loss plus ``penalty``/2 |w|^2 (Newton)."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    ridge = np.full(d + 1, penalty)
    ridge[-1] = 1e-9  # the bias is not penalised
    theta = np.zeros(d + 1)
    for _ in range(NEWTON_STEPS):
        p = _sigmoid(design @ theta)
        gradient = design.T @ (weight * (p - y)) + ridge * theta
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def _frames(presentations: Sequence[Presentation], inputs: str):
    """Stacked inputs, labels (1 live) and weights (each presentation and class equal)."""
    rows, labels, weights = [], [], []
    for p in presentations:
        rows += [input_vector(f, inputs) for f in p.frames]
        labels += [float(p.label == "live")] * len(p.frames)
        weights += [1.0 / len(p.frames)] * len(p.frames)
    y, w = np.asarray(labels), np.asarray(weights)
    for cls in (0.0, 1.0):
        w[y == cls] /= 2 * w[y == cls].sum()
    return np.asarray(rows), y, w


def _fit(presentations: Sequence[Presentation], inputs: str, penalty: float):
    x, y, w = _frames(presentations, inputs)
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    weights, bias = fit_logistic((x - mean) / scale, y, w, penalty)
    return mean, scale, weights, bias


def _held_out_loss(
    presentations: list[Presentation], inputs: str, penalty: float, folds: list[list[int]]
) -> float:
    """Weighted log-loss on each fold's presentations of a head fitted on the others."""
    total = 0.0
    for fold in folds:
        test = [presentations[i] for i in fold]
        left_out = set(fold)
        train = [p for i, p in enumerate(presentations) if i not in left_out]
        mean, scale, weights, bias = _fit(train, inputs, penalty)
        x, y, w = _frames(test, inputs)
        p = np.clip(_sigmoid(((x - mean) / scale) @ weights + bias), 1e-9, 1 - 1e-9)
        total += float(-(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum())
    return total / len(folds)


def _folds(presentations: Sequence[Presentation], rng: np.random.Generator) -> list[list[int]]:
    """Up to FOLDS folds of whole presentations, each holding some of every class."""
    by_class = [
        [i for i, p in enumerate(presentations) if (p.label == "live") == live]
        for live in (True, False)
    ]
    k = min(FOLDS, *(len(c) for c in by_class))
    folds: list[list[int]] = [[] for _ in range(k)]
    for members in by_class:
        for n, i in enumerate(rng.permutation(members)):
            folds[n % k].append(int(i))
    return folds


def split(
    presentations: Sequence[Presentation], held_back: float, rng: np.random.Generator
) -> tuple[list[Presentation], list[Presentation]]:
    """(fit, held back): ``held_back`` of each kind (live, each attack type), at least one
    of each kind that has two or more presentations, never all of a kind."""
    kinds: dict[tuple[str, str], list[Presentation]] = {}
    for p in presentations:
        kinds.setdefault((p.label, p.attack), []).append(p)
    fit, back = [], []
    for kind in sorted(kinds):
        members = [kinds[kind][i] for i in rng.permutation(len(kinds[kind]))]
        n = len(members)
        k = min(max(int(round(held_back * n)), 1 if n >= 2 else 0), n - 1)
        back += members[:k]
        fit += members[k:]
    return fit, back


def _figures(
    live: np.ndarray, spoof: dict[str, np.ndarray], threshold: float, target: float
) -> dict:
    apcer = {a: error_rates(live, s, threshold).apcer for a, s in spoof.items()}
    bpcer = error_rates(live, np.concatenate(list(spoof.values())), threshold).bpcer
    return {
        "threshold": threshold,
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (max(apcer.values()) + bpcer) / 2,
        **operating_points(live, spoof, target),
    }


def _scores(presentations: Sequence[Presentation], score) -> tuple[np.ndarray, dict]:
    live = np.array([score(f) for p in presentations if p.label == "live" for f in p.frames])
    spoof: dict[str, list[float]] = {}
    for p in presentations:
        if p.label == "spoof":
            spoof.setdefault(p.attack, []).extend(score(f) for f in p.frames)
    return live, {a: np.array(s) for a, s in sorted(spoof.items())}


def calibrate(
    presentations: Sequence[Presentation],
    models: Sequence[str],
    model_sha256: Sequence[str],
    default_threshold: float,
    *,
    held_back: float = 0.3,
    bpcer: float = 0.02,
    seed: int = 0,
    required_attacks: Sequence[str] = ("print", "replay"),
) -> tuple[Head, dict]:
    """Fit a head on part of the captures and judge it on the rest (see the module).

    Returns the head and its report; ``report["applied"]`` says whether it beat the
    uncalibrated layer on the held-back part. Raises FacegateError when there are
    too few presentations of either class, or of any ``required_attacks`` type, to
    fit on some and hold some back: a head never shown an attack type can learn to
    accept it (one fitted on NUAA's prints alone accepted a tablet replay).
    """
    usable = [p for p in presentations if p.frames]
    counts = {label: sum(p.label == label for p in usable) for label in ("live", "spoof")}
    if min(counts.values()) < 2:
        raise FacegateError(
            f"calibration needs at least 2 live and 2 attack presentations "
            f"with a face; got {counts['live']} and {counts['spoof']}"
        )
    short = [
        a for a in required_attacks if sum(p.label == "spoof" and p.attack == a for p in usable) < 2
    ]
    if short:
        raise FacegateError(
            f"calibration needs at least 2 presentations with a face of every "
            f"attack type the door must refuse; too few of: {', '.join(short)}"
        )
    rng = np.random.default_rng(seed)
    fit, back = split(usable, held_back, rng)
    candidates = [(inputs, penalty) for inputs in INPUTS for penalty in PENALTIES]
    folds = _folds(fit, rng)
    if len(folds) >= 2:
        losses = {c: _held_out_loss(fit, *c, folds) for c in candidates}
        inputs, penalty = min(candidates, key=lambda c: losses[c])
    else:  # one presentation of a class: nothing to cross-validate on
        inputs, penalty = "logits", 1.0
    mean, scale, weights, bias = _fit(fit, inputs, penalty)
    unthresholded = Head(
        tuple(models), tuple(model_sha256), inputs, mean, scale, weights, bias, 0.0
    )

    live, spoof = _scores(back, unthresholded.score)
    threshold = threshold_for_bpcer(live, bpcer)
    head = Head(tuple(models), tuple(model_sha256), inputs, mean, scale, weights, bias, threshold)
    calibrated = _figures(live, spoof, threshold, bpcer)
    uncalibrated = _figures(*_scores(back, fused_probability), default_threshold, bpcer)
    applied = calibrated["acer"] < uncalibrated["acer"]
    report = {
        "fitted_on": _counts(fit),
        "held_back": _counts(back),
        "inputs": inputs,
        "penalty": penalty,
        "bpcer_target": bpcer,
        "seed": seed,
        "required_attacks": list(required_attacks),
        "calibrated": calibrated,
        "uncalibrated": uncalibrated,
        "applied": applied,
    }
    return head, report


def _counts(presentations: Sequence[Presentation]) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for p in presentations:
        kind = counts.setdefault(
            "live" if p.label == "live" else p.attack, {"presentations": 0, "frames": 0}
        )
        kind["presentations"] += 1
        kind["frames"] += len(p.frames)
    return dict(sorted(counts.items()))
