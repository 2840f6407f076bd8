"""Depth colormaps, legends and the point-cloud preview renderer."""

from __future__ import annotations

import numpy as np

from recon3d_ros.demo.visualize import (
    colorize_depth,
    depth_panel,
    depth_range,
    render_points,
    side_by_side,
)


def test_depth_range_ignores_invalid_values() -> None:
    depth = np.array([[np.nan, 0.0, 1.0], [2.0, 3.0, np.inf]], dtype=np.float32)
    near, far = depth_range(depth, 0.0, 100.0)
    assert (near, far) == (1.0, 3.0)
    assert depth_range(np.full((2, 2), np.nan, np.float32)) == (0.0, 1.0)


def test_colormap_near_is_warm_far_is_cold_invalid_is_grey() -> None:
    depth = np.array([[1.0, 5.0, np.nan]], dtype=np.float32)
    bgr = colorize_depth(depth, 1.0, 5.0)
    near_b, _, near_r = bgr[0, 0].astype(int)
    far_b, _, far_r = bgr[0, 1].astype(int)
    assert near_r > near_b and far_b > far_r
    assert len(set(bgr[0, 2].tolist())) == 1  # grey: equal channels


def test_side_by_side_layout() -> None:
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 255  # pure red in RGB
    depth = np.linspace(1, 3, 30 * 40, dtype=np.float32).reshape(30, 40)
    image = side_by_side(rgb, depth, min_height=30)
    legend_width = depth_panel(depth).shape[1] - 40
    assert image.shape == (30, 40 + 40 + legend_width, 3)
    assert image[0, 0].tolist() == [0, 0, 255]  # saved as BGR
    enlarged = side_by_side(rgb, depth, min_height=100)  # small frames grow by a whole factor
    assert enlarged.shape[0] == 120 and enlarged.shape[1] > 2 * 160
    np.testing.assert_array_equal(
        enlarged[:, :160], np.repeat(np.repeat(image[:, :40], 4, 0), 4, 1)
    )


def test_render_points_keeps_the_nearest_point() -> None:
    # Two points on the optical axis, a red one in front of a blue one, and a spread that sizes
    # the view.
    points = np.array(
        [[0, 0, 1.0], [0, 0, 3.0], [-1, -1, 2.0], [1, 1, 2.0], [np.nan, 0, 1]], np.float32
    )
    colors = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0], [0, 255, 0], [9, 9, 9]], np.uint8)
    image = render_points(points, colors, 64, 48, yaw_deg=0.0, pitch_deg=0.0, point_size=1)
    found = {tuple(c) for c in image.reshape(-1, 3).tolist()}
    assert (255, 0, 0) in found and (0, 0, 255) not in found and (9, 9, 9) not in found
    seen_from_behind = render_points(
        points, colors, 64, 48, yaw_deg=180.0, pitch_deg=0.0, point_size=1
    )
    assert (0, 0, 255) in {tuple(c) for c in seen_from_behind.reshape(-1, 3).tolist()}


def test_render_points_without_points_is_background() -> None:
    image = render_points(np.full((3, 3), np.nan, np.float32), None, 20, 10)
    assert image.shape == (10, 20, 3) and len(np.unique(image.reshape(-1, 3), axis=0)) == 1
