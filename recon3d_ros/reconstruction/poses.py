"""Camera poses: file formats (TUM, Redwood ``trajectory.log``, ``pose.txt``) and a stamped buffer.

Every pose is a 4x4 float64 ``T_world_camera`` (camera-to-world; the camera in its optical
frame, REP 103), which is what these formats store.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import ReconstructionError

__all__ = [
    "PoseBuffer",
    "matrix_from_quaternion",
    "pose_error",
    "quaternion_from_matrix",
    "read_pose_txt",
    "read_trajectory_log",
    "read_tum",
    "slerp",
    "write_tum",
]

Pose = npt.NDArray[np.float64]


def matrix_from_quaternion(qx: float, qy: float, qz: float, qw: float) -> Pose:
    """3x3 rotation of a unit quaternion (normalised here; Hamilton convention, as ROS/TUM)."""
    q = np.array([qx, qy, qz, qw], dtype=np.float64)
    n = float(np.linalg.norm(q))
    if not (math.isfinite(n) and n > 1e-9):
        raise ReconstructionError(f"quaternion {q.tolist()} has no direction (zero or not finite)")
    x, y, z, w = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def quaternion_from_matrix(R: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Return the unit quaternion ``(x, y, z, w)``, ``w >= 0``, of a 3x3 rotation."""
    m = np.asarray(R, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    quat = np.array(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


def _pose(t: Sequence[float], q: Sequence[float], where: str) -> Pose:
    T = np.eye(4)
    try:
        T[:3, :3] = matrix_from_quaternion(*q)
    except ReconstructionError as exc:
        raise ReconstructionError(f"{where}: {exc}") from exc
    T[:3, 3] = t
    return T


def _numbers(line: str, path: Path, lineno: int, count: int) -> list[float]:
    parts = line.replace(",", " ").split()
    try:
        values = [float(v) for v in parts]
    except ValueError as exc:
        raise ReconstructionError(f"{path}:{lineno}: not a row of numbers: {line!r}") from exc
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ReconstructionError(
            f"{path}:{lineno}: expected {count} finite numbers, got {len(values)}: {line!r}"
        )
    return values


def _rows(path: Path) -> list[tuple[int, str]]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ReconstructionError(f"cannot read pose file {path}: {exc}") from exc
    return [
        (i, ln.strip())
        for i, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def read_tum(path: Path | str) -> list[tuple[float, Pose]]:
    """Read a TUM trajectory: rows ``stamp tx ty tz qx qy qz qw`` (stamp in seconds)."""
    p = Path(path)
    out = []
    for lineno, line in _rows(p):
        v = _numbers(line, p, lineno, 8)
        out.append((v[0], _pose(v[1:4], v[4:8], f"{p}:{lineno}")))
    return out


def write_tum(
    path: Path | str, stamped_poses: Iterable[tuple[float, npt.NDArray[np.floating]]]
) -> None:
    """Write ``(stamp_s, T_world_camera)`` pairs as a TUM trajectory."""
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    for stamp, pose in stamped_poses:
        T = np.asarray(pose, dtype=np.float64)
        q = quaternion_from_matrix(T[:3, :3])
        values = [*T[:3, 3], *q]
        lines.append(f"{stamp:.9f} " + " ".join(f"{v:.9g}" for v in values))
    try:
        Path(path).write_text("\n".join(lines) + "\n")
    except OSError as exc:
        raise ReconstructionError(f"cannot write pose file {path}: {exc}") from exc


def read_trajectory_log(path: Path | str) -> list[Pose]:
    """Read a Redwood ``trajectory.log``: per frame a line of 3 ids then a 4x4 matrix."""
    p = Path(path)
    rows = _rows(p)
    if len(rows) % 5:
        raise ReconstructionError(
            f"{p}: {len(rows)} lines is not a multiple of 5 (an id line + 4 matrix rows per frame)"
        )
    poses = []
    for k in range(0, len(rows), 5):
        _numbers(rows[k][1], p, rows[k][0], 3)
        T = np.array([_numbers(line, p, n, 4) for n, line in rows[k + 1:k + 5]])
        poses.append(T)
    return poses


def read_pose_txt(path: Path | str) -> list[Pose]:
    """Read ``pose.txt``: rows ``tx ty tz qx qy qz qw``, one per frame in frame order."""
    p = Path(path)
    out = []
    for lineno, line in _rows(p):
        v = _numbers(line, p, lineno, 7)
        out.append(_pose(v[0:3], v[3:7], f"{p}:{lineno}"))
    return out


def slerp(
    q0: npt.NDArray[np.float64], q1: npt.NDArray[np.float64], t: float
) -> npt.NDArray[np.float64]:
    """Spherical interpolation of unit quaternions ``(x, y, z, w)`` (shortest arc)."""
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    dot = float(a @ b)
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly the same rotation: linear is exact to rounding
        q = a + t * (b - a)
        return np.asarray(q / np.linalg.norm(q))
    theta = math.acos(min(1.0, dot))
    s = math.sin(theta)
    return np.asarray((math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / s)


def pose_error(
    T_est: npt.NDArray[np.floating], T_gt: npt.NDArray[np.floating]
) -> tuple[float, float]:
    """Return the translation (m) and rotation (degrees) of ``inv(T_gt) @ T_est``."""
    E = np.linalg.inv(np.asarray(T_gt, dtype=np.float64)) @ np.asarray(T_est, dtype=np.float64)
    cos = (np.trace(E[:3, :3]) - 1.0) / 2.0
    return float(np.linalg.norm(E[:3, 3])), math.degrees(math.acos(max(-1.0, min(1.0, cos))))


class PoseBuffer:
    """Stamped poses, looked up at a depth frame's stamp.

    :meth:`lookup` gives the pose interpolated between the neighbours around the stamp (SLERP
    rotation, linear translation) when both lie within ``tolerance_s`` of it, else the nearest
    pose within ``tolerance_s``, else None: a frame with no pose is never fused with a guess.
    """

    def __init__(self, tolerance_s: float = 0.05, max_poses: int = 100_000) -> None:
        if not (math.isfinite(tolerance_s) and tolerance_s >= 0):
            raise ReconstructionError(f"pose tolerance must be >= 0 seconds, got {tolerance_s}")
        self.tolerance_ns = int(round(tolerance_s * 1e9))
        self.max_poses = max_poses
        self._stamps: list[int] = []
        self._poses: list[Pose] = []

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_ns: int, pose: npt.NDArray[np.floating]) -> None:
        """Store ``pose`` (T_world_camera) at ``stamp_ns``; a repeated stamp replaces the pose."""
        T = np.asarray(pose, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise ReconstructionError(f"pose must be a finite 4x4 matrix, got shape {T.shape}")
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            self._poses[i] = T
            return
        self._stamps.insert(i, int(stamp_ns))
        self._poses.insert(i, T)
        if len(self._stamps) > self.max_poses:  # the oldest go first
            del self._stamps[0], self._poses[0]

    def lookup(self, stamp_ns: int) -> Pose | None:
        """Return the pose at ``stamp_ns`` (see the class docstring), or None."""
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            return self._poses[i].copy()
        before = i - 1 if i > 0 else None
        after = i if i < len(self._stamps) else None
        tol = self.tolerance_ns
        if before is not None and after is not None:
            s0, s1 = self._stamps[before], self._stamps[after]
            if stamp_ns - s0 <= tol and s1 - stamp_ns <= tol:
                return self._interpolate(before, after, (stamp_ns - s0) / (s1 - s0))
        candidates = [j for j in (before, after) if j is not None]
        if not candidates:
            return None
        j = min(candidates, key=lambda k: abs(self._stamps[k] - stamp_ns))
        return self._poses[j].copy() if abs(self._stamps[j] - stamp_ns) <= tol else None

    def _interpolate(self, i0: int, i1: int, t: float) -> Pose:
        A, B = self._poses[i0], self._poses[i1]
        q = slerp(quaternion_from_matrix(A[:3, :3]), quaternion_from_matrix(B[:3, :3]), t)
        T = np.eye(4)
        T[:3, :3] = matrix_from_quaternion(*q)
        T[:3, 3] = (1 - t) * A[:3, 3] + t * B[:3, 3]
        return T
