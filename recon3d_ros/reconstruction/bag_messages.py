"""rosbag2 messages (``rosbags`` classes) to numpy arrays and back, without a ROS install.

``recon3d_ros.ros.conversions`` does the same for rclpy's message classes; ``rosbags`` brings its
own classes (plain dataclasses with numpy ``data`` fields), so the offline tools go through here.
Pixel formats are still :mod:`recon3d_ros.core.encodings`' and clouds
:func:`recon3d_ros.core.pointcloud.depth_to_cloud`'s buffers, so what ``recon3d bag`` writes is
byte for byte what the node publishes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.camera_info import camera_from_info, rectified_camera_from_info
from recon3d_ros.core.encodings import (
    MAX_PIXELS,
    array_to_image_fields,
    decode_compressed,
    image_to_array,
    to_depth_m,
    to_rgb8,
)
from recon3d_ros.core.pointcloud import CloudBuffer, cloud_to_points
from recon3d_ros.errors import BackendUnavailableError, EncodingError

__all__ = [
    "IMAGE",
    "COMPRESSED_IMAGE",
    "CAMERA_INFO",
    "POINT_CLOUD2",
    "TF_MESSAGE",
    "ODOMETRY",
    "POSE_STAMPED",
    "typestore",
    "stamp_to_ns",
    "header",
    "image_to_rgb",
    "compressed_to_rgb",
    "depth_image_to_m",
    "camera_from_info",
    "cloud_msg_to_xyz",
    "rectified_camera_from_info",
    "image_msg",
    "depth_image_msg",
    "compressed_image_msg",
    "camera_info_msg",
    "cloud_msg",
    "transform_msg",
    "tf_message",
    "transform_to_matrix",
    "pose_to_matrix",
]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
ODOMETRY = "nav_msgs/msg/Odometry"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
_NS = 1_000_000_000


@lru_cache(maxsize=1)
def typestore() -> Any:
    """Return the ``rosbags`` typestore of the newest ROS 2 release it knows (Kilted or later)."""
    try:
        from rosbags.typesys import Stores, get_typestore
    except ImportError as exc:
        raise BackendUnavailableError(
            "reading and writing rosbag2 files needs the 'rosbags' package: pip install rosbags"
        ) from exc
    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_HUMBLE"):
        if hasattr(Stores, name):
            return get_typestore(getattr(Stores, name))
    return get_typestore(Stores.LATEST)


def _types() -> Any:
    return typestore().types


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def header(stamp_ns: int, frame_id: str) -> Any:
    """Build a ``std_msgs/Header`` with ``stamp_ns`` (nanoseconds) and ``frame_id``."""
    t = _types()
    time = t["builtin_interfaces/msg/Time"](sec=int(stamp_ns // _NS), nanosec=int(stamp_ns % _NS))
    return t["std_msgs/msg/Header"](stamp=time, frame_id=str(frame_id))


def _copy_header(src: Any) -> Any:
    return header(stamp_to_ns(src.stamp), src.frame_id)


# ---------------------------------------------------------------------------------- in
def _image_array(msg: Any) -> npt.NDArray[Any]:
    return image_to_array(
        msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian)
    )


def image_to_rgb(msg: Any) -> npt.NDArray[np.uint8]:
    """Any colour/mono ``sensor_msgs/Image`` to ``H x W x 3`` uint8 RGB (EncodingError)."""
    if msg.width == 0 or msg.height == 0:
        raise EncodingError(f"empty image ({msg.width}x{msg.height})")
    return to_rgb8(_image_array(msg), msg.encoding)


def compressed_to_rgb(msg: Any, max_pixels: int = MAX_PIXELS) -> npt.NDArray[np.uint8]:
    """Decode a jpeg/png ``sensor_msgs/CompressedImage`` to ``H x W x 3`` uint8 RGB."""
    arr, encoding = decode_compressed(msg.data, msg.format, max_pixels)
    return to_rgb8(arr, encoding)


def depth_image_to_m(msg: Any) -> npt.NDArray[np.float32]:
    """Convert a 16UC1 (mm) or 32FC1 (m) depth ``sensor_msgs/Image`` to metres, NaN where none."""
    if msg.width == 0 or msg.height == 0:
        raise EncodingError(f"empty depth image ({msg.width}x{msg.height})")
    return to_depth_m(_image_array(msg), msg.encoding)


def cloud_msg_to_xyz(msg: Any) -> npt.NDArray[np.float64]:
    """Return the finite x, y, z of a ``sensor_msgs/PointCloud2`` as N x 3, by its fields."""
    by_name = {f.name: f for f in msg.fields}
    missing = [name for name in "xyz" if name not in by_name]
    if missing:
        raise EncodingError(
            f"PointCloud2 has no field(s) {missing} (fields: {sorted(by_name)}); expected x, y, z"
        )
    points = cloud_to_points(
        msg.data, [by_name[n] for n in "xyz"], msg.point_step, msg.width, msg.height,
        bool(msg.is_bigendian), msg.row_step,
    ).reshape(-1)
    xyz = np.stack([points[n].astype(np.float64) for n in "xyz"], axis=-1)
    return xyz[np.isfinite(xyz).all(axis=1)]


def transform_to_matrix(translation: Any, rotation: Any) -> npt.NDArray[np.float64]:
    """Return the 4x4 of a ``geometry_msgs`` translation/position and quaternion (x, y, z, w)."""
    from recon3d_ros.reconstruction.poses import matrix_from_quaternion

    out = np.eye(4)
    out[:3, :3] = matrix_from_quaternion(
        float(rotation.x), float(rotation.y), float(rotation.z), float(rotation.w)
    )
    out[:3, 3] = [float(translation.x), float(translation.y), float(translation.z)]
    return out


def pose_to_matrix(pose: Any) -> npt.NDArray[np.float64]:
    """Return the 4x4 of a ``geometry_msgs/Pose``."""
    return transform_to_matrix(pose.position, pose.orientation)


# ---------------------------------------------------------------------------------- out
def image_msg(image: npt.NDArray[Any], encoding: str, hdr: Any) -> Any:
    """Any array with a matching encoding (rgb8, 16UC1, 32FC1, ...) to a ``sensor_msgs/Image``."""
    f = array_to_image_fields(image, encoding)
    return _types()[IMAGE](
        header=_copy_header(hdr),
        height=f.height,
        width=f.width,
        encoding=f.encoding,
        is_bigendian=int(f.is_bigendian),
        step=f.step,
        data=np.frombuffer(f.data, dtype=np.uint8),
    )


def depth_image_msg(depth: npt.NDArray[np.floating], hdr: Any) -> Any:
    """Metric depth (H x W metres, NaN invalid) to a ``32FC1`` image, as the node publishes."""
    arr = np.asarray(depth)
    if arr.ndim != 2:
        raise EncodingError(f"depth must be H x W, got shape {arr.shape}")
    return image_msg(arr.astype(np.float32, copy=False), "32FC1", hdr)


def compressed_image_msg(rgb: npt.NDArray[np.uint8], hdr: Any, fmt: str = "jpeg") -> Any:
    """Encode RGB as a jpeg/png ``sensor_msgs/CompressedImage`` (as image_transport does)."""
    import cv2

    ok, payload = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", rgb[..., ::-1])
    if not ok:
        raise EncodingError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    return _types()[COMPRESSED_IMAGE](
        header=_copy_header(hdr), format=f"rgb8; {fmt} compressed bgr8",
        data=np.asarray(payload, dtype=np.uint8).reshape(-1),
    )


def camera_info_msg(
    camera: PinholeCamera, hdr: Any, rectified: PinholeCamera | None = None
) -> Any:
    """``camera``'s calibration as a CameraInfo.

    A camera without distortion gives a rectified CameraInfo (as the node's
    ``depth/camera_info``: ``d`` zeros, ``P`` = ``K``). A distorted one (a raw camera stream)
    keeps its model, ``d`` and ``r``, with ``P`` from ``rectified`` (the camera its images are
    undistorted into), else ``K``.
    """
    t = _types()
    distorted = camera.is_distorted
    model = camera.distortion_model if distorted else "plumb_bob"
    d = np.asarray(camera.d if distorted else np.zeros(5), dtype=np.float64)
    r = np.asarray(camera.r if distorted and camera.r else np.eye(3).reshape(-1), np.float64)
    p = (rectified if distorted and rectified is not None else camera).p_row_major()
    roi = t["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return t[CAMERA_INFO](
        header=_copy_header(hdr),
        height=int(camera.height),
        width=int(camera.width),
        distortion_model=model,
        d=d,
        k=np.array(camera.k_row_major(), dtype=np.float64),
        r=r,
        p=np.array(p, dtype=np.float64),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def cloud_msg(cloud: CloudBuffer, hdr: Any) -> Any:
    """Wrap a :class:`CloudBuffer` as ``sensor_msgs/PointCloud2``."""
    t = _types()
    fields = [
        t["sensor_msgs/msg/PointField"](
            name=f.name, offset=int(f.offset), datatype=int(f.datatype), count=int(f.count)
        )
        for f in cloud.fields
    ]
    return t[POINT_CLOUD2](
        header=_copy_header(hdr),
        height=int(cloud.height),
        width=int(cloud.width),
        fields=fields,
        is_bigendian=bool(cloud.is_bigendian),
        point_step=int(cloud.point_step),
        row_step=int(cloud.row_step),
        data=np.frombuffer(bytes(cloud.data), dtype=np.uint8),
        is_dense=bool(cloud.is_dense),
    )


def transform_msg(
    parent: str, child: str, matrix: npt.NDArray[np.floating], stamp_ns: int
) -> Any:
    """Build a ``geometry_msgs/TransformStamped``: ``matrix`` is ``T_parent_child``."""
    t = _types()
    from recon3d_ros.reconstruction.poses import quaternion_from_matrix

    m = np.asarray(matrix, dtype=np.float64)
    qx, qy, qz, qw = (float(v) for v in quaternion_from_matrix(m[:3, :3]))
    transform = t["geometry_msgs/msg/Transform"](
        translation=t["geometry_msgs/msg/Vector3"](
            x=float(m[0, 3]), y=float(m[1, 3]), z=float(m[2, 3])
        ),
        rotation=t["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
    )
    return t["geometry_msgs/msg/TransformStamped"](
        header=header(stamp_ns, parent), child_frame_id=child, transform=transform
    )


def tf_message(transforms: list[Any]) -> Any:
    """Build a ``tf2_msgs/TFMessage`` holding ``transforms``."""
    return _types()[TF_MESSAGE](transforms=list(transforms))
