"""Pinhole camera model and intrinsics bookkeeping through resize, crop and letterbox.

Conventions (REP 103 optical frame, OpenCV pixel grid): pixel centres sit on integer
coordinates, so a resize by ``s`` maps a continuous coordinate ``u`` to ``(u + 0.5) * s - 0.5``.
That is the sampling ``cv2.resize`` performs, so intrinsics derived here stay exact for images
resampled with OpenCV. ``binning`` and ``roi`` follow ``sensor_msgs/CameraInfo`` and
image_geometry: ``K`` describes the full-resolution sensor; the published image is the ROI,
then binned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import CameraModelError

__all__ = ["PinholeCamera", "ImageTransform", "letterbox_transform", "stretch_transform"]


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of the image a consumer actually sees (after ROI and binning)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion_model: str = ""
    d: tuple[float, ...] = ()
    frame_id: str = ""

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values):
            raise CameraModelError(
                f"camera intrinsics must be finite, got fx={self.fx} fy={self.fy} "
                f"cx={self.cx} cy={self.cy}; check the camera driver's calibration (CameraInfo.k)"
            )
        if self.fx <= 0.0 or self.fy <= 0.0:
            raise CameraModelError(
                f"focal lengths must be positive, got fx={self.fx} fy={self.fy}; the camera is "
                "probably uncalibrated (CameraInfo.k all zeros): calibrate it or publish a K"
            )
        if self.width <= 0 or self.height <= 0:
            raise CameraModelError(f"image size must be positive, got {self.width}x{self.height}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_camera_info(
        cls,
        k: Sequence[float],
        width: int,
        height: int,
        d: Sequence[float] = (),
        distortion_model: str = "",
        binning_x: int = 0,
        binning_y: int = 0,
        roi: tuple[int, int, int, int] | None = None,
        frame_id: str = "",
    ) -> "PinholeCamera":
        """Build from ``CameraInfo`` fields; ``roi`` is ``(x_offset, y_offset, width, height)``.

        ``width``/``height`` are CameraInfo's (full sensor) size. A zero-size ROI means the full
        image and a binning of 0 means 1, as in the message definition.
        """
        k_arr = np.asarray(k, dtype=np.float64).reshape(-1)
        if k_arr.size != 9:
            raise CameraModelError(f"K must have 9 elements, got {k_arr.size}")
        fx, cx, fy, cy = float(k_arr[0]), float(k_arr[2]), float(k_arr[4]), float(k_arr[5])
        bx = max(int(binning_x), 1)
        by = max(int(binning_y), 1)
        x0, y0, rw, rh = roi if roi is not None else (0, 0, 0, 0)
        if rw == 0 or rh == 0:
            x0, y0, rw, rh = 0, 0, int(width), int(height)
        return cls(
            width=int(rw) // bx,
            height=int(rh) // by,
            fx=fx / bx,
            fy=fy / by,
            cx=(cx - x0) / bx,
            cy=(cy - y0) / by,
            distortion_model=distortion_model,
            d=tuple(float(v) for v in d),
            frame_id=frame_id,
        )

    @classmethod
    def from_fov(
        cls, width: int, height: int, hfov_deg: float, frame_id: str = ""
    ) -> "PinholeCamera":
        """Build a centred, square-pixel camera with the given horizontal field of view."""
        fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width, height, fx, fx, (width - 1) / 2.0, (height - 1) / 2.0, frame_id=frame_id)

    # ------------------------------------------------------------------ views
    @property
    def k(self) -> npt.NDArray[np.float64]:
        """3x3 intrinsic matrix."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def k_row_major(self) -> list[float]:
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    def p_row_major(self) -> list[float]:
        """3x4 projection ``[K | 0]`` for a monocular, rectified camera."""
        return [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]

    @property
    def is_distorted(self) -> bool:
        return any(v != 0.0 for v in self.d)

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan2(self.width / 2.0, self.fx))

    # ------------------------------------------------------------------ geometry ops
    def resized(self, width: int, height: int) -> "PinholeCamera":
        """Intrinsics of this image resampled to ``width`` x ``height`` (cv2.resize convention)."""
        sx = width / self.width
        sy = height / self.height
        return replace(
            self,
            width=int(width),
            height=int(height),
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )

    def cropped(self, x: int, y: int, width: int, height: int) -> "PinholeCamera":
        """Intrinsics of the sub-image whose top-left pixel is ``(x, y)``."""
        return replace(self, width=int(width), height=int(height), cx=self.cx - x, cy=self.cy - y)

    def padded(self, left: int, top: int, width: int, height: int) -> "PinholeCamera":
        """Intrinsics after pasting this image at ``(left, top)`` into a larger canvas."""
        return replace(
            self, width=int(width), height=int(height), cx=self.cx + left, cy=self.cy + top
        )

    def undistorted(self) -> "PinholeCamera":
        """Return this camera without distortion (what a rectified image follows)."""
        return replace(self, distortion_model="", d=())

    def with_frame_id(self, frame_id: str) -> "PinholeCamera":
        return replace(self, frame_id=frame_id)

    def project(self, points: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Project N x 3 optical-frame points to N x 2 pixel coordinates (no distortion)."""
        pts = np.asarray(points, dtype=np.float64)
        z = pts[:, 2]
        return np.stack(
            [self.fx * pts[:, 0] / z + self.cx, self.fy * pts[:, 1] / z + self.cy], axis=1
        )


@dataclass(frozen=True)
class ImageTransform:
    """Where an input image lands inside a network input, and how to undo it.

    The source image (``src_width`` x ``src_height``) is resized to ``content_width`` x
    ``content_height`` and pasted at ``(left, top)`` of a ``dst_width`` x ``dst_height`` canvas.
    Stretch, letterbox and keep-aspect resizes are all of this form.
    """

    src_width: int
    src_height: int
    dst_width: int
    dst_height: int
    content_width: int
    content_height: int
    left: int = 0
    top: int = 0

    def apply_camera(self, camera: PinholeCamera) -> PinholeCamera:
        return camera.resized(self.content_width, self.content_height).padded(
            self.left, self.top, self.dst_width, self.dst_height
        )

    def apply_image(self, image: npt.NDArray, interpolation: int | None = None) -> npt.NDArray:
        """Resize and pad ``image`` (H x W or H x W x C) into the network canvas."""
        import cv2

        interp = cv2.INTER_AREA if interpolation is None else interpolation
        if self.content_width < self.src_width or self.content_height < self.src_height:
            resized = cv2.resize(
                image, (self.content_width, self.content_height), interpolation=interp
            )
        elif (self.content_width, self.content_height) != (self.src_width, self.src_height):
            resized = cv2.resize(
                image,
                (self.content_width, self.content_height),
                interpolation=cv2.INTER_LINEAR if interpolation is None else interpolation,
            )
        else:
            resized = image
        if (self.content_width, self.content_height) == (self.dst_width, self.dst_height):
            return resized
        canvas = np.zeros(
            (self.dst_height, self.dst_width) + resized.shape[2:], dtype=resized.dtype
        )
        canvas[
            self.top:self.top + self.content_height, self.left:self.left + self.content_width
        ] = resized
        return canvas

    def invert_image(
        self,
        image: npt.NDArray,
        width: int | None = None,
        height: int | None = None,
        interpolation: int | None = None,
    ) -> npt.NDArray:
        """Crop the content region of a network-sized map and resize it to the source size.

        ``width``/``height`` choose another output size (defaults: the source's).
        """
        import cv2

        out_w = self.src_width if width is None else width
        out_h = self.src_height if height is None else height
        content = image[
            self.top:self.top + self.content_height, self.left:self.left + self.content_width
        ]
        if content.shape[1] == out_w and content.shape[0] == out_h:
            return content
        interp = cv2.INTER_LINEAR if interpolation is None else interpolation
        return cv2.resize(np.ascontiguousarray(content), (out_w, out_h), interpolation=interp)


def stretch_transform(
    src_width: int, src_height: int, dst_width: int, dst_height: int
) -> ImageTransform:
    """Resize to exactly ``dst`` ignoring aspect ratio."""
    return ImageTransform(src_width, src_height, dst_width, dst_height, dst_width, dst_height)


def letterbox_transform(
    src_width: int, src_height: int, dst_width: int, dst_height: int
) -> ImageTransform:
    """Resize keeping aspect ratio to fit inside ``dst``, centred, zero padded."""
    scale = min(dst_width / src_width, dst_height / src_height)
    cw = min(dst_width, max(1, round(src_width * scale)))
    ch = min(dst_height, max(1, round(src_height * scale)))
    return ImageTransform(
        src_width,
        src_height,
        dst_width,
        dst_height,
        cw,
        ch,
        (dst_width - cw) // 2,
        (dst_height - ch) // 2,
    )


def keep_aspect_transform(
    src_width: int, src_height: int, short_side: int, multiple_of: int = 1
) -> ImageTransform:
    """Scale so the shorter side is ``short_side``, then round each side to ``multiple_of``.

    This is the Depth Anything / MiDaS "lower bound, multiple of 14/32" policy; the small
    aspect change from rounding is a stretch, so the output shape varies with the input.
    """
    scale = short_side / min(src_width, src_height)

    def _round(v: float) -> int:
        m = max(1, multiple_of)
        return max(m, int(round(v / m)) * m)

    w, h = _round(src_width * scale), _round(src_height * scale)
    return ImageTransform(src_width, src_height, w, h, w, h)
