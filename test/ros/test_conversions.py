"""Message <-> numpy conversions (real sensor_msgs types, no DDS needed)."""

from __future__ import annotations

import array
import math
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import (  # noqa: E402
    CameraInfo,
    CompressedImage,
    Image,
    PointCloud2,
    PointField,
)
from std_msgs.msg import Header  # noqa: E402

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.core.pointcloud import depth_to_cloud  # noqa: E402
from recon3d_ros.errors import CameraModelError, EncodingError  # noqa: E402
from recon3d_ros.ros.conversions import (  # noqa: E402
    camera_from_info,
    camera_to_info_msg,
    cloud_msg_to_xyz,
    cloud_msg_to_xyzrgb,
    cloud_to_msg,
    compressed_to_rgb,
    depth_image_to_m,
    depth_to_image_msg,
    image_to_rgb,
    ns_to_stamp,
    rectified_camera_from_info,
    stamp_to_ns,
)


def _header(frame: str = "cam", sec: int = 12, nanosec: int = 345) -> Header:
    h = Header()
    h.frame_id = frame
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def _info(k, width=64, height=48, d=(0.0,) * 5, frame="cam") -> CameraInfo:
    msg = CameraInfo()
    msg.header = _header(frame)
    msg.width, msg.height = width, height
    msg.k = [float(v) for v in k]
    msg.d = list(d)
    msg.distortion_model = "plumb_bob"
    return msg


def _image(arr: np.ndarray, encoding: str, step: int | None = None) -> Image:
    msg = Image()
    msg.header = _header()
    msg.height, msg.width = arr.shape[:2]
    msg.encoding = encoding
    row = arr.shape[1] * arr.itemsize * (arr.shape[2] if arr.ndim == 3 else 1)
    msg.step = row if step is None else step
    rows = arr.reshape(arr.shape[0], -1).view(np.uint8)
    padded = np.zeros((arr.shape[0], msg.step), np.uint8)
    padded[:, :row] = rows
    msg.data = array.array("B", padded.tobytes())
    return msg


def test_stamp_round_trip():
    ns = 1_700_000_000_123_456_789
    stamp = ns_to_stamp(ns)
    assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert stamp_to_ns(stamp) == ns


def test_depth_image_is_32fc1_with_the_given_header_and_exact_values():
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) / 7.0
    depth[1, 2] = np.nan
    msg = depth_to_image_msg(depth, _header("optical", 5, 6))
    assert msg.encoding == "32FC1"
    assert (msg.width, msg.height, msg.step) == (4, 3, 16)
    assert msg.header.frame_id == "optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (5, 6)
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    back = np.frombuffer(bytes(msg.data), dtype=">f4" if msg.is_bigendian else "<f4").reshape(3, 4)
    np.testing.assert_array_equal(back, depth)  # NaN compares equal in assert_array_equal


def test_depth_image_rejects_non_2d():
    with pytest.raises(EncodingError):
        depth_to_image_msg(np.zeros((2, 2, 2), np.float32), _header())


def test_camera_from_info_takes_k_not_the_image_centre():
    cam = camera_from_info(_info([100.0, 0, 10.0, 0, 110.0, 7.0, 0, 0, 1]))
    assert (cam.width, cam.height) == (64, 48)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (100.0, 110.0, 10.0, 7.0)
    assert cam.frame_id == "cam"


def test_camera_from_info_applies_roi_and_binning():
    msg = _info([100.0, 0, 40.0, 0, 100.0, 30.0, 0, 0, 1], width=80, height=60)
    msg.binning_x = msg.binning_y = 2
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 10, 4, 40, 20
    cam = camera_from_info(msg)
    assert (cam.width, cam.height) == (20, 10)
    assert (cam.fx, cam.cx, cam.cy) == (50.0, 15.0, 13.0)


