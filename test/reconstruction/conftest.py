"""Fixtures for the reconstruction tests: the shared RGB-D frames with their ground-truth poses.

The frames live outside the repository (``../shared/data/rgbd``, see its README); a test that
needs them is skipped, saying so, where that folder is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.core.pointcloud import depth_to_points
from recon3d_ros.core.rgbd_io import read_rgbd_frames, RgbdFrame
from recon3d_ros.reconstruction.poses import read_pose_txt, read_trajectory_log

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "rgbd"
#: ICL-NUIM's pose.txt describes a y-up camera; with fy > 0 (intrinsics.json) the optical
#: frame is T_pose @ diag(1, -1, 1, 1) (the data's README). That is a reflection (det -1),
#: which no rigid pose can be: mirroring the world too, F @ T_pose @ F, gives a rotation with
#: the same relative poses (F inv(T0) T1 F) and the same geometry up to the world's mirror.
ICL_FLIP = np.diag([1.0, -1.0, 1.0, 1.0])


@dataclass
class PosedFrames:
    """An RGB-D sequence with camera-to-world ground-truth poses."""

    name: str
    frames: list[RgbdFrame]
    poses: list[np.ndarray]

    def gt_points(self, stride: int = 1) -> np.ndarray:
        """All frames' depth back-projected into the world with the ground-truth poses."""
        out = []
        for f, T in zip(self.frames, self.poses):
            p = depth_to_points(f.depth_m, f.camera, stride=stride).reshape(-1, 3)
            p = p[np.isfinite(p).all(axis=1)].astype(np.float64)
            out.append(p @ T[:3, :3].T + T[:3, 3])
        return np.concatenate(out)


def _folder(name: str) -> Path:
    folder = SHARED / name
    if not (folder / "intrinsics.json").is_file():
        pytest.skip(
            f"{folder} not present: the shared RGB-D frames live outside the repository "
            "(../shared/data/rgbd next to the checkout)"
        )
    return folder


@pytest.fixture(scope="session")
def redwood() -> PosedFrames:
    """Redwood's 5 frames with trajectory.log (accurate to ~5 mm)."""
    folder = _folder("redwood")
    return PosedFrames("redwood", read_rgbd_frames(folder),
                       read_trajectory_log(folder / "trajectory.log"))


@pytest.fixture(scope="session")
def icl() -> PosedFrames:
    """ICL-NUIM's 5 frames with pose.txt turned into optical-frame poses."""
    folder = _folder("icl")
    poses = [ICL_FLIP @ T @ ICL_FLIP for T in read_pose_txt(folder / "pose.txt")]
    return PosedFrames("icl", read_rgbd_frames(folder), poses)
