"""Tests for recon3d_ros.core.filters."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.core.filters import remove_flying_pixels
from recon3d_ros.errors import ConfigError, EncodingError


def _step(near: float = 1.0, far: float = 2.0) -> np.ndarray:
    depth = np.full((6, 8), far, np.float32)
    depth[:, :4] = near  # columns 0..3 near, 4..7 far; the edge is between columns 3 and 4
    return depth


@pytest.mark.parametrize("connectivity", [4, 8])
def test_step_edge_removes_both_sides_and_keeps_flat_regions(connectivity: int) -> None:
    depth = _step()
    out = remove_flying_pixels(depth, threshold=0.1, connectivity=connectivity)
    assert np.isnan(out[:, 3]).all() and np.isnan(out[:, 4]).all()
    np.testing.assert_array_equal(out[:, :3], depth[:, :3])
    np.testing.assert_array_equal(out[:, 5:], depth[:, 5:])
    assert not np.isnan(depth).any()  # input untouched


def test_keep_nearer_removes_only_the_far_side() -> None:
    out = remove_flying_pixels(_step(), threshold=0.1, keep_nearer=True)
    assert np.isnan(out[:, 4]).all()
    np.testing.assert_array_equal(out[:, :4], 1.0)
    np.testing.assert_array_equal(out[:, 5:], 2.0)


def test_threshold_is_relative_to_the_nearer_depth() -> None:
    # Jump 1.0 -> 1.09 is 9 % of the nearer depth: kept at 0.1, removed at 0.08.
    depth = _step(1.0, 1.09)
    assert not np.isnan(remove_flying_pixels(depth, 0.1)).any()
    assert np.isnan(remove_flying_pixels(depth, 0.08)).sum() == 2 * 6


def test_isolated_flying_pixel_and_smooth_slope() -> None:
    depth = np.tile(np.linspace(2.0, 2.35, 8, dtype=np.float32), (6, 1))  # 0.05 m per column
    depth[3, 5] = 1.2  # a point floating in front of the slope
    out = remove_flying_pixels(depth, threshold=0.1, connectivity=8)
    assert np.isnan(out[3, 5])
    flagged = np.isnan(out)
    # The flying pixel and its 8 neighbours go; the rest of the slope (2.5 % per step) stays.
    expected = np.zeros_like(flagged)
    expected[2:5, 4:7] = True
    np.testing.assert_array_equal(flagged, expected)
    only4 = np.isnan(remove_flying_pixels(depth, threshold=0.1, connectivity=4))
    assert only4.sum() == 5 and not only4[2, 4]


def test_invalid_pixels_stay_invalid_and_do_not_spread() -> None:
    depth = np.full((5, 5), 3.0, np.float32)
    depth[2, 2] = np.nan
    depth[0, 0] = 0.0
    out = remove_flying_pixels(depth, threshold=0.05)
    assert np.isnan(out[2, 2]) and np.isnan(out[0, 0])
    assert np.isnan(out).sum() == 2
    assert out.dtype == np.float32


def test_argument_validation() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        remove_flying_pixels(np.ones((3, 3)), 0.0)
    with pytest.raises(ConfigError, match="connectivity"):
        remove_flying_pixels(np.ones((3, 3)), 0.1, connectivity=6)
    with pytest.raises(EncodingError, match="H x W"):
        remove_flying_pixels(np.ones((3, 3, 1)), 0.1)
