"""Reader for RGB-D folders in the ``../shared/data/rgbd`` layout.

Two layouts are understood:

* ``intrinsics.json`` (fx, fy, cx, cy, width, height, depth_scale, ``color``/``depth`` file
  patterns with ``{i}``, ``frames``): 16-bit PNG or PGM depth, stored value / depth_scale =
  metres, 0 = no measurement (kinect_room, redwood, icl, and a user's own recordings);
* KITTI: ``<id>.png`` + ``<id>.bin`` (LiDAR N x 4 float32) + ``<id>_calib.json`` (``lidar2img``,
  ``cam2img``): the scan is projected into the image as sparse ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import DatasetError

__all__ = ["RgbdFrame", "load_rgbd_folder", "project_lidar", "write_intrinsics_json"]


@dataclass(frozen=True)
class RgbdFrame:
    """One RGB image with metric ground truth: ``depth_m`` is NaN where nothing was measured."""

    rgb: npt.NDArray[np.uint8]  # H x W x 3, RGB order
    depth_m: npt.NDArray[np.float32]  # H x W metres
    camera: PinholeCamera
    name: str


def _read_rgb(path: Path) -> npt.NDArray[np.uint8]:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot read colour image {path}: missing or not an image file")
    return np.ascontiguousarray(img[..., ::-1])


def _read_depth(path: Path, depth_scale: float) -> npt.NDArray[np.float32]:
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DatasetError(f"cannot read depth image {path}: missing or not an image file")
    if raw.ndim != 2:
        raise DatasetError(
            f"depth image {path} has {raw.shape[2]} channels; "
            "expected a single-channel 16-bit image"
        )
    if raw.dtype != np.uint16:
        raise DatasetError(
            f"depth image {path} is {raw.dtype}; expected 16-bit unsigned (PNG or PGM)"
        )
    depth = raw.astype(np.float32) / np.float32(depth_scale)
    depth[raw == 0] = np.nan
    return depth


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
        rgb = _read_rgb(folder / f"{fid}.png")
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
    info_path = folder / "intrinsics.json"
    if not info_path.exists():
        if any(folder.glob("*_calib.json")):
            return _load_kitti(folder)
        raise DatasetError(
            f"{folder} has neither intrinsics.json nor KITTI *_calib.json files; see "
            "docs/MODEL.md for the folder layout (intrinsics.json with fx, fy, cx, cy, "
            "width, height, "
            "depth_scale, color, depth, frames)"
        )
    try:
        info = json.loads(info_path.read_text())
        fx, fy = float(info["fx"]), abs(float(info["fy"]))  # ICL-NUIM stores fy negated
        cx, cy = float(info["cx"]), float(info["cy"])
        depth_scale = float(info.get("depth_scale", 1000.0))
        color_pattern, depth_pattern = str(info["color"]), str(info["depth"])
        ids = [str(i) for i in info["frames"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"cannot read {info_path}: {exc!r}; it needs fx, fy, cx, cy, color, depth, frames"
        ) from exc
    if depth_scale <= 0:
        raise DatasetError(f"{info_path}: depth_scale must be > 0, got {depth_scale}")
    frames = []
    for fid in ids:
        rgb = _read_rgb(folder / color_pattern.format(i=fid))
        depth = _read_depth(folder / depth_pattern.format(i=fid), depth_scale)
        if depth.shape != rgb.shape[:2]:
            raise DatasetError(
                f"frame {fid} of {folder}: depth is {depth.shape[1]}x{depth.shape[0]} "
                "but colour is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; register depth to colour first"
            )
        h, w = rgb.shape[:2]
        iw, ih = int(info.get("width", w)), int(info.get("height", h))
        camera = PinholeCamera(iw, ih, fx, fy, cx, cy)
        if (iw, ih) != (w, h):
            camera = camera.resized(w, h)
        frames.append(RgbdFrame(rgb, depth, camera, fid))
    if not frames:
        raise DatasetError(f"{info_path} lists no frames")
    return frames


def write_intrinsics_json(
    folder: Path, camera: PinholeCamera, frames: Sequence[str], color: str, note: str
) -> Path:
    """Write the ``intrinsics.json`` that :func:`load_rgbd_folder` reads (millimetre PNG depth).

    ``color`` is the colour file pattern, e.g. ``"color/{i}.png"``; depth is ``depth/{i}.png``.
    """
    path = Path(folder) / "intrinsics.json"
    info = {
        "fx": camera.fx,
        "fy": camera.fy,
        "cx": camera.cx,
        "cy": camera.cy,
        "width": camera.width,
        "height": camera.height,
        "depth_scale": 1000.0,
        "color": color,
        "depth": "depth/{i}.png",
        "frames": list(frames),
        "note": note,
    }
    path.write_text(json.dumps(info, indent=1))
    return path
