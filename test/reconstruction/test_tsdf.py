"""TSDF map on Open3D's VoxelBlockGrid: fused mesh accuracy, budget, clearing, save/load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

o3d = pytest.importorskip("open3d", reason="Open3D is needed: pip install open3d-cpu==0.20.0")

from recon3d_ros.errors import ConfigError, ReconstructionError  # noqa: E402
from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap  # noqa: E402

from .conftest import PosedFrames  # noqa: E402


def _distances(query: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Nearest-neighbour distances by Open3D's own KD-tree (independent of our metrics)."""
    q = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(query, np.float64)))
    t = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(target, np.float64)))
    return np.asarray(q.compute_point_cloud_distance(t))


def _fuse(data: PosedFrames, options: MapOptions, frames: int = 5) -> TsdfMap:
    tsdf_map = TsdfMap(options)
    for f, T in list(zip(data.frames, data.poses))[:frames]:
        tsdf_map.integrate(f.depth_m, f.camera, T, f.rgb)
    return tsdf_map


@pytest.fixture(scope="module")
def redwood_map(redwood: PosedFrames) -> TsdfMap:
    return _fuse(redwood, MapOptions(voxel_size=0.02, memory_budget_mb=64))


def test_redwood_gt_fusion_median_error_under_1cm(
    redwood: PosedFrames, redwood_map: TsdfMap
) -> None:
    """The issue's requirement: 2 cm voxels, GT depth + poses, median surface error < 1 cm."""
    mesh = redwood_map.extract_mesh()
    # Open3D 0.20's legacy ScalableTSDFVolume returns empty meshes: this one must not be.
    assert not mesh.is_empty and mesh.vertices.shape[0] > 5000
    assert mesh.triangles.max() < mesh.vertices.shape[0]
    d = _distances(mesh.vertices, redwood.gt_points(stride=2))
    assert np.median(d) < 0.01, f"median {np.median(d) * 1e3:.1f} mm"
    # Colours come from the images (a grey default would be 128 everywhere).
    assert mesh.colors.std() > 10


def test_points_lie_on_the_surface(redwood: PosedFrames, redwood_map: TsdfMap) -> None:
    points, colors = redwood_map.extract_points()
    assert points.shape[0] > 5000 and colors.shape == points.shape and colors.dtype == np.uint8
    assert np.median(_distances(points, redwood.gt_points(stride=2))) < 0.01


def test_render_depth_matches_the_frame(redwood: PosedFrames, redwood_map: TsdfMap) -> None:
    f, T = redwood.frames[2], redwood.poses[2]
    rendered = redwood_map.render_depth(f.camera, T)
    assert rendered.shape == f.depth_m.shape and rendered.dtype == np.float32
    both = np.isfinite(rendered) & np.isfinite(f.depth_m)
    assert both.mean() > 0.6
    # Open3D's ray cast stops ~0.6 voxel short of the surface (13 mm at 2 cm, measured).
    assert np.median(np.abs(rendered[both] - f.depth_m[both])) < 0.02
    far = T.copy()
    far[:3, 3] += 100.0 * T[:3, 2]  # 100 m ahead, looking away from everything fused
    assert np.isnan(redwood_map.render_depth(f.camera, far)).all()


def test_save_load_round_trip(tmp_path: Path, redwood: PosedFrames, redwood_map: TsdfMap) -> None:
    redwood_map.save(tmp_path / "map")
    loaded = TsdfMap.load(tmp_path / "map")
    assert loaded.options == redwood_map.options
    assert loaded.block_count == redwood_map.block_count
    a, b = redwood_map.extract_mesh(), loaded.extract_mesh()
    assert a.vertices.shape == b.vertices.shape and a.triangles.shape == b.triangles.shape
    # Block order may differ after loading: compare the vertex sets.
    order_a = np.lexsort(a.vertices.T)
    order_b = np.lexsort(b.vertices.T)
    np.testing.assert_array_equal(a.vertices[order_a], b.vertices[order_b])
    np.testing.assert_array_equal(a.colors[order_a], b.colors[order_b])
    # The loaded map keeps fusing within its budget.
    f = redwood.frames[0]
    loaded.integrate(f.depth_m, f.camera, redwood.poses[0], f.rgb)
    assert loaded.capacity_blocks <= loaded.options.max_blocks


def test_load_refuses_a_folder_without_a_map(tmp_path: Path) -> None:
    with pytest.raises(ReconstructionError, match="map.json"):
        TsdfMap.load(tmp_path)


