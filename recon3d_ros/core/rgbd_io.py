"""RGB-D folders on disk: colour images, depth images and ``intrinsics.json``.

The layout is the one of ``../shared/data/rgbd`` and of ``recon3d demo``/``recon3d synth``
output: ``intrinsics.json`` holds ``fx, fy, cx, cy`` (pixels) for a ``width`` x ``height``
image, ``depth_scale`` (stored depth value / depth_scale = metres), the ``color`` and ``depth``
file patterns with ``{i}`` and the ``frames`` ids. Depth files are 16-bit PNG/PGM/TIFF; a stored
0 means "no measurement" and reads as NaN. Every recon3d reader of such files goes through here,
so the rules (units, missing values, channel order, calibrations made at another resolution)
hold alike for ``recon3d eval``, ``recon3d cloud``, the demo and training.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import CameraModelError, DatasetError

__all__ = [
    "DEFAULT_DEPTH_SCALE",
    "DEFAULT_HFOV_DEG",
    "IMAGE_SUFFIXES",
    "INTRINSICS_FILE",
    "Intrinsics",
    "RgbdFrame",
    "RgbdLayout",
    "camera_for",
    "image_files",
    "read_depth",
    "read_intrinsics",
    "read_layout",
    "read_rgb",
    "read_rgbd_frames",
    "write_intrinsics_json",
]

INTRINSICS_FILE = "intrinsics.json"
#: Stored units per metre when nothing says otherwise: millimetres, as Kinect-style sensors write.
DEFAULT_DEPTH_SCALE = 1000.0
#: Horizontal field of view given to images that come without a calibration (a typical webcam).
DEFAULT_HFOV_DEG = 60.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")

PathLike = str | Path


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole calibration, made for a ``width`` x ``height`` image (``None``: any size)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int | None = None
    height: int | None = None
    depth_scale: float | None = None

    def camera(self, width: int, height: int, frame_id: str = "") -> PinholeCamera:
        """Place this calibration on a ``width`` x ``height`` image.

        A calibration made at another resolution is rescaled (same field of view), which is
        what a camera driver's binning or a resized image needs.
        """
        cal_w = width if self.width is None else self.width
        cal_h = height if self.height is None else self.height
        camera = PinholeCamera(cal_w, cal_h, self.fx, self.fy, self.cx, self.cy, frame_id=frame_id)
        return camera if (cal_w, cal_h) == (width, height) else camera.resized(width, height)


@dataclass(frozen=True)
class RgbdLayout:
    """What an RGB-D folder's ``intrinsics.json`` says about its files."""

    intrinsics: Intrinsics
    color: str  # file pattern relative to the folder, with ``{i}`` for the frame id
    depth: str
    frames: tuple[str, ...]
    depth_scale: float


@dataclass(frozen=True)
class RgbdFrame:
    """One RGB image with metric ground truth: ``depth_m`` is NaN where nothing was measured."""

    rgb: npt.NDArray[np.uint8]  # H x W x 3, RGB order
    depth_m: npt.NDArray[np.float32]  # H x W metres
    camera: PinholeCamera
    name: str


def _intrinsics_from(data: dict[str, Any], where: str) -> Intrinsics:
    missing = [k for k in ("fx", "fy", "cx", "cy") if k not in data]
    if missing:
        raise CameraModelError(
            f"intrinsics {where} must give fx, fy, cx, cy (pixels); missing {missing}"
        )
    try:
        width, height = data.get("width"), data.get("height")
        scale = data.get("depth_scale")
        return Intrinsics(
            fx=float(data["fx"]),
            # ICL-NUIM's programs store fy negated (a y-up camera); images are y-down.
            fy=abs(float(data["fy"])),
            cx=float(data["cx"]),
            cy=float(data["cy"]),
            width=None if width is None else int(width),
            height=None if height is None else int(height),
            depth_scale=None if scale is None else float(scale),
        )
    except (TypeError, ValueError) as exc:
        raise CameraModelError(
            f"intrinsics {where} holds a value that is not a number: {exc}"
        ) from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CameraModelError(f"cannot read intrinsics JSON {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CameraModelError(
            f"intrinsics file {path} must be a JSON object with fx, fy, cx, cy (pixels)"
        )
    return data


def read_intrinsics(path: PathLike) -> Intrinsics:
    """Read ``{"fx", "fy", "cx", "cy", ["width", "height", "depth_scale"]}`` from a JSON file.

    This is an RGB-D folder's ``intrinsics.json``; other keys are ignored.
    """
    p = Path(path)
    return _intrinsics_from(_read_json(p), f"file {p}")


def camera_for(
    width: int,
    height: int,
    intrinsics: Intrinsics | None = None,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    frame_id: str = "camera_optical_frame",
) -> PinholeCamera:
    """Give a ``width`` x ``height`` image its calibration's camera, else a ``hfov_deg`` guess."""
    if intrinsics is None:
        return PinholeCamera.from_fov(width, height, hfov_deg, frame_id=frame_id)
    return intrinsics.camera(width, height, frame_id=frame_id)