@pytest.mark.parametrize("k", [[0.0] * 9, [math.nan, 0, 1, 0, 1, 1, 0, 0, 1]])
def test_camera_from_info_rejects_uncalibrated_or_nan_k(k):
    with pytest.raises(CameraModelError):
        camera_from_info(_info(k))


def test_camera_from_info_rejects_nan_distortion_and_zero_size():
    k = [100.0, 0, 10.0, 0, 110.0, 7.0, 0, 0, 1]
    with pytest.raises(CameraModelError, match="d must be finite"):
        camera_from_info(_info(k, d=(0.1, math.nan, 0.0, 0.0, 0.0)))
    with pytest.raises(CameraModelError, match="width/height"):
        camera_from_info(_info(k, width=0, height=0))


def test_camera_info_out_matches_the_camera_and_header():
    cam = PinholeCamera(40, 30, 31.0, 32.0, 19.25, 14.5, frame_id="x")
    msg = camera_to_info_msg(cam, _header("depth_frame", 1, 2))
    assert (msg.width, msg.height) == (40, 30)
    assert msg.header.frame_id == "depth_frame" and msg.header.stamp.nanosec == 2
    np.testing.assert_allclose(msg.k, [31.0, 0, 19.25, 0, 32.0, 14.5, 0, 0, 1])
    np.testing.assert_allclose(msg.p, [31.0, 0, 19.25, 0, 0, 32.0, 14.5, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(msg.r, np.eye(3).reshape(-1))
    assert msg.distortion_model == "plumb_bob" and list(msg.d) == [0.0] * 5
    assert (msg.binning_x, msg.binning_y, msg.roi.width, msg.roi.height) == (0, 0, 0, 0)
    # Round trip through the reader gives the same intrinsics.
    back = camera_from_info(msg)
    assert (back.width, back.height, back.fx, back.fy, back.cx, back.cy) == (
        40,
        30,
        31.0,
        32.0,
        19.25,
        14.5,
    )
    assert not back.is_distorted and back.frame_id == "depth_frame"


def test_image_to_rgb_swaps_bgr_and_honours_row_padding():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    rgb = image_to_rgb(_image(bgr, "bgr8", step=7 * 3 + 5))
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])


def test_image_to_rgb_rejects_truncated_data_and_unknown_encoding():
    msg = _image(np.zeros((4, 4, 3), np.uint8), "rgb8")
    msg.data = array.array("B", bytes(10))
    with pytest.raises(EncodingError, match="truncated"):
        image_to_rgb(msg)
    with pytest.raises(EncodingError, match="unsupported"):
        image_to_rgb(_image(np.zeros((4, 4, 3), np.uint8), "weird42"))


def test_compressed_png_and_jpeg_decode_to_rgb():
    cv2 = pytest.importorskip("cv2")
    rgb = np.zeros((16, 20, 3), np.uint8)
    rgb[..., 0] = 200  # red
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    msg = CompressedImage(format="png")
    msg.data = array.array("B", png.tobytes())
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)
    ok, jpg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8")
    msg.data = array.array("B", jpg.tobytes())
    out = compressed_to_rgb(msg)
    assert out.shape == (16, 20, 3)
    assert abs(int(out[..., 0].mean()) - 200) <= 3 and out[..., 2].mean() < 5


def test_cloud_message_carries_the_buffer_fields():
    cam = PinholeCamera(4, 3, 2.0, 2.0, 1.5, 1.0, frame_id="cam")
    depth = np.full((3, 4), 2.0, np.float32)
    depth[0, 0] = np.nan
    buf = depth_to_cloud(depth, cam, rgb=np.full((3, 4, 3), 9, np.uint8))
    msg = cloud_to_msg(buf, _header("cam"))
    assert (msg.width, msg.height, msg.point_step, msg.row_step) == (4, 3, 16, 64)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1),
        ("y", 4, 7, 1),
        ("z", 8, 7, 1),
        ("rgb", 12, 7, 1),
    ]
    assert msg.is_dense is False
    assert msg.header.frame_id == "cam"
    assert isinstance(msg.data, array.array) and bytes(msg.data) == bytes(buf.data)