def test_budget_bounds_the_blocks(redwood: PosedFrames) -> None:
    # 2.5 MiB / (16^3 voxels * 20 bytes) = 2621440 / 81920 = 32 blocks.
    options = MapOptions(voxel_size=0.02, memory_budget_mb=2.5)
    assert options.max_blocks == 32
    tsdf_map = TsdfMap(options)
    for f, T in zip(redwood.frames, redwood.poses):
        tsdf_map.integrate(f.depth_m, f.camera, T, f.rgb)
        assert tsdf_map.block_count <= 32
        assert tsdf_map.capacity_blocks <= 32  # the allocation, not only the blocks in use
    assert tsdf_map.blocks_freed > 0
    assert tsdf_map.memory_bytes <= 2.5 * 2**20
    mesh = tsdf_map.extract_mesh()
    assert not mesh.is_empty
    # The blocks kept are the ones nearest the last camera.
    position = redwood.poses[-1][:3, 3]
    unbounded = _fuse(redwood, MapOptions(voxel_size=0.02, memory_budget_mb=64))
    assert unbounded.block_count > 32
    near = np.linalg.norm(mesh.vertices - position, axis=1)
    full = np.linalg.norm(unbounded.extract_mesh().vertices - position, axis=1)
    assert near.max() < full.max()


def test_clear_radius_frees_far_blocks(redwood: PosedFrames) -> None:
    radius = 2.0
    options = MapOptions(voxel_size=0.02, memory_budget_mb=64, clear_radius=radius)
    tsdf_map = _fuse(redwood, options)
    full = _fuse(redwood, replace(options, clear_radius=0.0))
    assert 0 < tsdf_map.block_count < full.block_count
    position = redwood.poses[-1][:3, 3]
    vertices = tsdf_map.extract_mesh().vertices
    # A block is kept when its centre is within the radius: its voxels reach half a block
    # diagonal (0.32 m * sqrt(3) / 2) farther.
    reach = radius + options.block_size * np.sqrt(3) / 2
    assert np.linalg.norm(vertices - position, axis=1).max() <= reach
    far = np.linalg.norm(full.extract_mesh().vertices - position, axis=1)
    assert far.max() > reach  # the unbounded map does hold surfaces out there


def test_freed_blocks_do_not_bring_back_old_surfaces(redwood: PosedFrames) -> None:
    """Open3D reuses freed buffers as they are: a reused block must start empty."""
    f, T = redwood.frames[0], redwood.poses[0]
    moved = T.copy()
    moved[:3, 3] += np.array([10.0, 0.0, 0.0])
    options = MapOptions(voxel_size=0.02, memory_budget_mb=64, clear_radius=4.0)
    tsdf_map = TsdfMap(options)
    tsdf_map.integrate(f.depth_m, f.camera, T, f.rgb)
    tsdf_map.integrate(f.depth_m, f.camera, moved, f.rgb)  # frees every block of the first
    fresh = TsdfMap(options)
    fresh.integrate(f.depth_m, f.camera, moved, f.rgb)
    a, b = tsdf_map.extract_mesh(), fresh.extract_mesh()
    assert tsdf_map.blocks_freed > 0
    assert b.vertices.shape[0] > 5000  # one frame makes a surface (weight 1 > 0.5)
    assert a.vertices.shape == b.vertices.shape
    np.testing.assert_allclose(
        a.vertices[np.lexsort(a.vertices.T)], b.vertices[np.lexsort(b.vertices.T)], atol=1e-5
    )


def test_reset_empties_the_map(redwood: PosedFrames) -> None:
    tsdf_map = _fuse(redwood, MapOptions(memory_budget_mb=64), frames=1)
    assert tsdf_map.block_count > 0
    tsdf_map.reset()
    assert tsdf_map.block_count == 0 and tsdf_map.extract_mesh().is_empty
    assert tsdf_map.extract_points()[0].shape == (0, 3)


def test_empty_map_outputs() -> None:
    from recon3d_ros.core.camera import PinholeCamera

    tsdf_map = TsdfMap(MapOptions(memory_budget_mb=8))
    assert tsdf_map.extract_mesh().is_empty
    cam = PinholeCamera(8, 6, 5.0, 5.0, 3.5, 2.5)
    assert np.isnan(tsdf_map.render_depth(cam, np.eye(4))).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voxel_size": 0.0},
        {"memory_budget_mb": 0.01},  # less than one block
        {"clear_radius": -1.0},
        {"device": "tpu"},
        {"block_resolution": 1},
    ],
)
def test_bad_options_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        MapOptions(**kwargs)


def test_bad_pose_and_depth_are_refused(redwood: PosedFrames) -> None:
    f = redwood.frames[0]
    tsdf_map = TsdfMap(MapOptions(memory_budget_mb=8))
    with pytest.raises(ReconstructionError, match="rigid"):
        tsdf_map.integrate(f.depth_m, f.camera, np.eye(4) * 2)
    with pytest.raises(ReconstructionError, match="camera"):
        tsdf_map.integrate(f.depth_m[:10], f.camera, np.eye(4))


def test_depth_reaches_open3d_as_rounded_millimetres_with_invalid_as_zero() -> None:
    # Hand values: metres x 1000 rounded to the nearest mm; NaN, <= 0, inf and anything not
    # below depth_max (5 m) become 0, which Open3D skips.
    tsdf_map = TsdfMap(MapOptions(voxel_size=0.05, depth_max=5.0))
    depth = np.array([[np.nan, -1.0, 0.0, 1.2344, 1.2346, 4.9999, 5.0, np.inf, 0.0016]],
                     dtype=np.float32)
    mm = tsdf_map._depth_mm(depth)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[0, 0, 0, 1234, 1235, 5000, 0, 0, 2]]
