"""Demo output files built from received messages."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from std_msgs.msg import Header

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.ply import read_ply
from recon3d_ros.core.pointcloud import depth_to_cloud
from recon3d_ros.demo.outputs import (
    ReceivedFrame,
    write_cloud,
    write_frame_files,
    write_mesh,
    write_preview,
)
from recon3d_ros.ros.conversions import cloud_msg_to_xyzrgb, cloud_to_msg

CAMERA = PinholeCamera(6, 4, 5.0, 5.0, 2.5, 1.5)


def _frame() -> ReceivedFrame:
    depth = np.linspace(1.0, 2.0, 24, dtype=np.float32).reshape(4, 6)
    depth[1, 2] = np.nan
    rgb = np.arange(72, dtype=np.uint8).reshape(4, 6, 3)
    msg = cloud_to_msg(depth_to_cloud(depth, CAMERA, rgb), Header(frame_id="cam"))
    return ReceivedFrame(0, "frame_0000", rgb, depth, CAMERA, msg)


def test_cloud_message_to_points_drops_nan(tmp_path: Path) -> None:
    frame = _frame()
    xyz, colors = cloud_msg_to_xyzrgb(frame.cloud)
    valid = np.isfinite(frame.depth).reshape(-1)
    assert xyz.shape == (23, 3)
    np.testing.assert_allclose(xyz[:, 2], frame.depth.reshape(-1)[valid])
    np.testing.assert_array_equal(colors, frame.rgb.reshape(-1, 3)[valid])
    assert write_cloud(tmp_path / "c.ply", frame.cloud) == 23
    ply = read_ply(tmp_path / "c.ply")
    np.testing.assert_allclose(ply.points, xyz)
    assert write_preview(tmp_path / "c.ply", tmp_path / "p.png") == 23
    assert cv2.imread(str(tmp_path / "p.png")).shape == (600, 800, 3)


def test_frame_files_store_millimetres(tmp_path: Path) -> None:
    frame = _frame()
    write_frame_files(tmp_path, frame, 1.0, 2.0)
    mm = cv2.imread(str(tmp_path / "depth" / "frame_0000.png"), cv2.IMREAD_UNCHANGED)
    assert mm.dtype == np.uint16 and mm[1, 2] == 0
    expected = np.round(np.nan_to_num(frame.depth) * 1000).astype(np.uint16)
    np.testing.assert_array_equal(mm, expected)
    rgb = cv2.cvtColor(cv2.imread(str(tmp_path / "rgb" / "frame_0000.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(rgb, frame.rgb)
    assert (tmp_path / "colormap" / "frame_0000.png").is_file()
    vertices, faces = write_mesh(tmp_path / "m.ply", frame, max_edge_ratio=0.5)
    assert vertices == 23 and faces == 2 * 3 * 5 - 6  # the NaN pixel removes its 6 triangles


def test_depth_beyond_16_bit_millimetres_is_stored_as_no_reading(tmp_path: Path) -> None:
    """As `recon3d synth` stores it: 0, never a false 65.535 m (or a wrapped value)."""
    frame = _frame()
    frame.depth[0, 0], frame.depth[0, 1], frame.depth[0, 2] = 70.0, 65.535, np.inf
    write_frame_files(tmp_path, frame, 1.0, 2.0)
    mm = cv2.imread(str(tmp_path / "depth" / "frame_0000.png"), cv2.IMREAD_UNCHANGED)
    assert mm[0, :3].tolist() == [0, 65535, 0]