def test_cloud_message_data_is_the_filled_buffer_not_a_copy():
    """The 4.9 MB buffer depth_to_cloud filled becomes the message's data as it is.

    tracemalloc counts array.array's and numpy's allocations: wrapping the buffer may allocate
    the header and PointFields, never another copy of the points (a copy would be >= 100 %).
    """
    cam = PinholeCamera.from_fov(640, 480, 70.0)
    depth = np.random.default_rng(2).uniform(0.5, 5.0, (480, 640)).astype(np.float32)
    cloud = depth_to_cloud(depth, cam, rgb=np.full((480, 640, 3), 40, np.uint8))
    cloud_to_msg(cloud, _header("cam"))  # warm-up: first-use imports and type support
    tracemalloc.start()
    try:
        msg = cloud_to_msg(cloud, _header("cam"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert msg.data is cloud.data
    assert len(msg.data) == 640 * 480 * 16
    assert peak < 0.01 * len(cloud.data)
    # The message alone keeps its points: later clouds are built elsewhere.
    sent = bytes(msg.data)
    del cloud
    later = depth_to_cloud(depth * 2, cam, rgb=np.full((480, 640, 3), 90, np.uint8))
    assert later.data is not msg.data and bytes(msg.data) == sent


def test_rectified_camera_comes_from_p_with_roi_and_binning():
    msg = _info([100.0, 0, 40.0, 0, 100.0, 30.0, 0, 0, 1], width=80, height=60)
    assert rectified_camera_from_info(msg) is None  # P unset
    msg.p = [90.0, 0.0, 41.0, 0.0, 0.0, 92.0, 29.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    cam = rectified_camera_from_info(msg)
    assert (cam.width, cam.height) == (80, 60)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (90.0, 92.0, 41.0, 29.0)
    assert not cam.is_distorted
    msg.binning_x = msg.binning_y = 2
    cam = rectified_camera_from_info(msg)
    assert (cam.width, cam.height, cam.fx, cam.cx) == (40, 30, 45.0, 20.5)


# ------------------------------------------------------------------ metric scale references
def _depth_msg(arr: np.ndarray, encoding: str) -> Image:
    msg = Image()
    msg.height, msg.width = arr.shape
    msg.encoding = encoding
    msg.step = int(arr.strides[0])
    msg.data = array.array("B", arr.tobytes())
    return msg


def test_reference_depth_16uc1_is_millimetres_with_zero_unknown():
    mm = np.array([[0, 1500], [3000, 65535]], dtype="<u2")
    out = depth_image_to_m(_depth_msg(mm, "16UC1"))
    assert out.dtype == np.float32
    assert math.isnan(out[0, 0])
    np.testing.assert_allclose(out[[0, 1, 1], [1, 0, 1]], [1.5, 3.0, 65.535], rtol=1e-6)


def test_reference_depth_32fc1_is_metres_and_non_positive_is_unknown():
    m = np.array([[2.5, 0.0, -1.0, np.inf]], dtype="<f4")
    out = depth_image_to_m(_depth_msg(m, "32FC1"))
    assert out[0, 0] == pytest.approx(2.5)
    assert np.isnan(out[0, 1:]).all()


def test_reference_depth_rejects_colour_and_empty_images():
    colour = _depth_msg(np.zeros((2, 6), np.uint8), "rgb8")
    colour.width = 2
    with pytest.raises(EncodingError, match="depth encoding"):
        depth_image_to_m(colour)
    empty = _depth_msg(np.zeros((1, 4), "<f4"), "32FC1")
    empty.height = 0
    with pytest.raises(EncodingError, match="empty"):
        depth_image_to_m(empty)


def _cloud_msg(records: np.ndarray, width: int, height: int, row_pad: int = 0) -> PointCloud2:
    """Build a PointCloud2 from a structured array, field by field (rows padded by row_pad)."""
    codes = {np.dtype("<f4"): PointField.FLOAT32, np.dtype("<f8"): PointField.FLOAT64,
             np.dtype("<u2"): PointField.UINT16}
    msg = PointCloud2()
    msg.height, msg.width = height, width
    msg.point_step = records.dtype.itemsize
    msg.row_step = msg.point_step * width + row_pad
    for name in records.dtype.names:
        dt, offset = records.dtype.fields[name][:2]
        msg.fields.append(PointField(name=name, offset=offset, datatype=codes[dt], count=1))
    rows = records.reshape(height, width).view(np.uint8).reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, row_pad), 0xAB, np.uint8)], axis=1)
    msg.data = array.array("B", padded.tobytes())
    return msg


