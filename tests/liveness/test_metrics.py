"""ISO/IEC 30107-3 error rates and the BPCER operating point."""

import numpy as np
import pytest

from edge.liveness.metrics import (
    auc,
    error_rates,
    operating_points,
    threshold_for_apcer,
    threshold_for_bpcer,
)


def test_apcer_counts_attacks_accepted_and_bpcer_live_rejected():
    live = np.array([0.9, 0.8, 0.3, 0.95])
    spoof = np.array([0.1, 0.6, 0.2, 0.05, 0.7])
    rates = error_rates(live, spoof, 0.5)
    assert rates.bpcer == pytest.approx(1 / 4)
    assert rates.apcer == pytest.approx(2 / 5)


def test_threshold_for_bpcer_rejects_at_most_the_allowed_share():
    live = np.linspace(0.0, 0.99, 100)
    t = threshold_for_bpcer(live, 0.02)
    assert np.mean(live < t) <= 0.02
    assert np.mean(live < np.nextafter(t, 1.0)) > 0.02  # any higher would reject more
    assert threshold_for_bpcer(np.array([0.7]), 0.02) == 0.7


def test_threshold_needs_live_scores():
    with pytest.raises(ValueError):
        threshold_for_bpcer(np.array([]), 0.02)


def test_threshold_for_apcer_accepts_at_most_the_allowed_share():
    spoof = np.linspace(0.0, 0.99, 100)
    t = threshold_for_apcer(spoof, 0.02)
    assert np.mean(spoof >= t) <= 0.02
    assert np.mean(spoof >= np.nextafter(t, 0.0)) > 0.02  # any lower would accept more
    # Ties at the boundary are all refused rather than some let through.
    assert (
        np.mean(np.array([0.9, 0.9, 0.1]) >= threshold_for_apcer(np.array([0.9, 0.9, 0.1]), 0.4))
        == 0
    )


def test_auc_is_the_share_of_live_spoof_pairs_in_the_right_order():
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.1]), np.array([0.9])) == 0.0
    # 3 of 4 pairs ordered, one tie counted half: (3 + 0.5) / 6.
    assert auc(np.array([0.5, 0.9, 0.3]), np.array([0.5, 0.2])) == pytest.approx(4.5 / 6)
    assert np.isnan(auc(np.array([]), np.array([0.1])))


def test_a_nan_live_score_counts_as_rejected():
    rates = error_rates(np.array([0.9, float("nan")]), np.array([float("nan")]), 0.5)
    assert rates.bpcer == 0.5 and rates.apcer == 0.0


def test_operating_points_hold_every_attack_type_to_the_apcer_target():
    live = np.linspace(0.3, 1.0, 50)
    spoof = {"print": np.linspace(0.0, 0.4, 50), "replay": np.linspace(0.0, 0.6, 50)}
    r = operating_points(live, spoof, 0.02)
    assert 0.5 < r["auc"] < 1.0
    # The replays reach higher: they set the threshold at APCER <= 2%.
    assert r["threshold_at_apcer"] == threshold_for_apcer(spoof["replay"], 0.02)
    assert r["bpcer_at_apcer"] == pytest.approx(np.mean(live < r["threshold_at_apcer"]))
    assert r["threshold_at_bpcer"] == threshold_for_bpcer(live, 0.02)
    assert r["apcer_at_bpcer"]["print"] <= r["apcer_at_bpcer"]["replay"]
