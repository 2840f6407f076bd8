"""CameraInfo fields -> :class:`PinholeCamera`, with the calibration checks.

Any object with ``sensor_msgs/CameraInfo``'s fields will do: rclpy's message (the nodes, via
:mod:`recon3d_ros.ros.conversions`) or one rosbags deserialised from a recording
(:mod:`recon3d_ros.reconstruction.bag_messages`). No rclpy here, so both use one set of rules.
"""

from __future__ import annotations

import math
from typing import Any

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import CameraModelError

__all__ = ["camera_from_info", "rectified_camera_from_info"]


def _geometry(info: Any) -> dict[str, Any]:
    """Return the CameraInfo fields that place K or P on the published image."""
    roi = info.roi
    return {
        "width": int(info.width),
        "height": int(info.height),
        "binning_x": int(info.binning_x),
        "binning_y": int(info.binning_y),
        "roi": (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)),
        "frame_id": str(info.header.frame_id),
    }


def camera_from_info(info: Any) -> PinholeCamera:
    """Return the intrinsics of the image described by ``info`` (after its ROI and binning).

    The intrinsics always come from ``K``; an uncalibrated camera (``K`` all zero) or a
    non-finite ``K`` raises :class:`CameraModelError` instead of guessing from the image size.
    ``R`` is carried along (rectification uses it). The whole calibration must be one a camera
    can have (:mod:`recon3d_ros.core.camera` lists the checks): ``K``, a set ``P``, ``R`` and
    the ROI; the error names the first thing that is not.
    """
    k = [float(v) for v in info.k]
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        raise CameraModelError(f"CameraInfo.k must hold 9 finite numbers, got {k}")
    if info.width <= 0 or info.height <= 0:
        raise CameraModelError(
            f"CameraInfo size is {info.width}x{info.height}; "
            "the camera driver must fill width/height"
        )
    d = [float(v) for v in info.d]
    if not all(math.isfinite(v) for v in d):
        raise CameraModelError(f"CameraInfo.d must be finite, got {d}")
    camera = PinholeCamera.from_camera_info(
        k, d=d, distortion_model=str(info.distortion_model), r=[float(v) for v in info.r],
        **_geometry(info),
    )
    rectified_camera_from_info(info)  # a P that cannot be a camera rejects the CameraInfo too
    return camera


def rectified_camera_from_info(info: Any) -> PinholeCamera | None:
    """Return the rectified image's intrinsics from ``P`` (as image_proc), None if P is unset.

    ``P``'s left 3x3 is the camera matrix a rectified image follows; like ``K`` it refers to
    the full sensor, so the message's ROI and binning apply to it too. ``P`` is unset when its
    focal lengths ``P[0]`` and ``P[5]`` are both zero (the message's default); a set ``P`` must
    pass the same checks as ``K`` and have a finite last column, else
    :class:`CameraModelError`.
    """
    p = [float(v) for v in info.p]
    if len(p) != 12 or (p[0] == 0.0 and p[5] == 0.0):
        return None
    if not all(math.isfinite(v) for v in p):
        raise CameraModelError(f"CameraInfo.p must hold 12 finite numbers, got {p}")
    return PinholeCamera.from_camera_info(
        [p[0], p[1], p[2], p[4], p[5], p[6], p[8], p[9], p[10]],
        matrix_name="P",
        **_geometry(info),
    )
