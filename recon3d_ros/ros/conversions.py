"""The one place where ROS messages become numpy arrays and back.

Pixel formats are handled by :mod:`recon3d_ros.core.encodings` and camera geometry by
:class:`recon3d_ros.core.camera.PinholeCamera`; this module only moves fields.

Outgoing ``data`` fields get an ``array.array('B')``. The generated setter of a ``uint8[]``
field (rosidl_generator_py, as installed here) keeps an ``array.array('B')`` as it is only when
the message checks its fields (``check_fields=True``); an unchecking message, the default,
copies whatever it is given with ``array.array('B', value)``: a memcpy for ``array.array`` or
``bytes``, an element-by-element conversion for a numpy array (hundreds of times slower for an
image). So the large messages here are built with ``check_fields=True`` (:data:`_KEEP_DATA`),
whose other field checks cost microseconds, and the buffer filled by
:func:`~recon3d_ros.core.pointcloud.depth_to_cloud` becomes the message's data without a copy.
"""

from __future__ import annotations

import array
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from sensor_msgs.msg import (
    CameraInfo,
    CompressedImage,
    Image,
    PointCloud2,
    PointField,
    RegionOfInterest,
)
from std_msgs.msg import Header

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
from recon3d_ros.core.pointcloud import (
    CloudBuffer,
    cloud_to_points,
    pack_rgb,
    unpack_rgb,
    xyz_fields,
    xyzrgb_fields,
)
from recon3d_ros.errors import EncodingError, ReconstructionError

__all__ = [
    "stamp_to_ns",
    "ns_to_stamp",
    "byte_array",
    "image_to_rgb",
    "compressed_to_rgb",
    "depth_image_to_m",
    "cloud_msg_to_xyz",
    "cloud_msg_to_xyzrgb",
    "image_msg_to_array",
    "camera_from_info",
    "rectified_camera_from_info",
    "depth_to_image_msg",
    "camera_to_info_msg",
    "cloud_to_msg",
    "array_to_image_msg",
    "pose_to_matrix",
    "points_to_cloud_msg",
    "mesh_to_marker_bytes",
    "marker_points_bytes",
    "marker_colors_bytes",
    "triangle_list_marker_bytes",
]


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def byte_array(data: bytes | bytearray | memoryview) -> array.array:
    """Copy bytes into the ``array.array('B')`` a ``_KEEP_DATA`` message keeps as it is."""
    out = array.array("B")
    out.frombytes(data)
    return out


# Constructor keywords that make a generated message keep an array.array('B') assigned to its
# uint8[] field instead of copying it (see the module docstring). Generators without the
# check_fields option (Humble, Iron) always check, and then also keep the array as it is.
_KEEP_DATA: dict[str, bool] = (
    {"check_fields": True} if "_check_fields" in PointCloud2.__slots__ else {}
)


def _copy_header(header: Header) -> Header:
    return Header(
        stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec), frame_id=header.frame_id
    )


# ---------------------------------------------------------------------------------- images in
def image_msg_to_array(msg: Image) -> tuple[npt.NDArray, str]:
    """View ``msg.data`` as an array of ``msg.encoding`` (no copy for little-endian data)."""
    arr = image_to_array(
        msg.data, msg.encoding, msg.width, msg.height, msg.step, bool(msg.is_bigendian)
    )
    return arr, msg.encoding


def image_to_rgb(msg: Image) -> npt.NDArray[np.uint8]:
    """Convert any colour/mono ``sensor_msgs/Image`` to ``H x W x 3`` uint8 RGB.

    Raises
    ------
    EncodingError
        Unknown encoding, bad size/step, truncated data, or a non-colour image.

    """
    arr, encoding = image_msg_to_array(msg)
    return to_rgb8(arr, encoding)


