"""Bad input never stops depth_node.

Each bad frame is logged (naming topic and fault) and dropped, and the good frames that follow
are served. One node process takes the whole sequence.
"""

from __future__ import annotations

import array
import math

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from sensor_msgs.msg import Image  # noqa: E402

W, H = 32, 24
K = (30.0, 30.0, 15.5, 11.5)
FRAME = "cam"


@pytest.fixture
def node_and_depth(ros, start_node, depth_models):
    node = start_node(
        model=str(depth_models.constant(2.0)), max_input_pixels=20000, publish_points=False
    )
    depth = ros.collect(Image, "depth/image")
    return node, depth


def _good_rgb() -> np.ndarray:
    return np.full((H, W, 3), 100, np.uint8)


def _serve_good(camera_pub, depth, wait_for, after: tuple[int, int], timeout: float = 30.0):
    """Send good frames until a depth image newer than ``after`` comes back."""

    def _newer() -> bool:
        camera_pub.send(_good_rgb(), K, FRAME)
        return any((m.header.stamp.sec, m.header.stamp.nanosec) > after for m in depth.messages())

    assert wait_for(_newer, timeout, 0.1), "the node did not resume after a bad frame"


def _logged_line(output: str, *parts: str) -> bool:
    return any(all(p in line for p in parts) for line in output.splitlines())


def _bad_then_good(node, camera_pub, depth, wait_for, send_bad, *log_text: str) -> None:
    """Send bad frames until one log line has all of ``log_text``, then good frames."""
    bad: list[tuple[int, int]] = []

    def _logged() -> bool:
        bad.append(send_bad())
        return _logged_line(node.output(), "dropping frame", *log_text)

    # Newest frame wins, so a bad frame may be superseded before the worker sees it: repeat.
    assert wait_for(_logged, 20.0, 0.15), f"never logged {log_text!r}:\n{node.output()}"
    _serve_good(camera_pub, depth, wait_for, after=max(bad))
    got = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in depth.messages()}
    assert not got & set(bad), f"a bad frame was published ({log_text})"
    assert node.proc.poll() is None, node.output()


def test_bad_frames_are_dropped_logged_and_followed_by_good_ones(
    ros, node_and_depth, camera_pub, wait_for, msgs
):
    node, depth = node_and_depth
    make_image, make_camera_info = msgs.image, msgs.camera_info
    _serve_good(camera_pub, depth, wait_for, after=(0, 0), timeout=40.0)  # node up and serving

    def image_with(**fields):
        def _send():
            stamp = ros.now_stamp()
            msg = make_image(_good_rgb(), stamp, FRAME)
            for name, value in fields.items():
                setattr(msg, name, value)
            return camera_pub.send(
                stamp=stamp, image=msg, info=make_camera_info(W, H, *K, stamp, FRAME)
            )

        return _send

    def info_with(k=K, width=W, height=H, frame=FRAME):
        def _send():
            stamp = ros.now_stamp()
            info = make_camera_info(width, height, *k, stamp=stamp, frame_id=frame)
            return camera_pub.send(_good_rgb(), stamp=stamp, frame=FRAME, info=info)

        return _send

    short = array.array("B", bytes(W * 3 * H - 10))
    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        image_with(data=short),
        "'/image': bad image:",
        "truncated",
    )
    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        image_with(encoding="fancy16"),
        "'/image': bad image:",
        "'fancy16'",
    )
    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        image_with(width=0, height=0, step=0, data=array.array("B")),
        "'/image': empty image",
    )

    def huge():
        stamp = ros.now_stamp()
        big = np.zeros((200, 200, 3), np.uint8)  # 40000 px > max_input_pixels=20000
        return camera_pub.send(big, K, FRAME, stamp=stamp)

    _bad_then_good(node, camera_pub, depth, wait_for, huge, "'/image': image too large: 200x200")

    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        info_with(k=(0.0, 0.0, 0.0, 0.0)),
        "'/camera_info': bad camera_info",
    )
    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        info_with(k=(math.nan, 30.0, 15.5, 11.5)),
        "'/camera_info': bad camera_info",
    )
    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        info_with(width=64, height=48),
        "camera_info size disagrees with the image",
    )
    _bad_then_good(
        node,
        camera_pub,
        depth,
        wait_for,
        info_with(frame="other_frame"),
        "frame_id 'other_frame' != image frame_id 'cam'",
    )

    def backwards():
        now = ros.now_stamp()
        camera_pub.send(_good_rgb(), K, FRAME, stamp=now)
        old = type(now)(sec=now.sec - 5, nanosec=now.nanosec)
        return camera_pub.send(_good_rgb(), K, FRAME, stamp=old)

    _bad_then_good(node, camera_pub, depth, wait_for, backwards, "'/image': stamp went backwards")

    # Every cause was logged once (throttled), not once per frame.
    out = node.output()
    assert out.count("bad camera_info") == 1, out  # zero K and NaN K: one cause, throttled
    assert node.proc.poll() is None


def test_resolution_and_intrinsics_change_mid_stream(
    ros, start_node, depth_models, camera_pub, wait_for, key, msgs
):
    from sensor_msgs.msg import CameraInfo, PointCloud2

    node = start_node(model=str(depth_models.constant(3.0)), cloud_color=False)
    depth = ros.collect(Image, "depth/image")
    info = ros.collect(CameraInfo, "depth/camera_info")
    points = ros.collect(PointCloud2, "points")

    def serve(width, height, k):
        rgb = np.full((height, width, 3), 50, np.uint8)
        sent = []

        def _done():
            sent.append(camera_pub.send(rgb, k, FRAME))
            infos = {key(m): m for m in info.messages()}
            clouds = {key(m): m for m in points.messages()}
            return any(
                key(m) in sent and key(m) in infos and key(m) in clouds for m in depth.messages()
            )

        assert wait_for(_done, 40.0, 0.1), node.output()
        d = next(m for m in reversed(depth.messages()) if key(m) in sent)
        i = next(m for m in info.messages() if key(m) == key(d))
        c = next(m for m in points.messages() if key(m) == key(d))
        return d, i, c

    for width, height, k in [
        (32, 24, (30.0, 31.0, 15.0, 12.0)),
        (48, 20, (60.0, 55.0, 20.0, 9.0)),
        (48, 20, (45.0, 45.0, 25.0, 10.5)),
    ]:
        d, i, c = serve(width, height, k)
        assert (d.width, d.height) == (width, height)
        assert (i.width, i.height) == (width, height)
        np.testing.assert_allclose(i.k, [k[0], 0, k[2], 0, k[1], k[3], 0, 0, 1])
        assert (c.width, c.height) == (width, height)
        xyz = msgs.cloud_xyz(c)
        v, u = np.mgrid[0:height, 0:width]
        np.testing.assert_allclose(xyz[..., 0], 3.0 * (u - k[2]) / k[0], atol=1e-5)
        np.testing.assert_allclose(xyz[..., 1], 3.0 * (v - k[3]) / k[1], atol=1e-5)
    assert node.proc.poll() is None
