"""consistent_scale: the robust median ratio that keeps monocular depth's scale from drifting."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.errors import ConfigError
from recon3d_ros.reconstruction.scale import consistent_scale


def test_recovers_a_known_scale_with_outliers_and_holes() -> None:
    rng = np.random.default_rng(3)
    reference = rng.uniform(0.5, 4.0, (120, 160)).astype(np.float32)
    depth = reference * np.float32(0.8)  # the network's frame came out 0.8x
    depth[:10] = np.nan  # holes in the frame
    reference[-10:] = np.nan  # and in the map
    depth[20:40] = 9.0  # a surface the map has not seen (20 of 120 rows)
    scale, n = consistent_scale(depth, reference)
    assert scale == pytest.approx(1.25, rel=1e-4)  # 1 / 0.8
    assert n == 160 * (120 - 10 - 10 - 20)


def test_too_few_pixels_gives_none() -> None:
    depth = np.full((10, 10), np.nan, np.float32)
    depth[0, :5] = 1.0
    reference = np.ones((10, 10), np.float32)
    assert consistent_scale(depth, reference, min_pixels=6) == (None, 5)
    assert consistent_scale(depth, reference, min_pixels=5) == (pytest.approx(1.0), 5)


def test_zero_and_negative_depth_are_not_valid() -> None:
    depth = np.array([[0.0, -1.0, 2.0, 2.0]], np.float32)
    reference = np.array([[1.0, 1.0, 3.0, 3.0]], np.float32)
    assert consistent_scale(depth, reference, min_pixels=2) == (pytest.approx(1.5), 2)


def test_shapes_must_match() -> None:
    with pytest.raises(ConfigError, match="same shape"):
        consistent_scale(np.ones((2, 3)), np.ones((3, 2)))
