"""Pinhole camera model and intrinsics bookkeeping through resize, crop and letterbox.

Conventions (REP 103 optical frame, OpenCV pixel grid): pixel centres sit on integer
coordinates, so a resize by ``s`` maps a continuous coordinate ``u`` to ``(u + 0.5) * s - 0.5``.
That is the sampling ``cv2.resize`` performs, so intrinsics derived here stay exact for images
resampled with OpenCV. ``binning`` and ``roi`` follow ``sensor_msgs/CameraInfo`` and
image_geometry: ``K`` describes the full-resolution sensor; the published image is the ROI,
then binned.

A calibration read from a CameraInfo (:meth:`PinholeCamera.from_camera_info`) must describe
something a camera can be; each check names the one thing that is wrong. ``S`` below is the
sensor's longer side (CameraInfo ``width``/``height``, before ROI and binning):

* ``K`` (and ``P``'s left 3x3) is ``[fx s cx; 0 fy cy; 0 0 1]``: ``K[8]`` is 1 and the entries
  below the diagonal are 0 (a scaled or transposed matrix is refused, not renormalised);
* ``1e-3 S < fx, fy < 1e3 S``: fields of view from 179.9 down to 0.06 degrees;
* ``0.1 <= fx / fy <= 10`` (anamorphic lenses reach 2);
* ``-width <= cx <= 2 width`` and ``-height <= cy <= 2 height``: the optical axis meets the
  image plane at most one image size outside the sensor (shift lenses, ROI-free crops);
* ``|s| <= 1e-3 fx``: this model has no skew term, so only a skew that moves no pixel
  noticeably is accepted (camera_calibration and OpenCV calibrate without skew);
* the ROI lies inside the ``width`` x ``height`` sensor;
* ``R`` is a rotation (orthonormal to 1e-4, determinant +1), or all zeros (unset) = identity.

These bounds also keep every derived value (rays, resized intrinsics, float32 casts) far from
overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from recon3d_ros.errors import CameraModelError

__all__ = [
    "PinholeCamera", "ImageTransform", "letterbox_transform", "stretch_transform",
    "keep_aspect_transform", "check_camera_matrix", "round_to_multiple", "resize_image",
]

#: ``f / S`` bounds (``S`` = the sensor's longer side): 179.9 to 0.06 degrees of view.
FOCAL_RANGE = (1e-3, 1e3)
#: ``fx / fy`` bounds.
ASPECT_RANGE = (0.1, 10.0)
#: ``cx / width`` and ``cy / height`` bounds.
PRINCIPAL_RANGE = (-1.0, 2.0)
#: Largest accepted ``|skew| / fx`` (the model has no skew).
MAX_SKEW = 1e-3
#: Tolerance of ``K[8] == 1`` and of the zeros below the diagonal.
UNIT_TOLERANCE = 1e-6
#: Tolerance of ``R R^T == I``.
ROTATION_TOLERANCE = 1e-4

_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def round_to_multiple(value: float, multiple: int) -> int:
    """Round ``value`` to the nearest multiple of ``multiple`` (ties to even, as numpy does).

    Python's ``round`` is the half-to-even rule numpy and transformers' image processors use,
    so network input sizes computed here match theirs; a ``multiple`` below 1 counts as 1.
    """
    m = max(1, int(multiple))
    return int(round(value / m)) * m


def resize_image(
    image: npt.NDArray[Any], width: int, height: int, enlarge: int | None = None
) -> npt.NDArray[Any]:
    """Resize ``image`` to ``width`` x ``height``: ``INTER_AREA`` when either side shrinks.

    Area averaging is the OpenCV filter that does not alias when shrinking; enlarging uses
    ``enlarge`` (default ``INTER_LINEAR``). The same size returns ``image`` itself.
    """
    src_h, src_w = image.shape[:2]
    if (width, height) == (src_w, src_h):
        return image
    import cv2

    if width < src_w or height < src_h:
        flag = cv2.INTER_AREA
    else:
        flag = cv2.INTER_LINEAR if enlarge is None else enlarge
    return np.asarray(cv2.resize(image, (width, height), interpolation=flag))


def check_camera_matrix(
    k: Sequence[float] | npt.NDArray[np.float64], width: int, height: int, name: str = "K"
) -> None:
    """Raise :class:`CameraModelError` if the 3x3 row-major ``k`` cannot be a camera matrix.

    ``width``/``height`` are the full sensor's (CameraInfo's, before ROI/binning). The bounds
    are this module's ``FOCAL_RANGE``, ``ASPECT_RANGE``, ``PRINCIPAL_RANGE`` and ``MAX_SKEW``;
    the first violated one is reported.
    """
    vals = [float(v) for v in k]
    if len(vals) != 9 or not all(math.isfinite(v) for v in vals):
        raise CameraModelError(f"{name} must hold 9 finite numbers, got {vals}")
    fx, skew, cx, low_yx, fy, cy, low_zx, low_zy, one = vals
    row = 4 if name == "P" else 3  # name elements by their index in the CameraInfo field

    def at(i: int) -> str:
        return f"{name}[{i // 3 * row + i % 3}]"

    if fx <= 0.0 or fy <= 0.0:
        raise CameraModelError(
            f"focal lengths must be positive, got fx={_fmt(fx)} fy={_fmt(fy)} in {name}; the "
            f"camera is probably uncalibrated ({name} all zeros): calibrate it or publish a {name}"
        )
    if abs(one - 1.0) > UNIT_TOLERANCE:
        raise CameraModelError(
            f"{at(8)} is {_fmt(one)}, not 1; {name} must be [fx s cx; 0 fy cy; 0 0 1] "
            "(a scaled matrix is not a camera matrix): fix the camera driver's calibration"
        )
    if max(abs(low_yx) / fy, abs(low_zx), abs(low_zy)) > UNIT_TOLERANCE:
        raise CameraModelError(
            f"{name} has non-zero entries below the diagonal ({at(3)}, {at(6)}, {at(7)} = "
            f"{_fmt(low_yx)}, {_fmt(low_zx)}, {_fmt(low_zy)}); it must be [fx s cx; 0 fy cy; "
            "0 0 1] in row-major order: is it transposed?"
        )
    size = max(int(width), int(height))
    lo, hi = FOCAL_RANGE
    for axis, f in (("fx", fx), ("fy", fy)):
        if not lo * size < f < hi * size:
            raise CameraModelError(
                f"{name} focal length {axis}={_fmt(f)} is outside ({_fmt(lo * size)}, "
                f"{_fmt(hi * size)}) = ({lo:g}, {hi:g}) x the sensor's {size} px: no lens "
                "gives that field of view; recalibrate the camera"
            )
    if not ASPECT_RANGE[0] <= fx / fy <= ASPECT_RANGE[1]:
        raise CameraModelError(
            f"{name} pixel aspect fx/fy = {_fmt(fx)}/{_fmt(fy)} = {_fmt(fx / fy)} is outside "
            f"[{ASPECT_RANGE[0]:g}, {ASPECT_RANGE[1]:g}]; recalibrate the camera"
        )
    p_lo, p_hi = PRINCIPAL_RANGE
    for axis, c, side, label in (("cx", cx, int(width), "width"),
                                 ("cy", cy, int(height), "height")):
        if not p_lo * side <= c <= p_hi * side:
            raise CameraModelError(
                f"{name} principal point {axis}={_fmt(c)} is outside [{_fmt(p_lo * side)}, "
                f"{_fmt(p_hi * side)}], i.e. more than one image {label} ({side} px) off the "
                "sensor; recalibrate the camera"
            )
    if abs(skew) > MAX_SKEW * fx:
        raise CameraModelError(
            f"{name} skew {at(1)}={_fmt(skew)} exceeds {MAX_SKEW:g} x fx = "
            f"{_fmt(MAX_SKEW * fx)}; this pinhole model has no skew term: recalibrate without "
            "skew (the ROS camera_calibration and OpenCV defaults)"
        )


def _rotation(r: Sequence[float]) -> tuple[float, ...]:
    """Normalise a row-major R: unset (empty or all zeros) and identity become ``()``."""
    vals = tuple(float(v) for v in r)
    if not vals or vals == _IDENTITY or all(v == 0.0 for v in vals):
        return ()
    if len(vals) != 9 or not all(math.isfinite(v) for v in vals):
        raise CameraModelError(f"R must hold 9 finite numbers, got {list(vals)}")
    m = np.array(vals, dtype=np.float64).reshape(3, 3)
    error = float(np.abs(m @ m.T - np.eye(3)).max())
    if error > ROTATION_TOLERANCE or np.linalg.det(m) <= 0.0:
        raise CameraModelError(
            f"R = {list(vals)} is not a rotation (|R R^T - I| = {error:.3g}, det = "
            f"{np.linalg.det(m):.3g}); CameraInfo.r must be the rectification rotation "
            "(identity for a monocular camera)"
        )
    return vals


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
    #: Rectification rotation ``R`` (CameraInfo.r, row-major); ``()`` is the identity.
    r: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "r", _rotation(self.r))
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
        r: Sequence[float] = (),
        matrix_name: str = "K",
    ) -> "PinholeCamera":
        """Build from ``CameraInfo`` fields; ``roi`` is ``(x_offset, y_offset, width, height)``.

        ``width``/``height`` are CameraInfo's (full sensor) size. A zero-size ROI means the full
        image and a binning of 0 means 1, as in the message definition. ``k`` and the ROI are
        checked as the module docstring lists (:func:`check_camera_matrix`); ``matrix_name``
        names ``k`` in the error (``"P"`` when it is P's left 3x3).
        """
        k_arr = np.asarray(k, dtype=np.float64).reshape(-1)
        if k_arr.size != 9:
            raise CameraModelError(f"K must have 9 elements, got {k_arr.size}")
        if int(width) <= 0 or int(height) <= 0:
            raise CameraModelError(f"image size must be positive, got {width}x{height}")
        check_camera_matrix(k_arr, width, height, matrix_name)
        fx, cx, fy, cy = float(k_arr[0]), float(k_arr[2]), float(k_arr[4]), float(k_arr[5])
        bx = max(int(binning_x), 1)
        by = max(int(binning_y), 1)
        x0, y0, rw, rh = (int(v) for v in (roi if roi is not None else (0, 0, 0, 0)))
        if rw == 0 or rh == 0:
            x0, y0, rw, rh = 0, 0, int(width), int(height)
        elif x0 + rw > int(width) or y0 + rh > int(height):
            raise CameraModelError(
                f"ROI {rw}x{rh} at offset ({x0}, {y0}) reaches ({x0 + rw}, {y0 + rh}), outside "
                f"the {width}x{height} sensor; the ROI must lie inside CameraInfo width/height"
            )
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
            r=tuple(float(v) for v in r),
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
    def rotation(self) -> npt.NDArray[np.float64]:
        """3x3 rectification rotation ``R`` (identity unless CameraInfo.r says otherwise)."""
        return np.array(self.r or _IDENTITY, dtype=np.float64).reshape(3, 3)

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
        """Return this camera without distortion or rotation (what a rectified image follows)."""
        return replace(self, distortion_model="", d=(), r=())

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

    def apply_image(
        self, image: npt.NDArray[Any], interpolation: int | None = None
    ) -> npt.NDArray[Any]:
        """Resize and pad ``image`` (H x W or H x W x C) into the network canvas.

        ``interpolation`` (an OpenCV flag) overrides :func:`resize_image`'s choice.
        """
        size = (self.content_width, self.content_height)
        if interpolation is None or size == (self.src_width, self.src_height):
            resized = resize_image(image, *size)
        else:
            import cv2

            resized = np.asarray(cv2.resize(image, size, interpolation=interpolation))
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
        image: npt.NDArray[Any],
        width: int | None = None,
        height: int | None = None,
        interpolation: int | None = None,
    ) -> npt.NDArray[Any]:
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
        return np.asarray(
            cv2.resize(np.ascontiguousarray(content), (out_w, out_h), interpolation=interp)
        )


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
    m = max(1, multiple_of)
    w = max(m, round_to_multiple(src_width * scale, m))
    h = max(m, round_to_multiple(src_height * scale, m))
    return ImageTransform(src_width, src_height, w, h, w, h)