def compressed_to_rgb(
    msg: CompressedImage, max_pixels: int = MAX_PIXELS
) -> npt.NDArray[np.uint8]:
    """Decode a jpeg/png ``sensor_msgs/CompressedImage`` to ``H x W x 3`` uint8 RGB.

    An image whose header declares more than ``max_pixels`` pixels is rejected before it is
    decoded (a few-kilobyte payload can declare gigabytes).

    Raises
    ------
    EncodingError
        Corrupt, truncated or oversized payload, or an unsupported format.

    """
    arr, encoding = decode_compressed(msg.data, msg.format, max_pixels)
    return to_rgb8(arr, encoding)


# ---------------------------------------------------------------------------------- cameras
def depth_image_to_m(msg: Image) -> npt.NDArray[np.float32]:
    """Convert a 16UC1 (mm) or 32FC1 (m) depth ``sensor_msgs/Image`` to metres (NaN = none).

    An empty image, a non-depth encoding, a bad size/step or truncated data raise
    :class:`EncodingError`.
    """
    if msg.width == 0 or msg.height == 0:
        raise EncodingError(f"empty depth image ({msg.width}x{msg.height})")
    arr, encoding = image_msg_to_array(msg)
    return to_depth_m(arr, encoding)


def _read_cloud(
    msg: PointCloud2, colour: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8] | None]:
    """Finite x, y, z of a cloud and, where asked and the cloud has ``rgb``, their colours."""
    by_name = {f.name: f for f in msg.fields}
    missing = [name for name in "xyz" if name not in by_name]
    if missing:
        raise EncodingError(
            f"PointCloud2 has no field(s) {missing} (fields: {sorted(by_name)}); expected x, y, z"
        )
    wanted = [by_name[name] for name in "xyz"]
    if any(f.count != 1 for f in wanted):
        raise EncodingError("PointCloud2 fields x, y, z must have count 1")
    has_rgb = colour and "rgb" in by_name
    if has_rgb:
        wanted.append(by_name["rgb"])
    points = cloud_to_points(
        msg.data,
        wanted,
        msg.point_step,
        msg.width,
        msg.height,
        bool(msg.is_bigendian),
        msg.row_step,
    ).reshape(-1)
    xyz = np.stack([points[name].astype(np.float64) for name in "xyz"], axis=-1)
    keep = np.isfinite(xyz).all(axis=1)
    return xyz[keep], unpack_rgb(points["rgb"][keep]) if has_rgb else None


def cloud_msg_to_xyz(msg: PointCloud2) -> npt.NDArray[np.float64]:
    """Read the finite x, y, z of a ``sensor_msgs/PointCloud2`` as N x 3, by its fields.

    Missing x/y/z fields and layouts that :func:`~recon3d_ros.core.pointcloud.cloud_to_points`
    rejects (fields past ``point_step``, a short ``row_step`` or data) raise
    :class:`EncodingError`.
    """
    return _read_cloud(msg, colour=False)[0]


def cloud_msg_to_xyzrgb(
    msg: PointCloud2,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8] | None]:
    """Finite points (N x 3) of a PointCloud2 and their colours (N x 3 RGB; None without rgb)."""
    return _read_cloud(msg, colour=True)


def camera_to_info_msg(camera: PinholeCamera, header: Header) -> CameraInfo:
    """Describe a rectified image with ``camera``'s intrinsics (no ROI, no binning).

    Width and height are the camera's, so they match a depth image built for this camera
    exactly; ``D`` is five zeros with the ``plumb_bob`` model (the image is undistorted).
    """
    msg = CameraInfo()
    msg.header = _copy_header(header)
    msg.width = int(camera.width)
    msg.height = int(camera.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in camera.k_row_major()]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(v) for v in camera.p_row_major()]
    msg.binning_x = 0
    msg.binning_y = 0
    msg.roi = RegionOfInterest(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False)
    return msg


