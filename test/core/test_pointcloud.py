"""Tests for recon3d_ros.core.pointcloud (depth -> PointCloud2 buffer)."""

from __future__ import annotations

import array
import json
import math
import struct
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.pointcloud import (
    FLOAT32,
    CloudField,
    clear_ray_cache,
    cloud_to_points,
    depth_to_cloud,
    depth_to_points,
    pack_rgb,
    ray_grid_for,
    unpack_rgb,
)
from recon3d_ros.errors import CameraModelError, EncodingError

# A 4 x 3 camera: fx = 2, fy = 4, cx = 1.5, cy = 1.
CAM = PinholeCamera(width=4, height=3, fx=2.0, fy=4.0, cx=1.5, cy=1.0)


def _hand_points(depth: np.ndarray) -> np.ndarray:
    """Compute x = (u - 1.5) * z / 2, y = (v - 1) * z / 4 pixel by pixel."""
    out = np.empty(depth.shape + (3,), np.float64)
    for v in range(depth.shape[0]):
        for u in range(depth.shape[1]):
            z = float(depth[v, u])
            out[v, u] = ((u - 1.5) * z / 2.0, (v - 1.0) * z / 4.0, z)
    return out


_PCL_TYPES = {1: "b", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 8: "d"}


def _pcl_like_read(cloud, names: list[str]) -> list[list[tuple]]:
    """Like pcl::fromROSMsg: locate each named field in the field list, unpack per point."""
    by_name = {f.name: f for f in cloud.fields}
    order = "<" if not cloud.is_bigendian else ">"
    rows = []
    for r in range(cloud.height):
        row = []
        for c in range(cloud.width):
            base = r * cloud.row_step + c * cloud.point_step
            row.append(tuple(
                struct.unpack_from(order + _PCL_TYPES[by_name[n].datatype], cloud.data,
                                   base + by_name[n].offset)[0]
                for n in names
            ))
        rows.append(row)
    return rows


def test_ray_grid_values_and_cache() -> None:
    clear_ray_cache()
    grid = ray_grid_for(CAM)
    assert grid.x.shape == (3, 4) and grid.x.dtype == np.float32
    np.testing.assert_allclose(grid.x[0], [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(grid.y[:, 0], [-0.25, 0.0, 0.25])
    assert ray_grid_for(PinholeCamera(4, 3, 2.0, 4.0, 1.5, 1.0, frame_id="other")) is grid
    moved = ray_grid_for(PinholeCamera(4, 3, 2.0, 4.0, 1.0, 1.0))
    assert moved is not grid
    np.testing.assert_allclose(moved.x[0], [-0.5, 0.0, 0.5, 1.0])


def test_back_projection_matches_hand_computed_points() -> None:
    depth = np.array(
        [[1.0, 2.0, 3.0, 4.0], [0.5, 1.5, 2.5, 3.5], [2.0, 2.0, 8.0, 1.0]], np.float32
    )
    expected = _hand_points(depth)
    np.testing.assert_allclose(depth_to_points(depth, CAM), expected, rtol=1e-6)
    cloud = depth_to_cloud(depth, CAM)
    # width = columns (sensor_msgs_py once had them swapped)
    assert (cloud.width, cloud.height) == (4, 3)
    assert cloud.is_dense
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    assert pts.shape == (3, 4)
    got = np.stack([pts["x"], pts["y"], pts["z"]], -1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # The first point's hand value: pixel (0, 0) at z = 1.
    assert pts[0, 0]["x"] == pytest.approx(-0.75) and pts[0, 0]["y"] == pytest.approx(-0.25)


def test_layout_xyz_and_pcl_style_reader_agree() -> None:
    depth = np.array([[1.0, 2.0, 3.0, 4.0]] * 3, np.float32)
    cloud = depth_to_cloud(depth, CAM)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1)
    ]
    assert cloud.row_step == cloud.point_step * cloud.width
    assert len(cloud.data) == cloud.row_step * cloud.height
    # The type PointCloud2.data stores as is (ros.conversions.cloud_to_msg relies on it).
    assert isinstance(cloud.data, array.array) and cloud.data.typecode == "B"
    ours = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    pcl = _pcl_like_read(cloud, ["x", "y", "z"])
    for r in range(3):
        for c in range(4):
            assert pcl[r][c] == pytest.approx(tuple(float(ours[r, c][n]) for n in "xyz"))
            assert pcl[r][c][2] == depth[r, c]


def test_rgb_packing_layout_and_readers() -> None:
    depth = np.full((3, 4), 2.0, np.float32)
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1, 3] = (18, 52, 86)
    cloud = depth_to_cloud(depth, CAM, rgb)
    assert cloud.point_step == 16
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields][3] == ("rgb", 12, FLOAT32)
    # Raw bytes of the rgb field reinterpreted as uint32, the way PCL/rviz2 read it.
    word = struct.unpack_from("<I", cloud.data, 0 * 16 + 12)[0]
    assert word == 0xFF0000
    assert struct.unpack_from("<I", cloud.data, 1 * 16 + 12)[0] == 0x00FF00
    assert struct.unpack_from("<I", cloud.data, 2 * 16 + 12)[0] == 0x0000FF
    assert struct.unpack_from("<I", cloud.data, (1 * 4 + 3) * 16 + 12)[0] == 0x123456
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    np.testing.assert_array_equal(unpack_rgb(pts["rgb"]), rgb.reshape(-1, 3))
    pcl = _pcl_like_read(cloud, ["x", "y", "z", "rgb"])
    packed_from_pcl = struct.unpack("<I", struct.pack("<f", pcl[1][3][3]))[0]
    assert packed_from_pcl == 0x123456
    assert pcl[1][3][:3] == pytest.approx((0.75 * 2.0, 0.0, 2.0))


