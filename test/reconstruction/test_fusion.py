"""Reconstructor: frames with no pose, odometry-estimated poses, scale kept consistent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

o3d = pytest.importorskip("open3d", reason="Open3D is needed: pip install open3d-cpu==0.20.0")

from recon3d_ros.errors import ConfigError  # noqa: E402
from recon3d_ros.reconstruction.fusion import Reconstructor  # noqa: E402
from recon3d_ros.reconstruction.tsdf import MapOptions  # noqa: E402

from .conftest import PosedFrames  # noqa: E402

OPTIONS = MapOptions(voxel_size=0.02, memory_budget_mb=64)


def _distances(vertices: np.ndarray, data: PosedFrames) -> np.ndarray:
    q = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(vertices.astype(np.float64)))
    t = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(data.gt_points(stride=2)))
    return np.asarray(q.compute_point_cloud_distance(t))


def _median_error(vertices: np.ndarray, data: PosedFrames) -> float:
    return float(np.median(_distances(vertices, data)))


def test_redwood_with_gt_poses(redwood: PosedFrames) -> None:
    rec = Reconstructor(OPTIONS)
    for k, (f, T) in enumerate(zip(redwood.frames, redwood.poses)):
        outcome = rec.add_frame(f.rgb, f.depth_m, f.camera, T, stamp_ns=k)
        assert outcome.fused and outcome.reason == "" and outcome.scale == 1.0
        assert "integrate_ms" in outcome.timings
    mesh = rec.map.extract_mesh()
    assert not mesh.is_empty
    assert _median_error(mesh.vertices, redwood) < 0.01
    s = rec.summary()
    assert (s["frames"], s["fused"], s["rejected"]) == (5, 5, 0)
    assert s["map"]["blocks"] == rec.map.block_count > 0
    assert s["ms_mean"]["integrate_ms"] > 0


def test_frames_without_pose_are_counted_not_fused(redwood: PosedFrames) -> None:
    rec = Reconstructor(OPTIONS)
    f = redwood.frames[0]
    outcome = rec.add_frame(f.rgb, f.depth_m, f.camera, None)
    assert not outcome.fused and outcome.reason.startswith("no_pose")
    assert rec.map.block_count == 0
    empty = np.full_like(f.depth_m, np.nan)
    assert rec.add_frame(f.rgb, empty, f.camera, redwood.poses[0]).reason.startswith(
        "no_valid_depth"
    )
    s = rec.summary()
    assert s["fused"] == 0 and s["rejected_by_reason"] == {"no_pose": 1, "no_valid_depth": 1}


def test_odometry_poses_follow_ground_truth(redwood: PosedFrames) -> None:
    rec = Reconstructor(OPTIONS, odometry=True)
    T0 = redwood.poses[0]
    for f, T_gt in zip(redwood.frames, redwood.poses):
        outcome = rec.add_frame(f.rgb, f.depth_m, f.camera, None)
        assert outcome.fused, outcome.reason
        # The first frame is the world: compare with the GT relative to frame 0.
        expected = np.linalg.inv(T0) @ T_gt
        assert np.linalg.norm(outcome.pose[:3, 3] - expected[:3, 3]) < 0.05
    assert rec.summary()["ms_mean"]["odometry_ms"] > 0


def test_map_scale_mode_undoes_a_0_8x_frame(redwood: PosedFrames) -> None:
    """A 0.8x depth frame fused as is doubles surfaces; scale_mode map rescales it first.

    Ghosts show as mesh vertices far (> 3 cm) from every ground-truth surface point.
    """
    ghost_share = {}
    for mode, factor in (("gt", 1.0), ("none", 0.8), ("map", 0.8)):
        rec = Reconstructor(OPTIONS, scale_mode="map" if mode == "map" else "none")
        for k, (f, T) in enumerate(zip(redwood.frames, redwood.poses)):
            depth = f.depth_m * np.float32(factor) if k == 2 else f.depth_m
            outcome = rec.add_frame(f.rgb, depth, f.camera, T)
            if mode == "map":
                expected = 1.0 / 0.8 if k == 2 else 1.0
                assert outcome.scale == pytest.approx(expected, rel=0.005), f"frame {k}"
        d = _distances(rec.map.extract_mesh().vertices, redwood)
        ghost_share[mode] = float((d > 0.03).mean())
        if mode == "map":
            assert np.median(d) < 0.01
    print(ghost_share)
    assert ghost_share["none"] > ghost_share["gt"] + 0.1  # the 0.8x frame's doubled surfaces
    assert ghost_share["map"] < ghost_share["gt"] + 0.02


def test_bad_scale_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="scale_mode"):
        Reconstructor(OPTIONS, scale_mode="sparse")  # type: ignore[arg-type]


def test_odometry_computes_each_frames_features_once_with_the_same_poses(
    redwood: PosedFrames, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each frame is 'current' for one pair and 'previous' for the next: ORB runs once on it.

    The poses must be those of the uncached path: estimate_motion on each consecutive pair
    (both frames from scratch), chained with the last motion as the next guess.
    """
    import cv2

    from recon3d_ros.reconstruction.odometry import estimate_motion

    frames = redwood.frames
    expected = [np.eye(4)]
    last = None
    for a, b in zip(frames, frames[1:]):
        result = estimate_motion(a.rgb, a.depth_m, b.rgb, b.depth_m, a.camera, init=last)
        assert result.ok, result.reason
        last = result.pose
        expected.append(expected[-1] @ result.pose)

    calls: list[int] = []
    orb_create = cv2.ORB_create

    class CountingOrb:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self._orb = orb_create(*args, **kwargs)

        def detectAndCompute(self, *args: object) -> object:  # noqa: N802 - OpenCV's name
            calls.append(1)
            return self._orb.detectAndCompute(*args)

    monkeypatch.setattr(cv2, "ORB_create", CountingOrb)
    rec = Reconstructor(MapOptions(voxel_size=0.05), odometry=True)
    poses = []
    for f in frames:
        outcome = rec.add_frame(f.rgb, f.depth_m, f.camera, None)
        assert outcome.fused, outcome.reason
        poses.append(outcome.pose)
    assert len(calls) == len(frames)  # not 2 per pair
    for got, want in zip(poses, expected):
        # Open3D's multi-threaded refinement differs by ~5e-6 between two identical calls.
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_a_resumed_map_continues_odometry_from_its_last_frame(
    redwood: PosedFrames, tmp_path: Path
) -> None:
    # Frames 0-2 fused with estimated poses, the map and its anchor saved; a new Reconstructor
    # on the loaded map places frames 3-4 in the same world (frame 0), checked against the
    # ground truth relative to frame 0. Without the anchor both would be refused.
    from recon3d_ros.reconstruction.fusion import ANCHOR_FILE
    from recon3d_ros.reconstruction.tsdf import TsdfMap

    first = Reconstructor(MapOptions(voxel_size=0.05), odometry=True)
    for f in redwood.frames[:3]:
        assert first.add_frame(f.rgb, f.depth_m, f.camera, None).fused
    first.map.save(tmp_path / "map")
    assert first.save_anchor(tmp_path / "map") == tmp_path / "map" / ANCHOR_FILE

    cold = Reconstructor(odometry=True, tsdf_map=TsdfMap.load(tmp_path / "map"))
    f3 = redwood.frames[3]
    refused = cold.add_frame(f3.rgb, f3.depth_m, f3.camera, None)
    assert not refused.fused and refused.reason.startswith("no_pose")

    resumed = Reconstructor(odometry=True, tsdf_map=TsdfMap.load(tmp_path / "map"))
    assert resumed.load_anchor(tmp_path / "map")
    T0 = redwood.poses[0]
    for f, T_gt in zip(redwood.frames[3:], redwood.poses[3:]):
        outcome = resumed.add_frame(f.rgb, f.depth_m, f.camera, None)
        assert outcome.fused, outcome.reason
        expected = np.linalg.inv(T0) @ T_gt
        assert np.linalg.norm(outcome.pose[:3, 3] - expected[:3, 3]) < 0.05


def test_no_anchor_to_load_is_false_and_a_broken_one_an_error(tmp_path: Path) -> None:
    from recon3d_ros.errors import ReconstructionError
    from recon3d_ros.reconstruction.fusion import ANCHOR_FILE

    rec = Reconstructor(MapOptions(voxel_size=0.05), odometry=True)
    assert rec.save_anchor(tmp_path) is None  # nothing fused yet
    assert rec.load_anchor(tmp_path) is False
    (tmp_path / ANCHOR_FILE).write_bytes(b"not an npz")
    with pytest.raises(ReconstructionError, match="is not an odometry anchor"):
        rec.load_anchor(tmp_path)
