"""The demo's synthetic camera sequence: one scene, a slow forward walk with a pan."""

from __future__ import annotations

import numpy as np
import pytest

from recon3d_ros.demo.trajectory import render_sequence, sequence_poses
from recon3d_ros.synth import look_rotation
from recon3d_ros.synth.scenes import CameraPose


def test_poses_walk_level_and_stay_rotations() -> None:
    start = CameraPose((1.0, 1.2, -0.5), look_rotation(0.3, -0.2))
    poses = sequence_poses(start, 5, step_m=0.1, pan_deg=10.0)
    assert poses[0].position == pytest.approx(start.position)
    np.testing.assert_allclose(poses[0].rotation, start.rotation, atol=1e-12)
    steps = np.diff(np.array([p.position for p in poses]), axis=0)
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), 0.1, rtol=1e-9)
    np.testing.assert_allclose(steps[:, 1], 0.0, atol=1e-12)  # level walk despite the pitch
    for pose in poses:
        np.testing.assert_allclose(pose.rotation.T @ pose.rotation, np.eye(3), atol=1e-12)
    assert not np.allclose(poses[1].rotation, poses[0].rotation)  # the camera pans


def test_render_sequence_frames_move_through_one_scene() -> None:
    frames = list(render_sequence(2, 32, 24, seed=3, step_m=0.3, pan_deg=0.0))
    assert [f.index for f in frames] == [0, 1]
    for frame in frames:
        assert frame.rgb.shape == (24, 32, 3) and frame.depth.shape == (24, 32)
        assert np.isfinite(frame.depth).mean() > 0.5
    # Walking forward 0.3 m without panning brings the centre of the view closer.
    centre = (slice(10, 14), slice(14, 18))
    assert np.nanmedian(frames[1].depth[centre]) < np.nanmedian(frames[0].depth[centre])
