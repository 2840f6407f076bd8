"""Where demo frames come from: a synthetic camera sequence, an image, a video or a folder.

Every source yields :class:`Frame` objects (RGB uint8 + the camera's intrinsics). Real images
come without a calibration, so they get ``--intrinsics`` from a JSON file when given, or a
pinhole camera with a typical 60 degree horizontal field of view.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import CameraModelError, DatasetError

__all__ = [
    "Frame",
    "IMAGE_SUFFIXES",
    "DEFAULT_HFOV_DEG",
    "load_intrinsics",
    "camera_for",
    "read_rgb",
    "image_frames",
    "folder_frames",
    "video_frames",
    "synthetic_frames",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")
DEFAULT_HFOV_DEG = 60.0


@dataclass(frozen=True)
class Frame:
    """One camera frame: ``rgb`` is H x W x 3 uint8; ``depth`` is ground truth when known."""

    index: int
    name: str
    rgb: npt.NDArray[np.uint8]
    camera: PinholeCamera
    depth: npt.NDArray[np.float32] | None = None


def load_intrinsics(path: str | Path) -> dict:
    """Read ``{"fx", "fy", "cx", "cy", ["width", "height", "depth_scale"]}`` from JSON.

    This is the layout of the RGB-D folders' ``intrinsics.json``; extra keys are ignored.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise CameraModelError(f"cannot read intrinsics JSON {p}: {exc}") from exc
    missing = [k for k in ("fx", "fy", "cx", "cy") if k not in data]
    if not isinstance(data, dict) or missing:
        raise CameraModelError(
            f"intrinsics file {p} must be a JSON object with fx, fy, cx, cy (pixels); "
            f"missing {missing}"
        )
    return data


def camera_for(
    width: int,
    height: int,
    intrinsics: dict | None = None,
    hfov_deg: float = DEFAULT_HFOV_DEG,
    frame_id: str = "camera_optical_frame",
) -> PinholeCamera:
    """Intrinsics for an image of ``width`` x ``height``.

    A calibration for another resolution is rescaled (same field of view), which is what a
    camera driver's binning or a resized video needs.
    """
    if intrinsics is None:
        return PinholeCamera.from_fov(width, height, hfov_deg, frame_id=frame_id)
    cal_w = int(intrinsics.get("width", width))
    cal_h = int(intrinsics.get("height", height))
    camera = PinholeCamera(
        cal_w,
        cal_h,
        float(intrinsics["fx"]),
        float(intrinsics["fy"]),
        float(intrinsics["cx"]),
        float(intrinsics["cy"]),
        frame_id=frame_id,
    )
    if (cal_w, cal_h) != (width, height):
        camera = camera.resized(width, height)
    return camera


def read_rgb(path: str | Path) -> npt.NDArray[np.uint8]:
    """Read an image file as H x W x 3 uint8 RGB (grey and alpha images are converted)."""
    import cv2

    p = Path(path)
    image = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(
            f"cannot read image {p}: the file is missing or not an image OpenCV can decode"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _fit(rgb: npt.NDArray[np.uint8], max_width: int | None) -> npt.NDArray[np.uint8]:
    """Downscale wide images (a 4K photo would make a slow demo) keeping the aspect ratio."""
    import cv2

    height, width = rgb.shape[:2]
    if max_width is None or width <= max_width:
        return rgb
    new_h = max(1, round(height * max_width / width))
    return cv2.resize(rgb, (max_width, new_h), interpolation=cv2.INTER_AREA)


def image_frames(
    path: str | Path, count: int = 1, intrinsics: dict | None = None, max_width: int | None = 640
) -> Iterator[Frame]:
    """Yield the same image ``count`` times (a still camera)."""
    rgb = _fit(read_rgb(path), max_width)
    camera = camera_for(rgb.shape[1], rgb.shape[0], intrinsics)
    for i in range(count):
        name = Path(path).stem if count == 1 else f"{Path(path).stem}_{i:03d}"
        yield Frame(i, name, rgb, camera)


def folder_frames(
    folder: str | Path,
    limit: int | None = None,
    intrinsics: dict | None = None,
    max_width: int | None = 640,
) -> Iterator[Frame]:
    """Images of a folder in name order.

    An RGB-D folder (``rgb/`` or ``color/`` beside ``intrinsics.json``) uses its colour images
    and its calibration.
    """
    root = Path(folder)
    for sub in ("rgb", "color"):
        if (root / sub).is_dir():
            root = root / sub
            break
    if not root.is_dir():
        raise DatasetError(f"{folder} is not a folder of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    if (
        intrinsics is None
        and root.name in ("rgb", "color")
        and (root.parent / "intrinsics.json").is_file()
    ):
        intrinsics = load_intrinsics(root.parent / "intrinsics.json")
    for i, path in enumerate(files[:limit] if limit else files):
        rgb = _fit(read_rgb(path), max_width)
        yield Frame(i, path.stem, rgb, camera_for(rgb.shape[1], rgb.shape[0], intrinsics))


def video_frames(
    path: str | Path,
    limit: int | None = None,
    intrinsics: dict | None = None,
    max_width: int | None = 640,
) -> Iterator[Frame]:
    """Frames of a video file (anything OpenCV's FFmpeg backend reads)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DatasetError(f"cannot open video {path}: missing file or unsupported codec")
    try:
        i = 0
        while limit is None or i < limit:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_width)
            yield Frame(
                i, f"frame_{i:05d}", rgb, camera_for(rgb.shape[1], rgb.shape[0], intrinsics)
            )
            i += 1
        if i == 0:
            raise DatasetError(f"video {path} has no readable frames")
    finally:
        capture.release()


def synthetic_frames(
    count: int,
    width: int = 320,
    height: int = 240,
    seed: int = 7,
    hfov_deg: float = 70.0,
) -> Iterator[Frame]:
    """Render a short camera sequence through one synthetic scene.

    The camera walks forward and pans slowly, as a robot's would, so consecutive frames
    overlap and the recovered 3-D scene stays recognisable from frame to frame.
    """
    from recon3d_ros.demo import trajectory

    yield from trajectory.render_sequence(count, width, height, seed=seed, hfov_deg=hfov_deg)