def _xyz_records(points: np.ndarray) -> np.ndarray:
    # intensity before x and a float64 z: the reader must go by the declared offsets and types.
    dtype = np.dtype({"names": ["intensity", "x", "y", "z"],
                      "formats": ["<u2", "<f4", "<f4", "<f8"],
                      "offsets": [0, 4, 8, 16], "itemsize": 32})
    rec = np.zeros(len(points), dtype)
    rec["intensity"] = 7
    rec["x"], rec["y"], rec["z"] = points[:, 0], points[:, 1], points[:, 2]
    return rec


def test_cloud_xyz_follows_offsets_types_and_row_padding_and_drops_nan():
    pts = np.array(
        [[0.5, -1.0, 3.0], [np.nan, 0.0, 1.0], [1.25, 2.0, 4.5], [-2.0, 0.25, 8.0],
         [0.0, 0.0, 0.1], [9.0, 9.0, 9.0]]
    )
    msg = _cloud_msg(_xyz_records(pts), width=3, height=2, row_pad=5)
    out = cloud_msg_to_xyz(msg)
    expected = pts[np.isfinite(pts).all(axis=1)]
    np.testing.assert_allclose(out, expected.astype(np.float32).astype(np.float64))
    assert out.shape == (5, 3) and out.dtype == np.float64


def test_empty_cloud_gives_no_points():
    msg = _cloud_msg(_xyz_records(np.zeros((0, 3))), width=0, height=1)
    assert cloud_msg_to_xyz(msg).shape == (0, 3)


def _xyzrgb_msg(row_step: int) -> PointCloud2:
    """Build a 2x2 cloud in PCL's XYZRGB layout: rgb is a FLOAT32 field holding 0x00RRGGBB."""
    dtype = np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["<f4", "<f4", "<f4", "<u4"],
                      "offsets": [0, 4, 8, 12], "itemsize": 16})
    rec = np.zeros(4, dtype)
    rec["x"] = [0.5, 1.0, np.nan, -3.0]
    rec["z"] = [1.0, 2.0, 3.0, 4.0]
    rec["rgb"] = [0x0A141E, 0xFF0000, 0x00FF00, 0x010203]
    msg = PointCloud2(height=2, width=2, point_step=16, row_step=row_step)
    msg.fields = [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
                  for n, o in (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))]
    pad = max(row_step - 32, 0)
    rows = rec.view(np.uint8).reshape(2, 32)
    msg.data = array.array("B", np.concatenate(
        [rows, np.full((2, pad), 0xCD, np.uint8)], axis=1).tobytes())
    return msg


def test_cloud_colours_come_with_their_points_across_padded_and_packed_rows():
    expected_xyz = [[0.5, 0.0, 1.0], [1.0, 0.0, 2.0], [-3.0, 0.0, 4.0]]  # the NaN point dropped
    expected_rgb = [[10, 20, 30], [255, 0, 0], [1, 2, 3]]
    # row_step 40: 8 bytes of padding after each row; row_step 0 (unset): rows packed.
    for row_step in (40, 0):
        xyz, rgb = cloud_msg_to_xyzrgb(_xyzrgb_msg(row_step))
        np.testing.assert_array_equal(xyz, expected_xyz)
        np.testing.assert_array_equal(rgb, expected_rgb)
    no_colour = _xyzrgb_msg(32)
    no_colour.fields = no_colour.fields[:3]
    xyz, rgb = cloud_msg_to_xyzrgb(no_colour)
    assert rgb is None and xyz.shape == (3, 3)