# ---------------------------------------------------------------------------------- images out
def array_to_image_msg(image: npt.NDArray, encoding: str, header: Header) -> Image:
    """Any array with a matching encoding to a ``sensor_msgs/Image`` (dense rows)."""
    f = array_to_image_fields(image, encoding, copy=False)  # one copy: into msg.data
    msg = Image(**_KEEP_DATA)
    msg.header = _copy_header(header)
    msg.height = f.height
    msg.width = f.width
    msg.encoding = f.encoding
    msg.is_bigendian = int(f.is_bigendian)
    msg.step = f.step
    msg.data = byte_array(f.data)
    return msg


def depth_to_image_msg(depth: npt.NDArray[np.floating], header: Header) -> Image:
    """Metric depth (H x W, metres, NaN invalid) to a ``32FC1`` image with ``header``."""
    arr = np.asarray(depth)
    if arr.ndim != 2:
        raise EncodingError(f"depth must be H x W, got shape {arr.shape}")
    return array_to_image_msg(arr.astype(np.float32, copy=False), "32FC1", header)


# ---------------------------------------------------------------------------------- clouds
def _point_fields(fields: Sequence) -> list[PointField]:
    return [
        PointField(name=f.name, offset=int(f.offset), datatype=int(f.datatype), count=int(f.count))
        for f in fields
    ]


def cloud_to_msg(cloud: CloudBuffer, header: Header) -> PointCloud2:
    """Wrap a :class:`CloudBuffer` (``core.pointcloud.depth_to_cloud``) as ``PointCloud2``.

    The message's ``data`` is ``cloud.data`` itself (an ``array.array('B')``), not a copy; a
    buffer of another type is copied once into one.
    """
    msg = PointCloud2(**_KEEP_DATA)
    msg.header = _copy_header(header)
    msg.height = int(cloud.height)
    msg.width = int(cloud.width)
    msg.fields = _point_fields(cloud.fields)
    msg.is_bigendian = bool(cloud.is_bigendian)
    msg.point_step = int(cloud.point_step)
    msg.row_step = int(cloud.row_step)
    data = cloud.data
    if not (isinstance(data, array.array) and data.typecode == "B"):
        data = byte_array(
            data if isinstance(data, (bytes, bytearray, memoryview))
            else np.asarray(data).tobytes()
        )
    msg.data = data
    msg.is_dense = bool(cloud.is_dense)
    return msg


# ---------------------------------------------------------------------------------- poses
def pose_to_matrix(position: Any, orientation: Any) -> npt.NDArray[np.float64]:
    """Return a ``geometry_msgs`` position/translation + quaternion as a 4x4 float64 transform.

    Takes any objects with ``x y z`` and ``x y z w`` (Pose, Transform). The quaternion is
    normalised (drivers send slightly unnormalised ones); a zero or non-finite one raises
    :class:`EncodingError` rather than becoming a made-up rotation.
    """
    from recon3d_ros.reconstruction.poses import matrix_from_quaternion

    t = np.array([position.x, position.y, position.z], dtype=np.float64)
    if not np.isfinite(t).all():
        raise EncodingError(f"pose position must be finite, got {t.tolist()}")
    T = np.eye(4)
    try:
        T[:3, :3] = matrix_from_quaternion(
            orientation.x, orientation.y, orientation.z, orientation.w
        )
    except ReconstructionError as exc:
        raise EncodingError(f"bad pose orientation: {exc}") from exc
    T[:3, 3] = t
    return T


