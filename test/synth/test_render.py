"""Rendering: determinism by seed and depth that matches the ray geometry exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.synth import (
    CameraPose,
    Plane,
    Scene,
    Sphere,
    look_rotation,
    render_frame,
    render_scene,
)
from recon3d_ros.synth.render import HFOV_RANGE_DEG, camera_rays


def test_same_seed_same_frame_other_seed_other_frame():
    a = render_frame(7, 48, 36)
    b = render_frame(7, 48, 36)
    c = render_frame(8, 48, 36)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert a.camera == b.camera
    assert not np.array_equal(a.depth, c.depth)


def test_frame_types_and_intrinsics_range():
    for seed in range(6):
        f = render_frame(seed, 40, 30)
        assert f.rgb.dtype == np.uint8 and f.rgb.shape == (30, 40, 3)
        assert f.depth.dtype == np.float32 and f.depth.shape == (30, 40)
        assert HFOV_RANGE_DEG[0] - 1e-6 <= f.camera.hfov_deg <= HFOV_RANGE_DEG[1] + 1e-6
        finite = f.depth[np.isfinite(f.depth)]
        assert finite.size > 0 and finite.min() > 0
        # Sky is the only thing without depth, and only outdoor scenes have sky.
        if f.kind in ("room", "corridor"):
            assert np.isfinite(f.depth).all()


def test_fronto_parallel_plane_gives_its_distance_everywhere():
    cam = PinholeCamera.from_fov(32, 24, 70.0)
    scene = Scene("test", [Plane((0, 0, 1), 3.25)])
    pose = CameraPose((0.0, 0.0, 0.0), look_rotation(0.0, 0.0))
    f = render_scene(scene, cam, pose, effects=False)
    assert np.all(f.depth == np.float32(3.25))


def test_depth_is_z_of_the_hit_point_on_a_tilted_floor():
    cam = PinholeCamera(40, 30, 30.0, 30.0, 19.5, 14.5)
    height = 1.2
    pose = CameraPose((0.0, height, 0.0), look_rotation(0.3, -0.4, 0.05))
    f = render_scene(Scene("floor", [Plane((0, 1, 0), 0.0)]), cam, pose, effects=False)
    o, d = camera_rays(cam, pose)
    t = -o[:, 1] / d[:, 1]  # where each ray meets y = 0
    expected = np.where((d[:, 1] < 0), t, np.inf).reshape(30, 40)
    hit = np.isfinite(expected)
    assert hit.sum() > 100 and np.isinf(f.depth[~hit]).all()
    np.testing.assert_allclose(f.depth[hit], expected[hit], rtol=1e-6)
    # Back-projecting the depth through the intrinsics lands on the floor plane.
    v, u = np.nonzero(hit)
    z = f.depth[v, u].astype(np.float64)
    p_cam = np.stack([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], 1)
    p_world = p_cam @ pose.rotation.T + np.asarray(pose.position)
    np.testing.assert_allclose(p_world[:, 1], 0.0, atol=1e-5)


def test_sphere_depth_matches_analytic_value_at_centre_pixel():
    cam = PinholeCamera(31, 31, 40.0, 40.0, 15.0, 15.0)
    pose = CameraPose((0.0, 0.0, 0.0), look_rotation(0.0, 0.0))
    f = render_scene(Scene("s", [Sphere((0, 0, 5), 1.0)]), cam, pose, effects=False)
    assert f.depth[15, 15] == pytest.approx(4.0)
    # An off-centre pixel: solve |t d - c| = r for the first root.
    d = np.array([(20 - 15) / 40.0, -(0.0), 1.0])  # pixel (u=20, v=15); optical y down = world -y
    a, b, c = d @ d, -2 * d @ np.array([0, 0, 5.0]), 25.0 - 1.0
    t = (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert f.depth[15, 20] == pytest.approx(t, rel=1e-6)


def test_look_rotation_conventions():
    r = look_rotation(0.0, 0.0)
    assert r @ np.array([0, 0, 1.0]) == pytest.approx([0, 0, 1])  # optical z -> world forward
    assert r @ np.array([0, 1.0, 0]) == pytest.approx([0, -1, 0])  # optical y (down) -> world -y
    up = look_rotation(0.0, 0.3) @ np.array([0, 0, 1.0])
    assert up[1] > 0  # positive pitch looks up