def test_pack_unpack_rgb_round_trip() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    packed = pack_rgb(rgb)
    assert packed.dtype == np.float32
    r, g, b = (int(v) for v in rgb[0])
    assert packed.view(np.uint32)[0] == (r << 16) | (g << 8) | b
    np.testing.assert_array_equal(unpack_rgb(packed), rgb)


def test_stride_keeps_original_rays() -> None:
    cam = PinholeCamera(7, 5, 3.0, 3.0, 2.7, 1.9)
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 5.0, (5, 7)).astype(np.float32)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    cloud = depth_to_cloud(depth, cam, rgb, stride=3)
    assert (cloud.height, cloud.width) == (2, 3)  # rows 0, 3 ; cols 0, 3, 6
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    for i, v in enumerate((0, 3)):
        for j, u in enumerate((0, 3, 6)):
            z = depth[v, u]
            assert pts[i, j]["z"] == z
            assert pts[i, j]["x"] == pytest.approx((u - 2.7) * z / 3.0, rel=1e-6)
            assert pts[i, j]["y"] == pytest.approx((v - 1.9) * z / 3.0, rel=1e-6)
            np.testing.assert_array_equal(unpack_rgb(pts[i, j]["rgb"])[0], rgb[v, u])


def test_invalid_depth_gives_all_nan_points_and_not_dense() -> None:
    depth = np.array([[np.nan, 0.0, -1.0, np.inf], [1.0, 0.2, 5.0, 9.0], [1, 1, 1, 1]], np.float32)
    cloud = depth_to_cloud(depth, CAM, min_depth=0.3, max_depth=8.0)
    assert not cloud.is_dense
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    xyz = np.stack([pts[n] for n in "xyz"], -1)
    invalid = np.array([[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]], bool)
    assert np.isnan(xyz[invalid]).all()
    assert np.isfinite(xyz[~invalid]).all()
    assert pts[1, 2]["z"] == 5.0


def test_min_max_bounds_are_inclusive() -> None:
    depth = np.array([[0.5, 1.0, 2.0, 2.5]] * 3, np.float32)
    z = depth_to_points(depth, CAM, min_depth=1.0, max_depth=2.0)[..., 2]
    assert np.isnan(z[:, 0]).all() and np.isnan(z[:, 3]).all()
    np.testing.assert_array_equal(z[:, 1:3], depth[:, 1:3])
    # Depth exactly at both bounds is all valid: a dense cloud of those very values.
    at_bounds = np.array([[1.0, 2.0, 1.0, 2.0]] * 3, np.float32)
    cloud = depth_to_cloud(at_bounds, CAM, min_depth=1.0, max_depth=2.0)
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    assert cloud.is_dense
    np.testing.assert_array_equal(pts["z"], at_bounds)
    # NaN next to depth at the bounds: only the NaN pixel is invalid.
    at_bounds[1, 1] = np.nan
    cloud = depth_to_cloud(at_bounds, CAM, min_depth=1.0, max_depth=2.0)
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    assert not cloud.is_dense
    assert np.isnan(pts[1, 1]["x"]) and np.isnan(pts["z"]).sum() == 1