def points_to_cloud_msg(
    points: npt.NDArray[np.floating],
    colors: npt.NDArray[np.uint8] | None,
    header: Header,
) -> PointCloud2:
    """Wrap N x 3 ``points`` as an unorganized cloud (height 1), ``rgb`` with ``colors``.

    The layout is the depth node's (``x y z`` float32, packed ``rgb`` float32 after them), so
    the same rviz2 display and :func:`cloud_msg_to_xyzrgb` read both.
    """
    xyz = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if colors is not None and len(colors) != len(xyz):
        raise EncodingError(f"{len(xyz)} points but {len(colors)} colours")
    fields = xyz_fields() if colors is None else xyzrgb_fields()
    packed = np.empty((len(xyz), len(fields)), dtype=np.float32)
    packed[:, :3] = xyz
    if colors is not None:
        packed[:, 3] = pack_rgb(np.asarray(colors, dtype=np.uint8).reshape(-1, 3))
    step = 4 * len(fields)
    cloud = CloudBuffer(
        data=byte_array(packed.tobytes()),
        fields=fields,
        point_step=step,
        row_step=step * len(xyz),
        width=len(xyz),
        height=1,
        is_dense=bool(np.isfinite(xyz).all()),
    )
    return cloud_to_msg(cloud, header)


class _CdrWriter:
    """Little-endian CDR (XCDR1, what rmw_fastrtps exchanges) written with numpy.

    Alignment is relative to the end of the 4-byte encapsulation header, as in Fast CDR.
    """

    def __init__(self) -> None:
        self.parts: list[bytes] = [b"\x00\x01\x00\x00"]  # CDR_LE, options 0
        self.size = 0  # bytes after the encapsulation header

    def _align(self, n: int) -> None:
        pad = -self.size % n
        if pad:
            self.parts.append(b"\x00" * pad)
            self.size += pad

    def raw(self, data: bytes, align: int) -> None:
        self._align(align)
        self.parts.append(data)
        self.size += len(data)

    def int32(self, *values: int) -> None:
        self.raw(np.asarray(values, dtype="<i4").tobytes(), 4)

    def uint32(self, *values: int) -> None:
        self.raw(np.asarray(values, dtype="<u4").tobytes(), 4)

    def float64(self, *values: float) -> None:
        self.raw(np.asarray(values, dtype="<f8").tobytes(), 8)

    def float32(self, *values: float) -> None:
        self.raw(np.asarray(values, dtype="<f4").tobytes(), 4)

    def boolean(self, value: bool) -> None:
        self.raw(b"\x01" if value else b"\x00", 1)

    def string(self, text: str) -> None:
        data = text.encode() + b"\x00"
        self.uint32(len(data))
        self.raw(data, 1)

    def array(self, values: npt.NDArray[Any], dtype: str, align: int) -> None:
        """Write a sequence of fixed-size elements: its length, then the packed values."""
        self.uint32(len(values))
        if len(values):
            self.raw(np.ascontiguousarray(values, dtype=dtype).tobytes(), align)

    def pieces(self, parts: Sequence[bytes], align: int) -> None:
        """Write the packed values of one sequence given in parts (its length written first)."""
        if not any(parts):
            return  # an empty sequence has no element to align
        self._align(align)
        for part in parts:
            self.parts.append(part)
            self.size += len(part)

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def mesh_to_marker_bytes(
    vertices: npt.NDArray[np.floating],
    triangles: npt.NDArray[np.integer],
    colors: npt.NDArray[np.uint8] | None,
    header: Header,
    namespace: str = "mesh",
    marker_id: int = 0,
) -> bytes:
    """Serialize a triangle mesh as a ``visualization_msgs/Marker`` TRIANGLE_LIST.

    Stock rviz2 shows the marker. A TRIANGLE_LIST carries three ``points`` per triangle (no
    index buffer), each with its own colour: vertex colours (uint8 RGB, N x 3) are copied to
    every corner that uses them; without colours the marker is a uniform grey. The pose is the
    identity (vertices in ``header.frame_id``), scale 1 (rviz2 multiplies the points by it),
    lifetime 0 (forever), action ADD with a fixed id, so each new mesh replaces the last.

    Why serialized: a Marker built from Python ``Point`` objects took 4.6 s for 100k triangles
    here (one object per corner, checked on assignment and converted again on publish); this
    writes the same CDR bytes with numpy in milliseconds, and ``Publisher.publish`` sends
    ``bytes`` as they are. ``rclpy.serialization.deserialize_message`` reads them back as a
    Marker (test/ros/test_conversions.py checks every field that way).
    """
    verts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    tris = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if tris.size and (tris.min() < 0 or tris.max() >= len(verts)):
        raise EncodingError(
            f"triangle indices must lie in [0, {len(verts)}), got {tris.min()}..{tris.max()}"
        )
    corners = tris.reshape(-1)
    colours = None
    if colors is not None:
        rgb = np.asarray(colors).reshape(-1, 3)
        if len(rgb) != len(verts):
            raise EncodingError(f"{len(verts)} vertices but {len(rgb)} colours")
        colours = [marker_colors_bytes(rgb[corners])]
    return triangle_list_marker_bytes(
        [marker_points_bytes(verts[corners])], colours, header, namespace, marker_id
    )


