"""The RGB-D folders ``recon3d eval`` and training read: both layouts of ``../shared/data/rgbd``.

* ``intrinsics.json`` (read by :mod:`recon3d_ros.core.rgbd_io`): colour + 16-bit depth files,
  stored value / depth_scale = metres, 0 = no measurement (kinect_room, redwood, icl, ``recon3d
  synth``/``demo`` output and a user's own recordings);
* KITTI: ``<id>.png`` + ``<id>.bin`` (LiDAR N x 4 float32) + ``<id>_calib.json`` (``lidar2img``,
  ``cam2img``): the scan is projected into the image as sparse ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.rgbd_io import INTRINSICS_FILE, read_rgb, read_rgbd_frames, RgbdFrame
from recon3d_ros.errors import DatasetError

__all__ = ["load_rgbd_folder", "project_lidar"]


def project_lidar(
    points: npt.NDArray[np.floating], lidar2img: npt.NDArray[np.floating], width: int, height: int
) -> npt.NDArray[np.float32]:
    """Sparse depth image (NaN = no return) from LiDAR points and a 4x4 LiDAR-to-image matrix.

    Where several points land on one pixel the nearest wins (the farther one is occluded).
    """
    pts = np.asarray(points, dtype=np.float64)[:, :3]
    homo = (
        np.concatenate([pts, np.ones((pts.shape[0], 1))], axis=1)
        @ np.asarray(lidar2img, np.float64).T
    )
    z = homo[:, 2]
    front = z > 1e-3
    u = np.round(homo[front, 0] / z[front]).astype(np.int64)
    v = np.round(homo[front, 1] / z[front]).astype(np.int64)
    zf = z[front]
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    u, v, zf = u[inside], v[inside], zf[inside]
    order = np.argsort(-zf)  # far first, so nearer points overwrite them
    depth = np.full((height, width), np.nan, dtype=np.float32)
    depth[v[order], u[order]] = zf[order].astype(np.float32)
    return depth


def _load_kitti(folder: Path) -> list[RgbdFrame]:
    frames = []
    for calib_path in sorted(folder.glob("*_calib.json")):
        fid = calib_path.name[: -len("_calib.json")]
        try:
            calib = json.loads(calib_path.read_text())
            lidar2img = np.asarray(calib["lidar2img"], dtype=np.float64)
            cam2img = np.asarray(calib["cam2img"], dtype=np.float64)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"cannot read KITTI calibration {calib_path}: {exc}") from exc
        rgb = read_rgb(folder / f"{fid}.png")
        h, w = rgb.shape[:2]
        bin_path = folder / f"{fid}.bin"
        try:
            scan = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"cannot read LiDAR scan {bin_path} (N x 4 float32): {exc}"
            ) from exc
        camera = PinholeCamera(
            w,
            h,
            float(cam2img[0, 0]),
            float(cam2img[1, 1]),
            float(cam2img[0, 2]),
            float(cam2img[1, 2]),
        )
        frames.append(RgbdFrame(rgb, project_lidar(scan, lidar2img, w, h), camera, fid))
    return frames


def load_rgbd_folder(path: str | Path) -> list[RgbdFrame]:
    """All frames of an RGB-D folder (see module doc for the layouts)."""
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"RGB-D folder {folder} does not exist")
    if (folder / INTRINSICS_FILE).exists():
        return read_rgbd_frames(folder)
    if any(folder.glob("*_calib.json")):
        return _load_kitti(folder)
    raise DatasetError(
        f"{folder} has neither {INTRINSICS_FILE} nor KITTI *_calib.json files; see "
        "docs/MODEL.md for the folder layout (intrinsics.json with fx, fy, cx, cy, width, "
        "height, depth_scale, color, depth, frames)"
    )
