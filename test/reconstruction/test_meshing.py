"""IncrementalMesh: the map's mesh kept per block, re-meshing only the blocks that changed.

The reference is Open3D's own extraction of the whole grid (:meth:`TsdfMap.extract_mesh`): the
blocks' triangles together must be exactly its triangles (positions and colours), after every
frame and eviction, while an update re-meshes only the blocks around what changed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open3d")

from recon3d_ros.reconstruction.meshing import IncrementalMesh  # noqa: E402
from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap  # noqa: E402

from .conftest import PosedFrames  # noqa: E402

VOXEL = 0.05


def _walk(redwood: PosedFrames, i: int) -> tuple[object, np.ndarray]:
    """Frame i of a camera replaying redwood's 5 frames, each pass 1 m further along x."""
    frame = redwood.frames[i % 5]
    T = redwood.poses[i % 5].copy()
    T[0, 3] += (i // 5) * 1.0
    return frame, T


def _triangles(corners: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Triangles as sorted rows of 3 x (x y z r g b), an order-free multiset to compare."""
    rows = np.hstack([np.round(corners.astype(np.float64), 4), colors.astype(np.float64)])
    return np.sort(rows.reshape(-1, 18), axis=0)


def _full(tsdf_map: TsdfMap) -> np.ndarray:
    mesh = tsdf_map.extract_mesh()
    return _triangles(mesh.vertices[mesh.triangles].reshape(-1, 3),
                      mesh.colors[mesh.triangles].reshape(-1, 3))


def test_incremental_mesh_equals_open3ds_whole_mesh_through_fusion_and_eviction(
    redwood: PosedFrames,
) -> None:
    # A 4 MB budget (51 blocks) makes the walk evict blocks as it goes.
    tsdf_map = TsdfMap(MapOptions(voxel_size=VOXEL, memory_budget_mb=4.0))
    mesher = IncrementalMesh(tsdf_map)
    for i in range(25):
        frame, T = _walk(redwood, i)
        tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
        if i % 3 == 0:
            assert mesher.update()
            ours = _triangles(*mesher.triangle_list())
            assert ours.shape[0] > 0
            np.testing.assert_allclose(ours, _full(tsdf_map), atol=2e-4)
    assert tsdf_map.blocks_freed > 0  # the eviction path ran
    mesher.update()
    np.testing.assert_allclose(_triangles(*mesher.triangle_list()), _full(tsdf_map), atol=2e-4)
    assert mesher.triangle_count == len(tsdf_map.extract_mesh().triangles)


def test_an_unchanged_map_is_not_meshed_again_and_a_frame_re_meshes_only_its_blocks(
    redwood: PosedFrames, monkeypatch: pytest.MonkeyPatch,
) -> None:
    tsdf_map = TsdfMap(MapOptions(voxel_size=VOXEL, memory_budget_mb=64.0))
    mesher = IncrementalMesh(tsdf_map)
    for i in range(40):  # a corridor: the last frame sees a small part of it
        frame, T = _walk(redwood, i)
        tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
    assert mesher.update()
    calls: list[object] = []
    extract = tsdf_map.extract_block_meshes
    monkeypatch.setattr(tsdf_map, "extract_block_meshes",
                        lambda owners=None: calls.append(owners) or extract(owners))
    assert not mesher.update()  # nothing fused since: no extraction at all
    assert calls == []
    frame, T = _walk(redwood, 40)
    tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
    assert mesher.update()
    assert len(calls) == 1 and calls[0] is not None
    assert 0 < mesher.blocks_meshed < tsdf_map.block_count / 2
    np.testing.assert_allclose(_triangles(*mesher.triangle_list()), _full(tsdf_map), atol=2e-4)


def test_reset_gives_an_empty_mesh(redwood: PosedFrames) -> None:
    tsdf_map = TsdfMap(MapOptions(voxel_size=VOXEL))
    mesher = IncrementalMesh(tsdf_map)
    frame, T = _walk(redwood, 0)
    tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
    assert mesher.update() and mesher.triangle_count > 0
    tsdf_map.reset()
    assert mesher.update()
    corners, colors = mesher.triangle_list()
    assert corners.shape == (0, 3) and colors.shape == (0, 3) and mesher.triangle_count == 0


def test_max_triangles_keeps_the_nearest_whole_blocks(redwood: PosedFrames) -> None:
    tsdf_map = TsdfMap(MapOptions(voxel_size=VOXEL))
    mesher = IncrementalMesh(tsdf_map)
    for i in range(20):
        frame, T = _walk(redwood, i)
        tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
    mesher.update()
    every = mesher.blocks()
    total = sum(b.triangle_count for b in every)
    camera = T[:3, 3]
    limit = total // 3
    kept = mesher.blocks(limit, camera)
    assert 0 < sum(b.triangle_count for b in kept) <= limit
    size = tsdf_map.options.block_size

    def distance(block: object) -> float:
        return float(np.linalg.norm((np.asarray(block.key) + 0.5) * size - camera))

    kept_keys = {b.key for b in kept}
    left_out = [b for b in every if b.key not in kept_keys]
    assert left_out and max(map(distance, kept)) <= min(map(distance, left_out))
    corners, _ = mesher.triangle_list(limit, camera)
    assert len(corners) == 3 * sum(b.triangle_count for b in kept)
    assert len(mesher.triangle_list()[0]) == 3 * total  # 0: no limit


def test_changes_nobody_takes_stay_bounded(redwood: PosedFrames) -> None:
    # recon3d reconstruct never meshes incrementally: the record must not grow per frame.
    tsdf_map = TsdfMap(MapOptions(voxel_size=VOXEL, memory_budget_mb=2.0))  # 25 blocks
    assert tsdf_map.take_changes() is None  # a new map: everything
    for i in range(150):
        frame, T = _walk(redwood, i)
        tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
    assert len(tsdf_map._changed) <= 65
    assert tsdf_map.take_changes() is None  # more than the map holds changed: mesh it all
    frame, T = _walk(redwood, 150)
    tsdf_map.integrate(frame.depth_m, frame.camera, T, frame.rgb)
    changed = tsdf_map.take_changes()
    assert changed is not None and 0 < len(changed) <= tsdf_map.options.max_blocks
    assert tsdf_map.take_changes().shape == (0, 3)
