"""Mesh ray casting: exact z-depth, texture and colour lookup, shadows, rooms, determinism."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open3d")

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.synth import CameraPose, PointLight, look_rotation  # noqa: E402
from recon3d_ros.synth.mesh_render import MeshScene, render_mesh_frame  # noqa: E402

CAM = PinholeCamera(64, 48, 40.0, 40.0, 32.0, 24.0)
FORWARD = CameraPose((0.0, 0.0, 0.0), look_rotation(0.0, 0.0))  # optical z along world +z


def _quad(scene: MeshScene, z: float, half_x: float, half_y: float, **kw) -> None:
    v = [(-half_x, -half_y, z), (half_x, -half_y, z), (half_x, half_y, z), (-half_x, half_y, z)]
    uv = np.array([(0, 0), (1, 0), (1, 1), (0, 1)], np.float32)
    tri = np.array([[0, 1, 2], [0, 2, 3]])
    scene.add_mesh(v, tri, kw.pop("color", (1.0, 1.0, 1.0)), uvs=uv[tri], **kw)


def test_fronto_parallel_quad_gives_its_distance_as_depth_over_its_footprint():
    scene = MeshScene()
    _quad(scene, 2.0, 0.49, 0.29)
    frame, _ = scene.render(CAM, FORWARD, effects=False)
    # Footprint by hand: |u - cx| < 0.49 * fx / 2 = 9.8 px, |v - cy| < 0.29 * fy / 2 = 5.8 px.
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    inside = (np.abs(u - 32.0) < 9.8) & (np.abs(v - 24.0) < 5.8)
    assert np.count_nonzero(inside) == 19 * 11
    assert np.all(np.isinf(frame.depth[~inside]))
    # z-depth, not ray length: the corner pixels (ray ~1.03x longer) also read exactly 2.0.
    assert np.allclose(frame.depth[inside], 2.0, atol=1e-5)


def test_tilted_plane_depth_matches_ray_plane_intersection():
    scene = MeshScene()
    # Plane z = 2 + 0.5 x (world = camera frame here, up to the y flip).
    scene.add_mesh([(-3, -3, 0.5), (3, -3, 3.5), (3, 3, 3.5), (-3, 3, 0.5)],
                   [[0, 1, 2], [0, 2, 3]], (0.5, 0.5, 0.5))
    frame, _ = scene.render(CAM, FORWARD, effects=False)
    u = np.arange(64.0)
    expected = 2.0 / (1.0 - 0.5 * (u - 32.0) / 40.0)  # z = 2 + 0.5 * z * (u - cx) / fx
    assert np.allclose(frame.depth, expected[None, :], rtol=1e-5)


def test_texture_quadrants_and_plain_colour_are_sampled():
    img = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    scene = MeshScene()
    tid = scene.add_texture(img)
    _quad(scene, 2.0, 0.5, 0.3, texture=tid)
    _, albedo = scene.render(CAM, FORWARD, effects=False)
    # Quadrant centres: world x = -+0.25 -> u = 32 -+ 5; world y = +-0.15 -> v = 24 -+ 3.
    # OBJ convention: v = 1 is the top image row, so the top-left quadrant shows texel (0, 0).
    assert albedo[21, 27] == pytest.approx((1, 0, 0), abs=1e-5)
    assert albedo[21, 37] == pytest.approx((0, 1, 0), abs=1e-5)
    assert albedo[27, 27] == pytest.approx((0, 0, 1), abs=1e-5)
    assert albedo[27, 37] == pytest.approx((1, 1, 1), abs=1e-5)
    plain = MeshScene()
    _quad(plain, 2.0, 0.5, 0.3, color=(0.2, 0.4, 0.6))
    _, albedo = plain.render(CAM, FORWARD, effects=False)
    assert albedo[24, 32] == pytest.approx((0.2, 0.4, 0.6), abs=1e-6)


def test_occluder_between_light_and_wall_casts_a_shadow():
    scene = MeshScene()
    _quad(scene, 2.0, 2.0, 2.0)  # a wall facing the camera
    scene.add_mesh([(-0.1, -0.1, 1.5), (0.1, -0.1, 1.5), (0.1, 0.1, 1.5), (-0.1, 0.1, 1.5)],
                   [[0, 1, 2], [0, 2, 3]], (1.0, 1.0, 1.0))  # a small card in front of it
    lamp = PointLight((0.0, 0.0, 1.0), 1.0)  # behind the card, seen from the wall
    frame, _ = scene.render(CAM, FORWARD, [lamp], ambient=0.0, effects=False)
    # The card hides the wall's centre from the camera; the shadow it casts on the wall is
    # the card scaled by (2 - 1) / (1.5 - 1) = 2 about the lamp: |x|, |y| < 0.2 on the wall.
    # Pixel (v=24, u=32 + 6): world x = 0.3 at z = 2 is outside both card and shadow: lit.
    # Row 24, u = 32 + 3: x = 0.15 on the wall, outside the card's image (x < 0.1 * 2 / 1.5
    # = 0.133) but inside the shadow: dark.
    assert frame.depth[24, 35] == pytest.approx(2.0, abs=1e-5)
    assert frame.rgb[24, 35].max() == 0
    assert frame.rgb[24, 38].min() > 100


def test_mesh_frames_are_deterministic_by_seed(tiny_assets):
    a = render_mesh_frame(3, 64, 48, assets=tiny_assets)
    b = render_mesh_frame(3, 64, 48, assets=tiny_assets)
    c = render_mesh_frame(4, 64, 48, assets=tiny_assets)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    assert a.camera == b.camera and a.seed == 3 and a.kind.startswith("mesh")
    assert not np.array_equal(a.depth, c.depth)
    # Inside a closed room every ray hits something, within the room's largest diagonal.
    assert np.all(np.isfinite(a.depth)) and a.depth.min() > 0.01
    assert a.depth.max() < np.sqrt(7.0**2 + 9.0**2 + 3.2**2)
    assert a.rgb.shape == (48, 64, 3) and a.rgb.dtype == np.uint8


def test_build_cache_with_mesh_generator_writes_the_same_shards(
    tiny_assets, monkeypatch, tmp_path
):
    from recon3d_ros.training.cache import SynthCache, build_cache

    lib = tiny_assets[0]
    monkeypatch.setenv("RECON3D_FURNITURE_DIR", str(lib.furniture_dir))
    monkeypatch.setenv("RECON3D_FURNITURE_CACHE", str(lib.cache_dir))
    out = build_cache(tmp_path / "c", 3, 10, 48, 32, shard_size=2, generator="mesh")
    cache = SynthCache(out)
    assert len(cache) == 3
    rgb, depth, k = cache[2]
    f = render_mesh_frame(12, 48, 32, assets=tiny_assets)
    assert np.array_equal(rgb, f.rgb)
    assert np.allclose(depth, f.depth, rtol=1e-3)  # stored as float16
    assert tuple(k) == (f.camera.fx, f.camera.fy, f.camera.cx, f.camera.cy)
