"""Input paths of depth_node: compressed transport, rectification of distorted images, edge filter.

The model's depth is ``1 + red / 255`` and its input size equals the image's (parameters
``input_width``/``input_height``), so the published depth shows exactly which pixels the network
saw: decoded, rectified or filtered.
"""

from __future__ import annotations

import array

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.core.rectify import rectifier_for  # noqa: E402

W, H = 48, 32
K = (40.0, 42.0, 23.0, 15.5)


def _pattern() -> np.ndarray:
    rgb = np.zeros((H, W, 3), np.uint8)
    v, u = np.mgrid[0:H, 0:W]
    rgb[..., 0] = ((u * 5 + v * 3) % 256).astype(np.uint8)
    rgb[..., 1] = 60
    return rgb


def _start(start_node, depth_models, **params):
    return start_node(
        model=str(depth_models.red_ramp()),
        input_width=W,
        input_height=H,
        publish_points=False,
        **params,
    )


def _stream_until_depth(send, depth, wait_for, node, accept=lambda m: True, timeout=40.0):
    def _done():
        send()
        return any(accept(m) for m in depth.messages())

    assert wait_for(_done, timeout, 0.1), node.output()
    return [m for m in depth.messages() if accept(m)][-1]


def test_compressed_png_and_jpeg_input(
    ros, start_node, depth_models, msgs, wait_for, key, make_camera
):
    node = _start(start_node, depth_models, transport="compressed")
    sender = make_camera(image_topic="image/compressed", image_type=CompressedImage)
    depth = ros.collect(Image, "depth/image")
    rgb = _pattern()

    def compressed(fmt: str, payload: bytes):
        def _send():
            stamp = ros.now_stamp()
            msg = CompressedImage(format=fmt)
            msg.header.stamp, msg.header.frame_id = stamp, "cam"
            msg.data = array.array("B", payload)
            return sender.send(
                stamp=stamp,
                image=msg,
                info=msgs.camera_info(W, H, *K, stamp=stamp, frame_id="cam"),
            )

        return _send

    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    sent: list = []
    send_png = compressed("png", png.tobytes())
    d = _stream_until_depth(lambda: sent.append(send_png()), depth, wait_for, node)
    assert key(d) in sent and (d.width, d.height) == (W, H)
    np.testing.assert_allclose(msgs.depth(d), 1.0 + rgb[..., 0] / 255.0, atol=1e-5)

    # A corrupt payload is logged and dropped; jpeg frames after it are served.
    bad = compressed("jpeg", b"\xff\xd8 definitely not a jpeg")
    assert wait_for(
        lambda: (bad(), "bad compressed image" in node.output())[1], 20.0, 0.15
    ), node.output()
    ok, jpg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    jpeg_sent: list = []
    send_jpg = compressed("jpeg", jpg.tobytes())
    d = _stream_until_depth(
        lambda: jpeg_sent.append(send_jpg()),
        depth,
        wait_for,
        node,
        accept=lambda m: key(m) in jpeg_sent,
    )
    assert np.abs(msgs.depth(d) - (1.0 + rgb[..., 0] / 255.0)).mean() < 0.02
    assert "'/image/compressed': bad compressed image" in node.output()


def test_distorted_input_is_rectified_and_outputs_follow_the_rectified_camera(
    ros, start_node, depth_models, camera_pub, msgs, wait_for, key
):
    node = _start(start_node, depth_models)  # input_is_rectified defaults to false
    depth = ros.collect(Image, "depth/image")
    info = ros.collect(CameraInfo, "depth/camera_info")
    rgb = _pattern()
    dist = [0.25, -0.05, 0.0, 0.0, 0.0]
    sent: list = []
    d = _stream_until_depth(
        lambda: sent.append(camera_pub.send(rgb, K, "cam", d=dist)),
        depth,
        wait_for,
        node,
        accept=lambda m: key(m) in {key(i) for i in info.messages()},
    )
    i = next(m for m in info.messages() if key(m) == key(d))

    cam = PinholeCamera(W, H, *K, distortion_model="plumb_bob", d=tuple(dist))
    rectifier = rectifier_for(cam)
    expected = 1.0 + rectifier.rectify(rgb)[..., 0] / 255.0
    got = msgs.depth(d)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected - (1.0 + rgb[..., 0] / 255.0)).max() > 0.2  # rectification mattered
    rk = rectifier.camera
    np.testing.assert_allclose(i.k, [rk.fx, 0, rk.cx, 0, rk.fy, rk.cy, 0, 0, 1])
    assert list(i.d) == [0.0] * 5 and (i.width, i.height) == (W, H)


def test_input_is_rectified_skips_undistortion(
    ros, start_node, depth_models, camera_pub, msgs, wait_for
):
    node = _start(start_node, depth_models, input_is_rectified=True)
    depth = ros.collect(Image, "depth/image")
    rgb = _pattern()
    d = _stream_until_depth(
        lambda: camera_pub.send(rgb, K, "cam", d=[0.25, -0.05, 0.0, 0.0, 0.0]),
        depth,
        wait_for,
        node,
    )
    np.testing.assert_allclose(msgs.depth(d), 1.0 + rgb[..., 0] / 255.0, atol=1e-5)


def test_edge_filter_removes_pixels_at_depth_jumps(
    ros, start_node, depth_models, camera_pub, msgs, wait_for
):
    node = _start(start_node, depth_models, edge_filter_threshold=0.1)
    depth = ros.collect(Image, "depth/image")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, W // 2:, 0] = 255  # depth 1.0 m on the left, 2.0 m on the right
    d = msgs.depth(
        _stream_until_depth(lambda: camera_pub.send(rgb, K, "cam"), depth, wait_for, node)
    )
    edge = np.zeros((H, W), bool)
    edge[:, W // 2 - 1:W // 2 + 1] = True
    assert np.all(np.isnan(d[edge]))
    np.testing.assert_allclose(d[:, :W // 2 - 1], 1.0, atol=1e-5)
    np.testing.assert_allclose(d[:, W // 2 + 1:], 2.0, atol=1e-5)
