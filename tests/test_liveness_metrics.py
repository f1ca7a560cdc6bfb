"""ISO/IEC 30107-3 error rates and the BPCER operating point."""

import numpy as np
import pytest

from edge.liveness.metrics import error_rates, threshold_for_bpcer


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
