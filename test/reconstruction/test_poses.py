"""Pose files (TUM, Redwood trajectory.log, pose.txt), the stamped pose buffer, pose errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recon3d_ros.errors import ReconstructionError
from recon3d_ros.reconstruction.poses import (
    pose_error,
    PoseBuffer,
    read_pose_txt,
    read_trajectory_log,
    read_tum,
    write_tum,
)

S = math.sqrt(0.5)
# 90 degrees about z, written out by hand: x -> y, y -> -x.
RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def _rz(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _T(R: np.ndarray, t: tuple[float, float, float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def test_read_tum_hand_written(tmp_path: Path) -> None:
    path = tmp_path / "poses.tum"
    path.write_text(
        "# timestamp tx ty tz qx qy qz qw\n"
        f"1.5 1 2 3 0 0 {S} {S}\n"
        "2.25 0 0 0 0 0 0 2\n"  # not unit length: normalised to the identity
    )
    poses = read_tum(path)
    assert [s for s, _ in poses] == [1.5, 2.25]
    np.testing.assert_allclose(poses[0][1], _T(RZ90, (1, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(poses[1][1], np.eye(4), atol=1e-12)


def test_write_tum_round_trip(tmp_path: Path) -> None:
    poses = [(0.5, _T(RZ90, (1, -2, 0.25))), (1.0, _T(_rz(-170.0), (0, 0, 4)))]
    write_tum(tmp_path / "out.tum", poses)
    back = read_tum(tmp_path / "out.tum")
    for (s0, T0), (s1, T1) in zip(poses, back):
        assert s0 == pytest.approx(s1)
        np.testing.assert_allclose(T1, T0, atol=1e-7)


def test_read_trajectory_log_hand_written(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.log"
    path.write_text(
        "0 0 2\n1 0 0 2\n0 1 0 2\n0 0 1 -0.3\n0 0 0 1\n"
        "1 1 2\n0 -1 0 0.5\n1 0 0 0\n0 0 1 0\n0 0 0 1\n"
    )
    poses = read_trajectory_log(path)
    assert len(poses) == 2
    np.testing.assert_array_equal(poses[0], _T(np.eye(3), (2, 2, -0.3)))
    np.testing.assert_array_equal(poses[1], _T(RZ90, (0.5, 0, 0)))


def test_read_pose_txt_hand_written(tmp_path: Path) -> None:
    path = tmp_path / "pose.txt"
    path.write_text("1 2 3 0 0 0 1\n0 0 -1 1 0 0 0\n")  # identity; 180 degrees about x
    poses = read_pose_txt(path)
    np.testing.assert_allclose(poses[0], _T(np.eye(3), (1, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(poses[1], _T(np.diag([1.0, -1.0, -1.0]), (0, 0, -1)), atol=1e-12)


@pytest.mark.parametrize("text", ["1 2 3 0 0 1\n", "1 2 3 0 0 0 x\n", "1 2 3 0 0 0 0\n"])
def test_bad_pose_rows_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pose.txt"
    path.write_text(text)
    with pytest.raises(ReconstructionError, match="pose.txt"):
        read_pose_txt(path)


def test_trajectory_log_with_a_missing_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.log"
    path.write_text("0 0 1\n1 0 0 0\n0 1 0 0\n0 0 0 1\n")
    with pytest.raises(ReconstructionError, match="multiple of 5"):
        read_trajectory_log(path)


def test_pose_buffer_interpolates_between_neighbours() -> None:
    buf = PoseBuffer(tolerance_s=1.0)
    buf.add(0, np.eye(4))
    buf.add(1_000_000_000, _T(RZ90, (2.0, 0.0, 0.0)))
    T = buf.lookup(250_000_000)
    assert T is not None
    # A quarter of the way: 22.5 degrees about z (SLERP of a single-axis turn), x = 0.5.
    np.testing.assert_allclose(T, _T(_rz(22.5), (0.5, 0.0, 0.0)), atol=1e-9)
    np.testing.assert_allclose(buf.lookup(1_000_000_000), _T(RZ90, (2, 0, 0)), atol=1e-12)


def test_pose_buffer_nearest_and_none_outside_tolerance() -> None:
    buf = PoseBuffer(tolerance_s=0.1)
    buf.add(1_000_000_000, _T(RZ90, (2.0, 0.0, 0.0)))
    buf.add(0, np.eye(4))  # out of order on purpose
    # 50 ms after the last pose: nothing after it to interpolate with, the nearest is in time.
    np.testing.assert_allclose(buf.lookup(1_050_000_000), _T(RZ90, (2, 0, 0)), atol=1e-12)
    # 80 ms after the first: neighbours 80 ms and 920 ms away, only the first within 100 ms.
    np.testing.assert_allclose(buf.lookup(80_000_000), np.eye(4), atol=1e-12)
    assert buf.lookup(500_000_000) is None  # 0.5 s from both
    assert buf.lookup(1_200_000_000) is None
    assert PoseBuffer(0.1).lookup(0) is None


def test_pose_error_hand_computed() -> None:
    c, s = math.cos(math.radians(10)), math.sin(math.radians(10))
    delta = _T(np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), (0.03, 0.04, 0.0))
    T_gt = _T(RZ90, (1.0, 2.0, 3.0))
    t, deg = pose_error(T_gt @ delta, T_gt)
    assert t == pytest.approx(0.05, abs=1e-12)
    assert deg == pytest.approx(10.0, abs=1e-9)
    assert pose_error(T_gt, T_gt) == pytest.approx((0.0, 0.0), abs=1e-6)