def test_float64_depth_is_accepted() -> None:
    depth = np.full((3, 4), 1.5, np.float64)
    cloud = depth_to_cloud(depth, CAM)
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    assert pts["z"].dtype == np.float32
    np.testing.assert_array_equal(pts["z"], 1.5)


def test_input_validation() -> None:
    with pytest.raises(CameraModelError, match="4x3"):
        depth_to_cloud(np.ones((4, 3), np.float32), CAM)
    with pytest.raises(EncodingError, match="rgb"):
        depth_to_cloud(np.ones((3, 4), np.float32), CAM, rgb=np.zeros((3, 4), np.uint8))
    with pytest.raises(EncodingError, match="stride"):
        depth_to_cloud(np.ones((3, 4), np.float32), CAM, stride=0)


def test_reader_honours_field_list_count_big_endian_and_row_padding() -> None:
    # A foreign layout: intensity (uint16) first, xyz as one float64 field with count 3,
    # 2 spare bytes per point, 4 spare bytes per row, big-endian.
    fields = [CloudField("intensity", 0, 4, 1), CloudField("xyz", 4, 8, 3)]
    point_step, width, height = 30, 2, 2
    row_step = point_step * width + 4
    buf = bytearray(row_step * height)
    values = {}
    for r in range(height):
        for c in range(width):
            base = r * row_step + c * point_step
            xyz = (r + 0.5, c - 0.25, 10.0 * r + c)
            struct.pack_into(">H", buf, base, 100 * r + c)
            struct.pack_into(">3d", buf, base + 4, *xyz)
            values[r, c] = (100 * r + c, xyz)
    pts = cloud_to_points(bytes(buf), fields, point_step, width, height, is_bigendian=True,
                          row_step=row_step)
    for (r, c), (intensity, xyz) in values.items():
        assert pts[r, c]["intensity"] == intensity
        assert tuple(pts[r, c]["xyz"]) == xyz


def test_reader_rejects_short_data_and_unknown_types() -> None:
    with pytest.raises(EncodingError, match="bytes"):
        cloud_to_points(bytes(10), [CloudField("x", 0, FLOAT32)], 4, 2, 2)
    with pytest.raises(EncodingError, match="datatype"):
        cloud_to_points(bytes(16), [CloudField("x", 0, 9)], 4, 2, 2)


