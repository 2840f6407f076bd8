"""depth_node end to end: a real node process, real DDS, a tiny model with known depth.

Checks the published depth image, its CameraInfo and the point cloud against what the test
sent (stamps, frames, sizes, intrinsics) and against the pinhole model.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

FRAME = "test_optical_frame"
W, H = 64, 48
FX, FY, CX, CY = 50.0, 55.0, 30.5, 20.0  # deliberately off-centre: K must come from CameraInfo


def _rgb() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _stream_until(ros, msgs, wait_for, rgb, done, timeout=40.0, period=0.1, frame=FRAME):
    """Publish image + camera_info pairs, fresh stamps, until ``done()``; returns the stamps."""
    img_pub = ros.publisher(Image, "image")
    info_pub = ros.publisher(CameraInfo, "camera_info")
    sent = []

    def _tick() -> bool:
        stamp = ros.now_stamp()
        sent.append((stamp.sec, stamp.nanosec))
        info_pub.publish(msgs.camera_info(W, H, FX, FY, CX, CY, stamp, frame))
        img_pub.publish(msgs.image(rgb, stamp, frame))
        return done()

    assert wait_for(_tick, timeout, period), "the node published nothing in time"
    return sent


def _cloud_fields(msg) -> dict[str, tuple[int, int, int]]:
    return {f.name: (f.offset, f.datatype, f.count) for f in msg.fields}


def _complete(depth, info, points):
    """Return the newest depth image whose camera_info and cloud have arrived too."""
    infos = _by_stamp(info.messages())
    clouds = _by_stamp(points.messages())
    for d in reversed(depth.messages()):
        key = (d.header.stamp.sec, d.header.stamp.nanosec)
        if key in infos and key in clouds:
            return d, infos[key], clouds[key]
    return None


def _by_stamp(messages):
    return {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in messages}


def test_constant_model_publishes_consistent_depth_info_and_cloud(
    ros, start_node, depth_models, msgs, wait_for
):
    model = depth_models.constant(2.0)
    node = start_node(model=str(model), cloud_color=True)
    depth = ros.collect(Image, "depth/image")
    info = ros.collect(CameraInfo, "depth/camera_info")
    points = ros.collect(PointCloud2, "points")
    rgb = _rgb()

    sent = _stream_until(ros, msgs, wait_for, rgb, lambda: _complete(depth, info, points))
    assert node.proc.poll() is None, node.output()
    assert "backend torch" in node.output() and "device cpu" in node.output()

    d_msg, i_msg, c_msg = _complete(depth, info, points)
    assert (d_msg.header.stamp.sec, d_msg.header.stamp.nanosec) in sent
    assert d_msg.header.frame_id == FRAME
    assert (d_msg.width, d_msg.height) == (W, H)
    d = msgs.depth(d_msg)
    np.testing.assert_allclose(d, 2.0, rtol=0, atol=1e-6)

    # depth/camera_info: same header as the depth image, K of the input (not the image centre).
    assert i_msg.header.frame_id == FRAME
    assert (i_msg.width, i_msg.height) == (W, H)
    np.testing.assert_allclose(i_msg.k, [FX, 0, CX, 0, FY, CY, 0, 0, 1])
    np.testing.assert_allclose(np.reshape(i_msg.p, (3, 4))[:, :3], np.reshape(i_msg.k, (3, 3)))
    assert i_msg.binning_x == 0 and i_msg.roi.width == 0

    # points: organized, xyzrgb, each point = depth * ((u - cx)/fx, (v - cy)/fy, 1).
    assert c_msg.header.frame_id == FRAME
    assert (c_msg.width, c_msg.height) == (W, H)
    assert "rgb" in _cloud_fields(c_msg)
    xyz = msgs.cloud_xyz(c_msg)
    k = np.reshape(i_msg.k, (3, 3))
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    np.testing.assert_allclose(xyz[..., 2], d, atol=1e-6)
    np.testing.assert_allclose(xyz[..., 0], d * (u - k[0, 2]) / k[0, 0], atol=1e-5)
    np.testing.assert_allclose(xyz[..., 1], d * (v - k[1, 2]) / k[1, 1], atol=1e-5)
    # PCL packed colour: 0x00RRGGBB in the float32 at the rgb offset.
    offset = _cloud_fields(c_msg)["rgb"][0]
    raw = np.frombuffer(bytes(c_msg.data), dtype=np.uint8).reshape(H, W, c_msg.point_step)
    packed = np.ascontiguousarray(raw[..., offset:offset + 4]).view("<u4")[..., 0]
    got = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1)
    np.testing.assert_array_equal(got, rgb)


def test_output_resizing_keeps_camera_info_and_cloud_consistent(
    ros, start_node, depth_models, msgs, wait_for
):
    model = depth_models.red_ramp()
    node = start_node(
        model=str(model), output_width=40, output_height=30, cloud_stride=3, cloud_color=False
    )
    depth = ros.collect(Image, "depth/image")
    info = ros.collect(CameraInfo, "depth/camera_info")
    points = ros.collect(PointCloud2, "points")
    # A smooth image so the depth (1 + red/255) varies over the frame.
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, W, dtype=np.float64)[None, :].astype(np.uint8)
    rgb[..., 1] = 90

    _stream_until(ros, msgs, wait_for, rgb, lambda: _complete(depth, info, points))
    assert node.proc.poll() is None, node.output()
    d_msg, i_msg, c_msg = _complete(depth, info, points)
    assert (d_msg.width, d_msg.height) == (40, 30)
    d = msgs.depth(d_msg)
    assert np.all(np.isfinite(d))
    assert d.min() >= 1.0 - 1e-6 and d.max() <= 2.0 + 1e-6
    assert d[:, -1].mean() - d[:, 0].mean() > 0.5  # the red ramp reached the depth

    assert i_msg.header.frame_id == d_msg.header.frame_id
    assert (i_msg.width, i_msg.height) == (40, 30)
    # cv2.resize pixel-centre convention: c' = (c + 0.5) * s - 0.5.
    sx, sy = 40 / W, 30 / H
    np.testing.assert_allclose(
        i_msg.k,
        [FX * sx, 0, (CX + 0.5) * sx - 0.5, 0, FY * sy, (CY + 0.5) * sy - 0.5, 0, 0, 1],
        rtol=1e-9,
    )

    assert set(_cloud_fields(c_msg)) == {"x", "y", "z"}
    stride = 3
    assert (c_msg.width, c_msg.height) == (math.ceil(40 / stride), math.ceil(30 / stride))
    xyz = msgs.cloud_xyz(c_msg)
    k = np.reshape(i_msg.k, (3, 3))
    v, u = np.mgrid[0:30:stride, 0:40:stride].astype(np.float64)
    z = d[::stride, ::stride]
    np.testing.assert_allclose(xyz[..., 2], z, atol=1e-6)
    np.testing.assert_allclose(xyz[..., 0], z * (u - k[0, 2]) / k[0, 0], atol=1e-5)
    np.testing.assert_allclose(xyz[..., 1], z * (v - k[1, 2]) / k[1, 1], atol=1e-5)


def test_missing_model_exits_nonzero_naming_the_file(start_node, tmp_path):
    missing = tmp_path / "no_such_model.ts"
    node = start_node(model=str(missing))
    code = node.wait(timeout=60)
    assert code != 0
    out = node.output()
    assert str(missing) in out
    assert "cannot start" in out


def test_node_shuts_down_cleanly_on_sigint(start_node, depth_models):
    node = start_node(model=str(depth_models.constant(1.0)))
    assert node.wait_for_output("subscribed to", timeout=40), node.output()
    t0 = time.monotonic()
    assert node.stop() == 0, node.output()
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"min_depth": 1}, "decimal point"),  # an integer for a double parameter
        ({"cloud_stride": 0}, "cloud_stride"),  # out of the descriptor's range
        ({"transport": "theora"}, "transport"),  # not one of the choices
    ],
)
def test_bad_start_up_parameters_exit_nonzero_with_the_reason(start_node, params, expected):
    node = start_node(model="unused.ts", **params)
    assert node.wait(timeout=60) != 0
    out = node.output()
    assert "cannot start" in out and expected in out, out