def test_malformed_clouds_raise_encoding_errors():
    good = _cloud_msg(_xyz_records(np.ones((4, 3))), width=4, height=1)
    no_z = _cloud_msg(_xyz_records(np.ones((4, 3))), width=4, height=1)
    no_z.fields = [f for f in no_z.fields if f.name != "z"]
    with pytest.raises(EncodingError, match="z"):
        cloud_msg_to_xyz(no_z)
    truncated = _cloud_msg(_xyz_records(np.ones((4, 3))), width=4, height=1)
    truncated.data = array.array("B", bytes(good.data)[:50])
    with pytest.raises(EncodingError, match="^PointCloud2 data has 50 bytes"):
        cloud_msg_to_xyz(truncated)
    past_step = _cloud_msg(_xyz_records(np.ones((4, 3))), width=4, height=1)
    past_step.point_step = 12  # z sits at offset 16
    past_step.row_step = 48
    with pytest.raises(EncodingError):
        cloud_msg_to_xyz(past_step)
    short_rows = _cloud_msg(_xyz_records(np.ones((4, 3))), width=2, height=2)
    short_rows.row_step = 10
    with pytest.raises(EncodingError, match="row_step"):
        cloud_msg_to_xyz(short_rows)
    bad_type = _cloud_msg(_xyz_records(np.ones((4, 3))), width=4, height=1)
    bad_type.fields[1].datatype = 42
    with pytest.raises(EncodingError, match="datatype"):
        cloud_msg_to_xyz(bad_type)


# ------------------------------------------------------------------ calibrations that cannot be
def _good_info() -> CameraInfo:
    msg = _info([500.0, 0, 318.3, 0, 520.0, 241.7, 0, 0, 1], width=640, height=480)
    msg.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    msg.p = [500.0, 0, 318.3, 0, 0, 520.0, 241.7, 0, 0, 0, 1.0, 0]
    return msg


def _set_roi(msg, x, y, w, h):
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = x, y, w, h


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("roi", (5000, 5000, 640, 480), r"ROI 640x480 at offset \(5000, 5000\)"),
        ("k", [1e-9, 0, 318.3, 0, 520.0, 241.7, 0, 0, 1], "focal length fx=1e-09"),
        ("k", [1e300, 0, 318.3, 0, 1e300, 241.7, 0, 0, 1], "focal length fx=1e\\+300"),
        ("k", [500.0, 0, 318.3, 0, 520.0, 241.7, 0, 0, 0], r"K\[8\] is 0"),
        ("k", [500.0, 0, 318.3, 0, 520.0, 241.7, 0, 0, 5], r"K\[8\] is 5"),
        ("k", [500.0, 1e6, 318.3, 0, 520.0, 241.7, 0, 0, 1], "skew"),
        ("k", [500.0, 0, 1e12, 0, 520.0, 241.7, 0, 0, 1], "principal point cx=1e\\+12"),
        ("p", [500.0, 0, 318.3, 0, 0, 520.0, 241.7, 0, 0, 0, 0.0, 0], r"P\[10\] is 0"),
        ("p", [1e300, 0, 318.3, 0, 0, 520.0, 241.7, 0, 0, 0, 1.0, 0], "P focal length"),
        ("p", [500.0, 0, 318.3, math.nan, 0, 520.0, 241.7, 0, 0, 0, 1.0, 0], "p must hold"),
        ("r", [1.0, 0, 0, 0, 1.0, 0, 0, 0, 3.0], "not a rotation"),
    ],
)
def test_camera_from_info_rejects_a_calibration_no_camera_has(field, value, reason):
    import warnings

    msg = _good_info()
    camera_from_info(msg)  # the unmodified message is fine
    if field == "roi":
        _set_roi(msg, *value)
    else:
        setattr(msg, field, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. numpy's "overflow encountered"
        with pytest.raises(CameraModelError, match=reason):
            camera_from_info(msg)


def test_camera_from_info_carries_r_and_unset_p_stays_unset():
    cv2 = pytest.importorskip("cv2")
    rot, _ = cv2.Rodrigues(np.array([0.01, 0.04, -0.02]))
    msg = _good_info()
    msg.r = [float(v) for v in rot.reshape(-1)]
    np.testing.assert_allclose(camera_from_info(msg).rotation, rot)
    msg.p = [0.0] * 12
    assert rectified_camera_from_info(msg) is None
    assert camera_from_info(msg).fx == 500.0


def test_compressed_to_rgb_rejects_a_declared_size_over_the_limit(bad_payloads):
    msg = CompressedImage(format="jpeg")
    msg.data = array.array("B", bad_payloads.jpeg_bomb(width=400, height=300))
    with pytest.raises(EncodingError, match=r"400x300 = 120000 pixels.*limit of 100000"):
        compressed_to_rgb(msg, max_pixels=100_000)


# ---------------------------------------------------------------------------------- fusion node
def _tetrahedron() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]], np.float32)
    triangles = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], np.int32)
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [51, 102, 204]], np.uint8)
    return vertices, triangles, colors


