"""Metric scale for relative depth: robust fits, ground plane, smoothing, the node facade."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import ConfigError
from recon3d_ros.inference.scale import (
    MetricScaler,
    ScaleShift,
    ScaleSmoother,
    apply_scale_shift,
    disparity_from_depth,
    fit_scale_shift,
    ground_plane_scale,
    project_points,
)

CAMERA = PinholeCamera(160, 120, 120.0, 120.0, 79.5, 59.5)


def _relative_samples(rng, n=400, scale=0.37, shift=0.021, noise=0.01):
    """Return true depth and relative disparity d: metric_disp = scale * d + shift (+ noise)."""
    z = rng.uniform(1.0, 40.0, n)
    d = (1.0 / z - shift) / scale
    d *= 1.0 + noise * rng.standard_normal(n)
    return z, d


def test_recovers_known_scale_and_shift_with_noise():
    rng = np.random.default_rng(1)
    z, d = _relative_samples(rng)
    fit = fit_scale_shift(d, z)
    assert fit is not None
    assert fit.scale == pytest.approx(0.37, rel=0.01)
    assert fit.shift == pytest.approx(0.021, abs=0.002)
    assert fit.inliers > 380 and fit.residual < 0.02


def test_gross_outliers_are_rejected_where_least_squares_fails():
    rng = np.random.default_rng(2)
    z, d = _relative_samples(rng, noise=0.005)
    bad = rng.choice(z.size, size=z.size // 4, replace=False)
    z_meas = z.copy()
    z_meas[bad] = rng.uniform(
        0.3, 1.0, bad.size
    )  # e.g. LiDAR hits on the ego vehicle / occlusions
    robust = fit_scale_shift(d, z_meas)
    assert robust is not None
    assert robust.scale == pytest.approx(0.37, rel=0.02) and robust.shift == pytest.approx(
        0.021, abs=0.003
    )
    # Plain least squares on the same data is far off: the robust fit is doing real work.
    a = np.stack([d, np.ones_like(d)], axis=1)
    s_ls, b_ls = np.linalg.lstsq(a, 1.0 / z_meas, rcond=None)[0]
    assert abs(s_ls - 0.37) / 0.37 > 0.2 or abs(b_ls - 0.021) > 0.05
    assert robust.inliers <= z.size - bad.size + 5


def test_scale_only_and_too_few_points():
    rng = np.random.default_rng(3)
    z, d = _relative_samples(rng, shift=0.0)
    fit = fit_scale_shift(d, z, scale_only=True)
    assert fit is not None and fit.shift == 0.0 and fit.scale == pytest.approx(0.37, rel=0.01)
    assert fit_scale_shift(d[:5], z[:5]) is None
    nan_pred = np.full_like(d, np.nan)
    assert fit_scale_shift(nan_pred, z) is None


def test_apply_and_disparity_helpers_mark_invalid_as_nan():
    depth = np.array([[2.0, 0.0, np.nan, -1.0]], np.float32)
    disp = disparity_from_depth(depth)
    assert disp[0, 0] == pytest.approx(0.5) and np.isnan(disp[0, 1:]).all()
    out = apply_scale_shift(np.array([1.0, 0.1, -3.0]), 2.0, -0.5)
    assert out[0] == pytest.approx(1 / 1.5) and np.isnan(out[1:]).all()


def test_project_points_drops_points_behind_and_outside():
    ext = np.eye(4)
    ext[:3, 3] = [0.0, 0.0, 0.5]  # sensor 0.5 m behind the camera
    points = np.array([[0.0, 0.0, 4.5], [0.0, 0.0, -2.0], [50.0, 0.0, 1.0], [1.0, 0.5, 9.5]])
    u, v, z = project_points(points, ext, CAMERA)
    np.testing.assert_allclose(z, [5.0, 10.0])
    np.testing.assert_allclose(u, [79.5, 79.5 + 120.0 * 1.0 / 10.0])
    np.testing.assert_allclose(v, [59.5, 59.5 + 120.0 * 0.5 / 10.0])


def _floor_scene(
    camera: PinholeCamera, height: float, pitch_deg: float = 0.0, wall: float = 12.0
) -> np.ndarray:
    """Metric depth of a camera ``height`` above a floor, looking at a wall ``wall`` m ahead."""
    v, u = np.indices((camera.height, camera.width)).astype(np.float64)
    rays = np.stack(
        [(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u)], axis=-1
    )
    p = math.radians(pitch_deg)  # camera pitched down by p: rotate rays into the level frame
    rot = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    level = rays @ rot.T
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(level[..., 1] > 1e-6, height / level[..., 1], np.inf)
        t_wall = np.where(level[..., 2] > 1e-6, wall / level[..., 2], np.inf)
    return np.minimum(t_floor, t_wall)  # ray parameter == camera z since rays have z = 1


@pytest.mark.parametrize("pitch", [0.0, 12.0])
def test_ground_plane_recovers_scale_from_camera_height(pitch):
    metric = _floor_scene(CAMERA, 1.2, pitch)
    relative = metric / 3.7  # unknown scale: relative depth = metric / 3.7
    fit = ground_plane_scale(relative, CAMERA, camera_height=1.2)
    assert fit is not None and fit.shift == 0.0
    recovered = fit.apply(disparity_from_depth(relative))
    np.testing.assert_allclose(recovered, metric, rtol=0.01)


def test_ground_plane_needs_a_floor():
    wall_only = np.full((120, 160), 5.0)
    assert ground_plane_scale(wall_only, CAMERA, camera_height=1.0) is None
    with pytest.raises(ConfigError):
        ground_plane_scale(wall_only, CAMERA, camera_height=0.0)


def test_smoother_damps_flicker_rejects_spikes_and_follows_real_changes():
    rng = np.random.default_rng(4)
    smoother = ScaleSmoother(alpha=0.2, max_log_jump=0.25, patience=4)
    raw = 1.0 * np.exp(0.06 * rng.standard_normal(200))
    out = np.array([smoother.update(ScaleShift(s)).scale for s in raw])
    assert np.std(np.log(out[20:])) < 0.4 * np.std(np.log(raw[20:]))
    before = smoother.current.scale
    assert smoother.update(ScaleShift(3.0)).scale == pytest.approx(before)  # spike held back
    assert smoother.rejected == 1
    for _ in range(3):  # a new level, not yet trusted (the spike at 3.0 does not count for it)
        assert smoother.update(ScaleShift(2.0)).scale == pytest.approx(before)
    assert smoother.update(ScaleShift(2.0)).scale == pytest.approx(2.0)  # persisted: adopted
    assert smoother.update(None).scale == pytest.approx(2.0)


def test_metric_scaler_sparse_mode_end_to_end():
    rng = np.random.default_rng(5)
    metric = _floor_scene(CAMERA, 1.5)
    true_scale, true_shift = 0.5, 0.02
    relative = 1.0 / ((1.0 / metric - true_shift) / true_scale)  # the engine's 1/raw output
    scaler = MetricScaler("sparse", min_points=20, extrinsic=np.eye(4).reshape(-1))
    assert np.isnan(scaler.apply(relative, CAMERA)).all()  # no reference yet: no guessing
    # LiDAR-like points: sample true 3-D points of the scene in the camera frame.
    v = rng.integers(0, CAMERA.height, 300)
    u = rng.integers(0, CAMERA.width, 300)
    z = metric[v, u]
    pts = np.stack([(u - CAMERA.cx) / CAMERA.fx * z, (v - CAMERA.cy) / CAMERA.fy * z, z], axis=1)
    scaler.set_reference_points(pts)
    out = scaler.apply(relative, CAMERA)
    np.testing.assert_allclose(out, metric, rtol=1e-3)
    state = scaler.state
    assert state.updates == 1 and state.scale == pytest.approx(true_scale, rel=1e-3)
    # Without new references the estimate is kept.
    np.testing.assert_allclose(scaler.apply(relative, CAMERA), metric, rtol=1e-3)
    # A registered depth image works too (0 = no measurement).
    ref = np.where(rng.random(metric.shape) < 0.05, metric, 0.0)
    fresh = MetricScaler("sparse")
    fresh.set_reference_depth(ref)
    np.testing.assert_allclose(fresh.apply(relative, CAMERA), metric, rtol=1e-3)


def test_metric_scaler_fixed_none_and_ground_modes():
    rel = np.full((4, 5), 2.0, np.float32)
    assert np.array_equal(MetricScaler("none").apply(rel, CAMERA), rel)
    fixed = MetricScaler("fixed", scale=0.25, shift=0.5).apply(rel, CAMERA)
    np.testing.assert_allclose(fixed, 1.0 / (0.25 * 0.5 + 0.5))
    metric = _floor_scene(CAMERA, 0.8)
    ground = MetricScaler("ground", camera_height=0.8).apply(metric * 0.1, CAMERA)
    np.testing.assert_allclose(ground, metric, rtol=0.01)
    with pytest.raises(ConfigError, match="camera_height"):
        MetricScaler("ground")
    with pytest.raises(ConfigError, match="scale mode"):
        MetricScaler("lidar")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="extrinsic"):
        MetricScaler("sparse", extrinsic=[1.0, 2.0])