def test_reader_checks_row_step_and_field_layout() -> None:
    """Rows of 2 points x 4 bytes: a row_step under 8 would read rows overlapping each other."""
    data = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    with pytest.raises(EncodingError, match="row_step 6 is shorter"):
        cloud_to_points(data, [CloudField("x", 0, FLOAT32)], 4, 2, 2, row_step=6)
    for unset in (None, 0):  # PointCloud2 leaves row_step 0 when the writer did not set it
        pts = cloud_to_points(data, [CloudField("x", 0, FLOAT32)], 4, 2, 2, row_step=unset)
        np.testing.assert_array_equal(pts["x"], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(EncodingError, match="layout"):  # x at offset 4 of a 4-byte point
        cloud_to_points(data, [CloudField("x", 4, FLOAT32)], 4, 2, 2)


def test_large_frame_layout_spot_check() -> None:
    cam = PinholeCamera.from_fov(640, 480, 70.0)
    depth = np.linspace(0.5, 10.0, 640 * 480, dtype=np.float32).reshape(480, 640)
    cloud = depth_to_cloud(depth, cam, stride=2)
    assert (cloud.width, cloud.height) == (320, 240)
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    v, u = 400, 602
    z = float(depth[v, u])
    assert float(pts[v // 2, u // 2]["x"]) == pytest.approx((u - cam.cx) * z / cam.fx, rel=1e-5)
    assert float(pts[v // 2, u // 2]["y"]) == pytest.approx((v - cam.cy) * z / cam.fy, rel=1e-5)
    assert math.isfinite(float(pts["x"].sum()))


@pytest.mark.parametrize("stride", [1, 3])
def test_large_xyzrgb_cloud_matches_per_pixel_formulas(stride: int) -> None:
    """640x480 spans several fill blocks (and a partial last one): every point is checked.

    Expected values: x = (u - cx) z / fx, y = (v - cy) z / fy in float64 and the colour word
    (r << 16) | (g << 8) | b in integers, pixel by pixel, with 5 % invalid depth.
    """
    cam = PinholeCamera(640, 480, 525.0, 520.0, 319.5, 239.5)
    rng = np.random.default_rng(7)
    depth = rng.uniform(0.3, 9.0, (480, 640)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.05] = np.nan
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    cloud = depth_to_cloud(depth, cam, rgb, stride=stride)
    rows, cols = len(range(0, 480, stride)), len(range(0, 640, stride))
    assert (cloud.height, cloud.width) == (rows, cols)
    assert len(cloud.data) == rows * cols * 16 and not cloud.is_dense
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    v, u = np.mgrid[0:480:stride, 0:640:stride].astype(np.float64)
    z = depth[::stride, ::stride].astype(np.float64)
    np.testing.assert_allclose(pts["x"], (u - 319.5) * z / 525.0, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(pts["y"], (v - 239.5) * z / 520.0, rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(pts["z"], depth[::stride, ::stride])
    c = rgb[::stride, ::stride].astype(np.uint32)
    words = np.ascontiguousarray(pts["rgb"]).view(np.uint32)
    np.testing.assert_array_equal(words, (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2])


def _traced_peak(fn: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("colour", [False, True])
def test_cloud_buffer_is_the_only_frame_sized_allocation(colour: bool) -> None:
    """The points are built in the returned buffer: no full-size copy (``tobytes``) after it.

    tracemalloc sees numpy's and array.array's allocations. After a warm-up (the ray grid and
    the per-thread block planes exist) and with the previous cloud still held (so its buffer
    cannot be reused), one call may allocate the returned buffer and small temporaries (the
    validity mask is 1/12 or 1/16 of it); a copy of the points would double the peak.
    """
    cam = PinholeCamera.from_fov(640, 480, 70.0)
    depth = np.random.default_rng(1).uniform(0.5, 5.0, (480, 640)).astype(np.float32)
    rgb = np.full((480, 640, 3), 77, np.uint8) if colour else None
    held = depth_to_cloud(depth, cam, rgb)
    cloud, peak = _traced_peak(lambda: depth_to_cloud(depth, cam, rgb))
    nbytes = len(cloud.data)
    assert nbytes == 640 * 480 * (16 if colour else 12) and cloud.data is not held.data
    assert nbytes <= peak < 1.15 * nbytes
    # Once nobody holds a cloud, its buffer is filled again: no frame-sized allocation at all
    # (what remains is the validity mask and its temporary, 2 x 1/12 of an xyz cloud).
    del held, cloud
    depth_to_cloud(depth, cam, rgb)
    _, peak = _traced_peak(lambda: depth_to_cloud(depth, cam, rgb))
    assert peak < 0.25 * nbytes


def test_a_buffer_still_referenced_is_never_overwritten() -> None:
    """A held cloud, a memoryview or a numpy view of one keeps its bytes as clouds go by."""
    cam = PinholeCamera.from_fov(64, 48, 70.0)

    def cloud(z: float) -> Any:
        return depth_to_cloud(np.full((48, 64), z, np.float32), cam)

    kept = cloud(1.0)
    view = memoryview(cloud(1.5).data)
    second = cloud(1.75)
    points = cloud_to_points(second.data, second.fields, second.point_step, second.width,
                             second.height)
    del second
    expected = (bytes(kept.data), bytes(view))
    for value in (2.0, 3.0, 4.0, 5.0, 6.0):
        later = cloud(value)
        np.testing.assert_array_equal(np.frombuffer(later.data, np.float32)[2::3], value)
        del later
    assert (bytes(kept.data), bytes(view)) == expected
    np.testing.assert_array_equal(np.frombuffer(kept.data, np.float32)[2::3], 1.0)
    np.testing.assert_array_equal(np.frombuffer(view, np.float32)[2::3], 1.5)
    np.testing.assert_array_equal(points["z"], 1.75)


def test_a_released_buffer_is_reused() -> None:
    cam = PinholeCamera.from_fov(64, 48, 70.0)
    depth = np.full((48, 64), 2.0, np.float32)
    cloud = depth_to_cloud(depth, cam)
    released = weakref.ref(cloud.data)
    del cloud
    again = depth_to_cloud(depth * 2, cam)
    assert again.data is released()  # the same object, not a new one at the same address
    assert np.all(np.frombuffer(again.data, np.float32)[2::3] == 4.0)


def test_reader_accepts_array_array_and_int_sequences() -> None:
    depth = np.full((3, 4), 2.5, np.float32)
    cloud = depth_to_cloud(depth, CAM)
    for data in (array.array("B", cloud.data), list(cloud.data), memoryview(cloud.data)):
        pts = cloud_to_points(data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
        np.testing.assert_array_equal(pts["z"], depth)


def test_buffer_fills_a_real_pointcloud2_message() -> None:
    msg_mod = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs Python messages absent")
    depth = np.full((3, 4), 1.5, np.float32)
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 1] = 200
    cloud = depth_to_cloud(depth, CAM, rgb)
    msg = msg_mod.PointCloud2(
        height=cloud.height, width=cloud.width, is_bigendian=cloud.is_bigendian,
        point_step=cloud.point_step, row_step=cloud.row_step, is_dense=cloud.is_dense,
        fields=[msg_mod.PointField(name=f.name, offset=f.offset, datatype=f.datatype,
                                   count=f.count) for f in cloud.fields],
    )
    msg.data = cloud.data
    assert len(msg.data) == cloud.row_step * cloud.height
    pts = cloud_to_points(msg.data, msg.fields, msg.point_step, msg.width, msg.height,
                          msg.is_bigendian, msg.row_step)
    np.testing.assert_array_equal(pts["z"], depth)
    np.testing.assert_array_equal(unpack_rgb(pts["rgb"])[:, 1], 200)


RGBD = Path(__file__).resolve().parents[3] / "shared" / "data" / "rgbd" / "kinect_room"


def _pose_matrix(row: np.ndarray) -> np.ndarray:
    """Build a 4x4 camera-to-world matrix from ``tx ty tz qx qy qz qw``."""
    t, (x, y, z, w) = row[:3], row[3:]
    rot = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, t
    return out


@pytest.mark.skipif(not RGBD.is_dir(), reason=f"real RGB-D frames not found at {RGBD}")
def test_real_kinect_cloud_reprojects_into_the_next_frame() -> None:
    """Move frame 1's cloud into frame 2 with the recorded poses: depths must agree."""
    intr = json.loads((RGBD / "intrinsics.json").read_text())
    cam = PinholeCamera(intr["width"], intr["height"], intr["fx"], intr["fy"], intr["cx"],
                        intr["cy"])
    poses = np.loadtxt(RGBD / "pose.txt")

    def depth(i: int) -> np.ndarray:
        raw = cv2.imread(str(RGBD / intr["depth"].format(i=i)), cv2.IMREAD_UNCHANGED)
        metres = raw.astype(np.float32) / np.float32(intr["depth_scale"])
        metres[raw == 0] = np.nan
        return metres

    cloud = depth_to_cloud(depth(1), cam, stride=2)
    pts = cloud_to_points(cloud.data, cloud.fields, cloud.point_step, cloud.width, cloud.height)
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], -1).reshape(-1, 3).astype(np.float64)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    assert xyz.shape[0] > 30_000
    rel_1_to_2 = np.linalg.inv(_pose_matrix(poses[1])) @ _pose_matrix(poses[0])
    second = depth(2)

    def median_error(points: np.ndarray) -> float:
        moved = points @ rel_1_to_2[:3, :3].T + rel_1_to_2[:3, 3]
        uv = np.round(cam.project(moved)).astype(int)
        inside = ((uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0)
                  & (uv[:, 1] < cam.height) & (moved[:, 2] > 0))
        seen = second[uv[inside, 1], uv[inside, 0]]
        ok = np.isfinite(seen)
        return float(np.median(np.abs(moved[inside, 2][ok] - seen[ok]) / seen[ok]))

    assert median_error(xyz) < 0.05
    # The same check with a mirrored x axis (a sign bug) fails badly.
    assert median_error(xyz * np.array([-1.0, 1.0, 1.0])) > 0.3
