"""Undistortion of camera images (what image_proc's rectify node does), with cached maps.

Depth networks assume a pinhole camera, so a distorted image is remapped first. The maps are
built once per calibration (``cv2.initUndistortRectifyMap`` for ``plumb_bob`` /
``rational_polynomial``, ``cv2.fisheye.initUndistortRectifyMap`` for ``equidistant``) and reused
for every frame.

Output camera: by default the **same K without distortion** (``camera.undistorted()``), i.e. the
rectified image keeps the focal lengths and principal point and only the distortion is removed;
corners that fall outside the source image are black (0). Pass ``output_camera`` (e.g. a
camera built from CameraInfo's ``P``) to rectify into other intrinsics. The camera's ``R``
(CameraInfo.r, the stereo rectification rotation; identity for most monocular cameras) is
applied as image_proc and image_geometry apply it: the maps are
``initUndistortRectifyMap(K, D, R, P)``. As in image_proc, a camera without distortion is not
remapped at all, whatever its ``R``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.lru import LruCache
from recon3d_ros.errors import CameraModelError, EncodingError

__all__ = [
    "DISTORTION_MODELS", "RectifyMaps", "Rectifier", "build_maps", "rectifier_for",
    "clear_rectifier_cache",
]

#: distortion_model -> number of coefficients OpenCV uses (extra trailing values are ignored).
DISTORTION_MODELS: dict[str, int] = {
    "plumb_bob": 5,
    "rational_polynomial": 8,
    "equidistant": 4,
}


@dataclass(frozen=True)
class RectifyMaps:
    """``cv2.remap`` lookup maps (fixed-point ``CV_16SC2`` + ``CV_16UC1``, the fast format)."""

    map1: npt.NDArray[Any]
    map2: npt.NDArray[Any]
    source: PinholeCamera
    output: PinholeCamera


def _coefficients(camera: PinholeCamera) -> npt.NDArray[np.float64]:
    model = camera.distortion_model
    if model not in DISTORTION_MODELS:
        raise CameraModelError(
            f"unsupported distortion_model {model!r} with non-zero coefficients {camera.d}; "
            f"expected one of {', '.join(DISTORTION_MODELS)} (sensor_msgs/distortion_models); "
            "rectify upstream with image_proc or recalibrate"
        )
    n = DISTORTION_MODELS[model]
    d = np.zeros(n, dtype=np.float64)
    given = np.asarray(camera.d, dtype=np.float64)[:n]
    d[: given.size] = given
    if not np.all(np.isfinite(d)):
        raise CameraModelError(f"distortion coefficients must be finite, got {camera.d}")
    return d


def build_maps(camera: PinholeCamera, output_camera: PinholeCamera | None = None) -> RectifyMaps:
    """Build remap tables from ``camera``'s distorted image to ``output_camera``'s pinhole one.

    ``camera.r`` rotates the source rays into the rectified frame (identity when unset).
    """
    import cv2

    out = camera.undistorted() if output_camera is None else output_camera.undistorted()
    d = _coefficients(camera)
    size = (out.width, out.height)
    rotation = camera.rotation
    try:
        if camera.distortion_model == "equidistant":
            map1, map2 = cv2.fisheye.initUndistortRectifyMap(
                camera.k, d.reshape(4, 1), rotation, out.k, size, cv2.CV_16SC2
            )
        else:
            map1, map2 = cv2.initUndistortRectifyMap(
                camera.k, d, rotation, out.k, size, cv2.CV_16SC2
            )
    except cv2.error as exc:
        raise CameraModelError(f"cannot build rectification maps for {camera}: {exc}") from exc
    return RectifyMaps(map1=map1, map2=map2, source=camera, output=out)


class Rectifier:
    """Remaps images of one calibrated camera to its undistorted pinhole model."""

    def __init__(self, maps: RectifyMaps) -> None:
        self.maps = maps

    @property
    def camera(self) -> PinholeCamera:
        """Intrinsics of rectified images (no distortion)."""
        return self.maps.output

    def rectify(
        self, image: npt.NDArray[Any], interpolation: int | None = None
    ) -> npt.NDArray[Any]:
        """Undistort ``image`` (``H x W`` or ``H x W x C``) with ``cv2.remap``.

        Bilinear by default (colour); pass ``cv2.INTER_NEAREST`` for depth or label images so
        values are not blended across edges.
        """
        import cv2

        src = self.maps.source
        if image.shape[:2] != (src.height, src.width):
            raise CameraModelError(
                f"image is {image.shape[1]}x{image.shape[0]} but the calibration is for "
                f"{src.width}x{src.height}; the CameraInfo does not belong to this image stream"
            )
        if image.ndim == 3 and image.shape[2] > 4:
            raise EncodingError(f"cannot rectify an image with {image.shape[2]} channels (max 4)")
        interp = cv2.INTER_LINEAR if interpolation is None else interpolation
        return cv2.remap(
            np.ascontiguousarray(image), self.maps.map1, self.maps.map2, interp,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )


_CACHE: LruCache[tuple[Any, ...], Rectifier] = LruCache(4)


def _key(camera: PinholeCamera) -> tuple[Any, ...]:
    return (camera.width, camera.height, camera.fx, camera.fy, camera.cx, camera.cy,
            camera.distortion_model, tuple(camera.d), camera.r)


def rectifier_for(
    camera: PinholeCamera, output_camera: PinholeCamera | None = None
) -> Rectifier | None:
    """Return the cached :class:`Rectifier` of ``camera``; ``None`` if it has no distortion.

    The cache is keyed by size, intrinsics, distortion and ``R`` only (not ``frame_id``), so a
    stream with a fixed calibration builds its maps once.

    Raises
    ------
    CameraModelError
        unknown distortion model with non-zero coefficients.

    """
    if not camera.is_distorted:
        return None
    key = _key(camera) + (None if output_camera is None else _key(output_camera),)
    return _CACHE.get(key, lambda: Rectifier(build_maps(camera, output_camera)))


def clear_rectifier_cache() -> None:
    _CACHE.clear()
