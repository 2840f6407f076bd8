"""surface_metrics against hand computations on tiny point sets."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open3d", reason="Open3D is needed: pip install open3d-cpu==0.20.0")

from recon3d_ros.errors import ReconstructionError  # noqa: E402
from recon3d_ros.reconstruction.metrics import surface_metrics  # noqa: E402


def test_hand_computed_metrics() -> None:
    gt = np.array([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]])
    # pred -> gt nearest: 0.01, 0.03, 0.10 (and the far point 0.5 from (2, 0, 0)).
    pred = np.array([[0.0, 0.01, 0], [1.0, 0, 0.03], [1.0, 0.1, 0], [2.5, 0, 0]])
    m = surface_metrics(pred, gt, thresholds=(0.02, 0.05))
    assert m["accuracy_mean"] == pytest.approx((0.01 + 0.03 + 0.10 + 0.5) / 4)
    assert m["accuracy_median"] == pytest.approx((0.03 + 0.10) / 2)
    # gt -> pred nearest: 0.01, 0.03, 0.5.
    assert m["completeness_mean"] == pytest.approx((0.01 + 0.03 + 0.5) / 3)
    assert m["completeness_median"] == pytest.approx(0.03)
    assert m["chamfer"] == pytest.approx(((0.64 / 4) + (0.54 / 3)) / 2)
    assert m["precision_2cm"] == pytest.approx(1 / 4)
    assert m["recall_2cm"] == pytest.approx(1 / 3)
    assert m["fscore_2cm"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert m["precision_5cm"] == pytest.approx(2 / 4)
    assert m["recall_5cm"] == pytest.approx(2 / 3)
    assert (m["pred_points"], m["gt_points"]) == (4, 3)


def test_identical_sets_are_perfect() -> None:
    pts = np.random.default_rng(0).uniform(-1, 1, (50, 3))
    m = surface_metrics(pts, pts)
    assert m["chamfer"] == 0.0 and m["fscore_2cm"] == 1.0 and m["fscore_5cm"] == 1.0


def test_nothing_within_threshold_gives_zero_fscore() -> None:
    m = surface_metrics(np.zeros((1, 3)), np.ones((1, 3)))
    assert m["fscore_2cm"] == 0.0 and m["chamfer"] == pytest.approx(np.sqrt(3))


def test_empty_sets_are_refused() -> None:
    with pytest.raises(ReconstructionError, match="no finite point"):
        surface_metrics(np.full((2, 3), np.nan), np.zeros((2, 3)))
