"""Where demo frames come from: an image, a video or a folder (synthetic: :mod:`.trajectory`).

Every source yields :class:`Frame` objects (RGB uint8 + the camera's intrinsics). Real images
come without a calibration, so they get ``--intrinsics`` from a JSON file when given, or a
pinhole camera with a typical 60 degree horizontal field of view
(:func:`recon3d_ros.core.rgbd_io.camera_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.rgbd_io import (
    camera_for,
    image_files,
    INTRINSICS_FILE,
    Intrinsics,
    read_intrinsics,
    read_rgb,
)
from recon3d_ros.errors import DatasetError

__all__ = ["Frame", "image_frames", "folder_frames", "video_frames"]


@dataclass(frozen=True)
class Frame:
    """One camera frame: ``rgb`` is H x W x 3 uint8; ``depth`` is ground truth when known."""

    index: int
    name: str
    rgb: npt.NDArray[np.uint8]
    camera: PinholeCamera
    depth: npt.NDArray[np.float32] | None = None


def _fit(rgb: npt.NDArray[np.uint8], max_width: int | None) -> npt.NDArray[np.uint8]:
    """Downscale wide images (a 4K photo would make a slow demo) keeping the aspect ratio."""
    import cv2

    height, width = rgb.shape[:2]
    if max_width is None or width <= max_width:
        return rgb
    new_h = max(1, round(height * max_width / width))
    return cv2.resize(rgb, (max_width, new_h), interpolation=cv2.INTER_AREA)


def image_frames(
    path: str | Path,
    count: int = 1,
    intrinsics: Intrinsics | None = None,
    max_width: int | None = 640,
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
    intrinsics: Intrinsics | None = None,
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
    files = image_files(root)
    if (
        intrinsics is None
        and root.name in ("rgb", "color")
        and (root.parent / INTRINSICS_FILE).is_file()
    ):
        intrinsics = read_intrinsics(root.parent / INTRINSICS_FILE)
    for i, path in enumerate(files[:limit] if limit else files):
        rgb = _fit(read_rgb(path), max_width)
        yield Frame(i, path.stem, rgb, camera_for(rgb.shape[1], rgb.shape[0], intrinsics))


def video_frames(
    path: str | Path,
    limit: int | None = None,
    intrinsics: Intrinsics | None = None,
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
