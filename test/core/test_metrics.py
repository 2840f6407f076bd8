"""Tests for recon3d_ros.core.metrics with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.core.metrics import (
    align_median,
    align_scale_shift_disparity,
    depth_metrics,
    valid_mask,
)
from recon3d_ros.errors import DatasetError


def test_metrics_by_hand() -> None:
    # Valid: pred (1, 2, 4) vs gt (1, 1, 2). The rest is invalid in one way or another.
    pred = np.array([1.0, 2.0, 4.0, 5.0, 5.0, np.nan, 0.0, 3.0], np.float32)
    gt = np.array([1.0, 1.0, 2.0, 0.0, np.nan, 2.0, 2.0, np.inf], np.float32)
    m = depth_metrics(pred, gt)
    # diff (0, 1, 2); diff/gt (0, 1, 1); diff^2/gt (0, 1, 2); log ratio (0, ln2, ln2)
    assert m["valid_pixels"] == 3
    assert m["abs_rel"] == pytest.approx(2 / 3)
    assert m["sq_rel"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(5 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["rmse_log"] == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    # max ratios (1, 2, 2): only the first is below 1.25, 1.5625 and 1.953125.
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_delta_thresholds_and_symmetry() -> None:
    gt = np.ones(4)
    pred = np.array([1.2, 1 / 1.2, 1.5, 1.9])
    m = depth_metrics(pred, gt)
    assert m["delta1"] == pytest.approx(0.5)
    assert m["delta2"] == pytest.approx(0.75)
    assert m["delta3"] == pytest.approx(1.0)


def test_depth_range_and_extra_mask() -> None:
    gt = np.array([[0.5, 1.0], [2.0, 10.0]])
    pred = np.array([[0.5, 2.0], [2.0, 10.0]])
    m = depth_metrics(pred, gt, min_depth=0.6, max_depth=5.0)
    assert m["valid_pixels"] == 2 and m["mae"] == pytest.approx(0.5)
    mask = np.array([[True, False], [True, True]])
    m2 = depth_metrics(pred, gt, min_depth=0.6, max_depth=5.0, mask=mask)
    assert m2["valid_pixels"] == 1 and m2["mae"] == 0.0
    np.testing.assert_array_equal(valid_mask(pred, gt, 0.6, 5.0), [[False, True], [True, False]])


def test_no_valid_pixel_or_shape_mismatch_raise() -> None:
    with pytest.raises(DatasetError, match="no valid pixel"):
        depth_metrics(np.ones(3), np.zeros(3))
    with pytest.raises(DatasetError, match="shape"):
        depth_metrics(np.ones(3), np.ones(4))


def test_align_median() -> None:
    gt = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    pred = gt / 7.0
    pred[4] = np.nan
    mask = np.array([True, True, True, True, False])
    aligned = align_median(pred, gt, mask)
    np.testing.assert_allclose(aligned[:4], gt[:4], rtol=1e-6)
    # Hand example: medians 3 and 1.5 -> scale 2.
    out = align_median(np.array([1.0, 1.5, 2.0]), np.array([2.0, 3.0, 10.0]), None)
    np.testing.assert_allclose(out, [2.0, 3.0, 4.0])


def test_align_scale_shift_from_disparity_recovers_depth() -> None:
    gt = np.array([[1.0, 2.0], [4.0, 5.0]])
    disparity = 3.0 * (1.0 / gt) + 0.2  # affine in inverse depth, as relative models output
    aligned = align_scale_shift_disparity(disparity, gt, None, input_is_disparity=True)
    assert aligned.dtype == np.float32
    np.testing.assert_allclose(aligned, gt, rtol=1e-5)


def test_align_scale_shift_from_depth_input() -> None:
    gt = np.array([1.0, 2.0, 4.0, 8.0])
    inv = 0.5 / gt + 0.1
    pred_depth = 1.0 / inv
    mask = np.array([True, True, True, False])
    aligned = align_scale_shift_disparity(
        pred_depth, gt, mask, input_is_disparity=False, depth_cap=20.0
    )
    np.testing.assert_allclose(aligned, gt, rtol=1e-5)  # the masked-out pixel follows the fit
    capped = align_scale_shift_disparity(pred_depth, gt, mask, input_is_disparity=False)
    assert capped[3] == pytest.approx(4.0)  # default cap: the largest gt depth in the fit


def test_align_scale_shift_clamps_to_depth_cap_and_handles_bad_pred() -> None:
    # Hand fit: disparities (1, 2) must map to gt disparities (1, 0.5) -> s = -0.5, t = 1.5.
    # Pixel 3 (disparity 4) then maps to -0.5, a non-positive disparity: clamped to 1/cap.
    pred = np.array([1.0, 2.0, 4.0, np.nan])
    gt = np.array([1.0, 2.0, np.nan, np.nan])
    out = align_scale_shift_disparity(pred, gt, None, input_is_disparity=True, depth_cap=10.0)
    np.testing.assert_allclose(out[:2], [1.0, 2.0], rtol=1e-6)
    assert out[2] == pytest.approx(10.0)
    assert np.isnan(out[3])
    default_cap = align_scale_shift_disparity(pred, gt, None, input_is_disparity=True)
    assert default_cap[2] == pytest.approx(2.0)  # largest gt depth in the fit
    depth_in = align_scale_shift_disparity(
        np.array([1.0, 0.5, -1.0]), np.array([1.0, 2.0, 3.0]), None, input_is_disparity=False
    )
    assert np.isnan(depth_in[2])


def test_align_scale_shift_rejects_constant_prediction() -> None:
    with pytest.raises(DatasetError, match="constant"):
        align_scale_shift_disparity(np.ones(5), np.arange(1.0, 6.0), None, True)