def test_mesh_marker_bytes_read_back_by_rclpy_as_a_triangle_list():
    from builtin_interfaces.msg import Time
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import Marker

    from recon3d_ros.ros.conversions import mesh_to_marker_bytes

    vertices, triangles, colors = _tetrahedron()
    header = Header(stamp=Time(sec=12, nanosec=345), frame_id="map")
    marker = deserialize_message(
        mesh_to_marker_bytes(vertices, triangles, colors, header, namespace="room", marker_id=7),
        Marker,
    )
    assert (marker.header.stamp.sec, marker.header.stamp.nanosec) == (12, 345)
    assert marker.header.frame_id == "map" and marker.ns == "room" and marker.id == 7
    assert marker.type == Marker.TRIANGLE_LIST and marker.action == Marker.ADD
    assert marker.pose.orientation.w == 1.0 and marker.pose.position.x == 0.0
    assert (marker.scale.x, marker.scale.y, marker.scale.z) == (1.0, 1.0, 1.0)
    assert marker.lifetime.sec == 0 and not marker.frame_locked
    # Three points per triangle, in triangle order; corner (1, 2, 3) of the last one.
    points = [(p.x, p.y, p.z) for p in marker.points]
    assert len(points) == 12
    assert points[9:] == [(1.0, 0.0, 0.0), (0.0, 2.0, 0.0), (0.0, 0.0, 3.0)]
    last = marker.colors[11]  # vertex 3's colour, 51/255 = 0.2 etc.
    assert (last.r, last.g, last.b, last.a) == pytest.approx((0.2, 0.4, 0.8, 1.0), abs=1e-6)
    assert marker.text == "" and marker.mesh_resource == "" and not marker.uv_coordinates


def test_mesh_marker_bytes_without_colours_or_triangles():
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import Marker

    from recon3d_ros.ros.conversions import mesh_to_marker_bytes

    vertices, triangles, _ = _tetrahedron()
    grey = deserialize_message(
        mesh_to_marker_bytes(vertices, triangles, None, Header(frame_id="odom")), Marker)
    assert len(grey.points) == 12 and not grey.colors and grey.color.a == 1.0
    empty = deserialize_message(
        mesh_to_marker_bytes(vertices[:0], triangles[:0], None, Header(frame_id="odom")), Marker)
    assert not empty.points and empty.header.frame_id == "odom"
    with pytest.raises(EncodingError, match="triangle indices"):
        mesh_to_marker_bytes(vertices[:3], triangles, None, Header())