def read_layout(folder: PathLike) -> RgbdLayout:
    """Parse ``folder/intrinsics.json`` (it needs the calibration, both patterns and frames)."""
    path = Path(folder) / INTRINSICS_FILE
    data = _read_json(path)
    intrinsics = _intrinsics_from(data, f"file {path}")
    try:
        color, depth = str(data["color"]), str(data["depth"])
        frames = tuple(str(i) for i in data["frames"])
    except (KeyError, TypeError) as exc:
        raise DatasetError(
            f"cannot read {path}: {exc!r}; it needs fx, fy, cx, cy, color, depth, frames"
        ) from exc
    scale = DEFAULT_DEPTH_SCALE if intrinsics.depth_scale is None else intrinsics.depth_scale
    if not scale > 0:
        raise DatasetError(f"{path}: depth_scale must be > 0, got {scale}")
    if not frames:
        raise DatasetError(f"{path} lists no frames")
    return RgbdLayout(intrinsics, color, depth, frames, scale)


def image_files(folder: PathLike) -> list[Path]:
    """List a folder's image files (by :data:`IMAGE_SUFFIXES`) in name order; at least one."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    return files


def read_rgb(path: PathLike) -> npt.NDArray[np.uint8]:
    """Read an image file as H x W x 3 uint8 RGB (grey and alpha images are converted)."""
    import cv2

    p = Path(path)
    image = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(
            f"cannot read image {p}: the file is missing or not an image OpenCV can decode"
        )
    return np.ascontiguousarray(image[..., ::-1])


def read_depth(path: PathLike, depth_scale: float | None = None) -> npt.NDArray[np.float32]:
    """Depth in metres (NaN where nothing was measured) from a depth image or ``.npy`` file.

    Integer values are units of ``1 / depth_scale`` metres (default :data:`DEFAULT_DEPTH_SCALE`:
    millimetres) with 0 for "no measurement". Floating-point values are metres, divided by
    ``depth_scale`` only when it is given; values that are not > 0 are missing.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"cannot read depth image {p}: the file does not exist")
    if depth_scale is not None and not depth_scale > 0:
        raise DatasetError(f"depth scale must be > 0, got {depth_scale}")
    raw: npt.NDArray[Any]
    if p.suffix.lower() == ".npy":
        try:
            raw = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read depth array {p}: {exc}") from exc
    else:
        import cv2

        image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DatasetError(f"cannot read depth image {p}: not an image OpenCV can decode")
        raw = image
    raw = np.squeeze(raw)
    if raw.ndim != 2:
        raise DatasetError(
            f"depth {p} has shape {raw.shape}; expected one channel (a 16-bit depth image, not "
            "a colourised depth picture)"
        )
    if np.issubdtype(raw.dtype, np.integer):
        if raw.dtype.itemsize < 2:
            raise DatasetError(
                f"depth {p} is 8-bit ({raw.dtype}): that is a picture of depth, not a "
                "measurement; expected 16-bit integer units (PNG, PGM or TIFF) or float metres"
            )
        scale = DEFAULT_DEPTH_SCALE if depth_scale is None else depth_scale
        depth = raw.astype(np.float32) / np.float32(scale)
        depth[raw == 0] = np.nan
        return depth
    if np.issubdtype(raw.dtype, np.floating):
        depth = raw.astype(np.float32)
        if depth_scale is not None:
            depth = depth / np.float32(depth_scale)
        depth[~(depth > 0)] = np.nan
        return depth
    raise DatasetError(f"depth {p} has dtype {raw.dtype}; expected integer units or float metres")


def read_rgbd_frames(folder: PathLike) -> list[RgbdFrame]:
    """All frames of an ``intrinsics.json`` RGB-D folder, depth registered to colour."""
    root = Path(folder)
    layout = read_layout(root)
    frames = []
    for fid in layout.frames:
        rgb = read_rgb(root / layout.color.format(i=fid))
        depth = read_depth(root / layout.depth.format(i=fid), layout.depth_scale)
        h, w = rgb.shape[:2]
        if depth.shape != (h, w):
            raise DatasetError(
                f"frame {fid} of {root}: depth is {depth.shape[1]}x{depth.shape[0]} but colour "
                f"is {w}x{h}; register depth to colour first"
            )
        frames.append(RgbdFrame(rgb, depth, layout.intrinsics.camera(w, h), fid))
    return frames


def write_intrinsics_json(
    folder: PathLike,
    camera: PinholeCamera,
    frames: Sequence[str],
    color: str,
    note: str,
    depth: str = "depth/{i}.png",
    depth_scale: float = DEFAULT_DEPTH_SCALE,
) -> Path:
    """Write the ``intrinsics.json`` that :func:`read_rgbd_frames` reads; return its path.

    ``color`` and ``depth`` are the file patterns, e.g. ``"color/{i}.png"``; the default depth
    is 16-bit millimetre PNG.
    """
    if not (math.isfinite(depth_scale) and depth_scale > 0):
        raise DatasetError(f"depth_scale must be a finite number > 0, got {depth_scale}")
    path = Path(folder) / INTRINSICS_FILE
    info = {
        "fx": camera.fx,
        "fy": camera.fy,
        "cx": camera.cx,
        "cy": camera.cy,
        "width": camera.width,
        "height": camera.height,
        "depth_scale": float(depth_scale),
        "color": color,
        "depth": depth,
        "frames": list(frames),
        "note": note,
    }
    path.write_text(json.dumps(info, indent=1))
    return path