def marker_points_bytes(corners: npt.NDArray[np.floating]) -> bytes:
    """Serialize ``N x 3`` corners as a Marker's ``points`` payload (float64 x y z each)."""
    return np.ascontiguousarray(np.asarray(corners).reshape(-1, 3), dtype="<f8").tobytes()


def marker_colors_bytes(colors: npt.NDArray[Any]) -> bytes:
    """Serialize ``N x 3`` uint8 RGB as a Marker's ``colors`` payload (float32 RGBA, A = 1)."""
    rgb = np.asarray(colors).reshape(-1, 3)
    rgba = np.ones((len(rgb), 4), dtype="<f4")
    rgba[:, :3] = rgb.astype(np.float32) / np.float32(255.0)
    return rgba.tobytes()


def triangle_list_marker_bytes(
    points: Sequence[bytes],
    colors: Sequence[bytes] | None,
    header: Header,
    namespace: str = "mesh",
    marker_id: int = 0,
) -> bytes:
    """Serialize a TRIANGLE_LIST Marker from payload pieces, joined once.

    ``points`` are :func:`marker_points_bytes` pieces and ``colors`` (None: uniform grey) the
    :func:`marker_colors_bytes` pieces of the same corners, in the same order: a caller that
    keeps a mesh in parts (the fusion node, one per voxel block) serializes each part once and
    sends the whole mesh with a single copy. See :func:`mesh_to_marker_bytes` for the fields.
    """
    n_points = sum(len(p) for p in points) // 24
    if n_points % 3:
        raise EncodingError(f"a TRIANGLE_LIST needs 3 points per triangle, got {n_points}")
    if colors is not None and sum(len(c) for c in colors) // 16 != n_points:
        raise EncodingError(
            f"{n_points} points but {sum(len(c) for c in colors) // 16} colours"
        )
    grey = (0.7, 0.7, 0.7, 1.0)
    out = _CdrWriter()
    out.int32(int(header.stamp.sec))
    out.uint32(int(header.stamp.nanosec))
    out.string(str(header.frame_id))
    out.string(namespace)
    out.int32(int(marker_id), 11, 0)  # id, type TRIANGLE_LIST, action ADD
    out.float64(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # pose: identity
    out.float64(1.0, 1.0, 1.0)  # scale
    out.float32(*grey)  # color (used where per-point colours are absent)
    out.int32(0)
    out.uint32(0)  # lifetime 0: until replaced
    out.boolean(False)  # frame_locked
    out.uint32(n_points)  # points
    out.pieces(points, 8)
    out.uint32(0 if colors is None else n_points)  # colors
    if colors is not None:
        out.pieces(colors, 4)
    out.string("")  # texture_resource
    out.int32(0)
    out.uint32(0)
    out.string("")  # texture.header
    out.string("")  # texture.format
    out.uint32(0)  # texture.data
    out.uint32(0)  # uv_coordinates
    out.string("")  # text
    out.string("")  # mesh_resource
    out.string("")  # mesh_file.filename
    out.uint32(0)  # mesh_file.data
    out.boolean(False)  # mesh_use_embedded_materials
    return out.getvalue()