def test_triangle_list_marker_from_pieces_reads_back_as_the_marker():
    from geometry_msgs.msg import Point
    from rclpy.serialization import deserialize_message
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker

    from recon3d_ros.ros.conversions import (
        marker_colors_bytes,
        marker_points_bytes,
        triangle_list_marker_bytes,
    )

    vertices, triangles, colors = _tetrahedron()
    corners, rgb = vertices[triangles].reshape(-1, 3), colors[triangles].reshape(-1, 3)
    header = Header(frame_id="map")
    header.stamp.sec, header.stamp.nanosec = 3, 4
    # The reference: the same Marker built field by field (rclpy reads ours back; bytes are
    # not compared: CDR padding bytes are unspecified).
    expected = Marker(header=header, ns="mesh", id=0, type=Marker.TRIANGLE_LIST,
                      action=Marker.ADD)
    expected.pose.orientation.w = 1.0
    expected.scale.x = expected.scale.y = expected.scale.z = 1.0
    grey = float(np.float32(0.7))  # float32 on the wire
    expected.color = ColorRGBA(r=grey, g=grey, b=grey, a=1.0)
    expected.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in corners]
    expected.colors = [ColorRGBA(r=float(np.float32(r) / np.float32(255)),
                                 g=float(np.float32(g) / np.float32(255)),
                                 b=float(np.float32(b) / np.float32(255)), a=1.0)
                       for r, g, b in rgb]
    pieces = ([marker_points_bytes(corners[:6]), marker_points_bytes(corners[6:])],
              [marker_colors_bytes(rgb[:6]), marker_colors_bytes(rgb[6:])])
    assert deserialize_message(triangle_list_marker_bytes(*pieces, header), Marker) == expected
    expected.points, expected.colors = [], []
    assert deserialize_message(triangle_list_marker_bytes([], None, header), Marker) == expected
    with pytest.raises(EncodingError, match="3 points per triangle"):
        triangle_list_marker_bytes([marker_points_bytes(corners[:4])], None, header)
    with pytest.raises(EncodingError, match="colours"):
        triangle_list_marker_bytes(pieces[0], pieces[1][:1], header)


def test_points_to_cloud_msg_packs_xyz_and_rgb_like_the_depth_node():
    from recon3d_ros.ros.conversions import points_to_cloud_msg

    vertices, _, colors = _tetrahedron()
    msg = points_to_cloud_msg(vertices, colors, Header(frame_id="map"))
    assert (msg.height, msg.width, msg.point_step) == (1, 4, 16)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"]
    raw = np.frombuffer(bytes(msg.data), dtype="<u4").reshape(4, 4)
    assert raw[3, 3] == (51 << 16) | (102 << 8) | 204  # PCL's packed 0x00RRGGBB
    xyz, rgb = cloud_msg_to_xyzrgb(msg)
    np.testing.assert_array_equal(xyz, vertices)
    np.testing.assert_array_equal(rgb, colors)
    plain = points_to_cloud_msg(vertices, None, Header(frame_id="map"))
    assert plain.point_step == 12 and len(plain.data) == 48


def test_pose_to_matrix_matches_a_hand_computed_rotation():
    from geometry_msgs.msg import Point, Quaternion

    from recon3d_ros.ros.conversions import pose_to_matrix

    # 90 degrees about z, quaternion (0, 0, sin 45, cos 45), scaled by 2: normalised first.
    s = math.sqrt(0.5) * 2
    T = pose_to_matrix(Point(x=1.0, y=2.0, z=3.0), Quaternion(x=0.0, y=0.0, z=s, w=s))
    expected = np.array([[0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]], float)
    np.testing.assert_allclose(T, expected, atol=1e-12)
    with pytest.raises(EncodingError, match="orientation"):
        pose_to_matrix(Point(), Quaternion(x=0.0, y=0.0, z=0.0, w=0.0))
