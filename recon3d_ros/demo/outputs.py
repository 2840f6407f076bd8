"""Turn what the demo received from the node into files a person can open.

Everything is built from the messages as received (depth image, its CameraInfo, the
PointCloud2), parsed with the package's message readers, so the files show what a real
subscriber of the node gets, not what the node meant to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import Recon3dError

__all__ = [
    "ReceivedFrame",
    "write_frame_files",
    "write_cloud",
    "write_mesh",
    "write_preview",
    "write_intrinsics",
]


@dataclass
class ReceivedFrame:
    """One input frame and the node's answers to it (``None`` where none arrived)."""

    index: int
    name: str
    rgb: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32] | None = None
    camera: PinholeCamera | None = None
    cloud: Any = None  # sensor_msgs/PointCloud2


def write_frame_files(out: Path, frame: ReceivedFrame, near: float, far: float) -> list[Path]:
    """RGB | depth colormap | legend (PNG), the RGB and a 16-bit millimetre depth PNG.

    ``rgb/`` + ``depth/`` + ``intrinsics.json`` follow the RGB-D folder layout, so
    ``recon3d cloud`` and ``recon3d eval`` read the demo's output directly.
    """
    import cv2

    from recon3d_ros.core.encodings import depth_m_to_mm16
    from recon3d_ros.demo.visualize import side_by_side

    written = []
    if frame.depth is None:
        return written
    rgb = frame.rgb
    if rgb.shape[:2] != frame.depth.shape:
        rgb = cv2.resize(
            rgb, (frame.depth.shape[1], frame.depth.shape[0]), interpolation=cv2.INTER_AREA
        )
    for sub in ("colormap", "rgb", "depth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    paths = (
        out / "colormap" / f"{frame.name}.png",
        out / "rgb" / f"{frame.name}.png",
        out / "depth" / f"{frame.name}.png",
    )
    cv2.imwrite(str(paths[0]), side_by_side(rgb, frame.depth, near, far))
    cv2.imwrite(str(paths[1]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths[2]), depth_m_to_mm16(frame.depth))
    written.extend(paths)
    return written


def write_intrinsics(out: Path, camera: PinholeCamera, names: Sequence[str]) -> Path:
    """Write the folder's ``intrinsics.json`` in the layout ``recon3d eval`` reads."""
    from recon3d_ros.core.rgbd_io import write_intrinsics_json

    note = "depth predicted by the recon3d depth node (not ground truth)"
    return write_intrinsics_json(out, camera, names, "rgb/{i}.png", note)


def write_cloud(path: Path, cloud_msg: Any) -> int:
    """Write the received cloud as a binary colour PLY without NaN points; return the count."""
    from recon3d_ros.core.ply import write_ply
    from recon3d_ros.ros.conversions import cloud_msg_to_xyzrgb

    xyz, colors = cloud_msg_to_xyzrgb(cloud_msg)
    write_ply(path, xyz, colors)
    return int(xyz.shape[0])


def write_mesh(path: Path, frame: ReceivedFrame, max_edge_ratio: float = 0.05) -> tuple[int, int]:
    """Write a triangle mesh of the received depth, coloured by the input image."""
    import cv2

    from recon3d_ros.core.ply import depth_to_mesh, write_ply

    if frame.depth is None or frame.camera is None:
        raise Recon3dError(
            f"frame {frame.name} has no depth/camera_info from the node; no mesh to write"
        )
    rgb = frame.rgb
    if rgb.shape[:2] != frame.depth.shape:
        rgb = cv2.resize(
            rgb, (frame.depth.shape[1], frame.depth.shape[0]), interpolation=cv2.INTER_AREA
        )
    vertices, colors, faces = depth_to_mesh(
        frame.depth, frame.camera, rgb=rgb, max_edge_ratio=max_edge_ratio
    )
    write_ply(path, vertices, colors, faces)
    return int(len(vertices)), int(len(faces))


def write_preview(ply_path: Path, png_path: Path, width: int = 800, height: int = 600) -> int:
    """Render the PLY (read back from disk) from above and to the side; returns its point count."""
    import cv2

    from recon3d_ros.core.ply import read_ply
    from recon3d_ros.demo.visualize import render_points

    data = read_ply(ply_path)
    points, colors = data.points, data.colors
    views = [
        render_points(points, colors, width // 2, height, yaw_deg=yaw, pitch_deg=pitch)
        for yaw, pitch in ((35.0, 20.0), (-35.0, 10.0))
    ]
    image = np.concatenate(views, axis=1)
    cv2.putText(
        image,
        f"{ply_path.name}: {len(points)} points, two side views",
        (8, 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (230, 230, 230),
        1,
        cv2.LINE_AA,
    )
    cv2.imwrite(str(png_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return int(len(points))
