"""``recon3d bench`` times the node's own frame path: same frame + parameters, same depth.

A real depth node (real DDS) and bench's pipeline get one distorted frame and the same
parameters (rectification, output resizing, edge filter, depth range); the node's published
depth and CameraInfo must equal what bench's pipeline computes, bit for bit. Before the shared
pipeline, bench skipped rectification, the edge filter and the depth range, so this differed.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from recon3d_ros.commands.bench import add_arguments, bench_camera, node_settings  # noqa: E402

FRAME = "bench_optical_frame"
W, H = 80, 60
# Parameters that change the result: rectification runs (distorted camera, not rectified),
# the depth is resized, flying pixels are removed and the far part of the ramp is cut off.
PARAMS = {
    "output_scale": 0.5,
    "edge_filter_threshold": 0.02,
    "max_depth": 1.7,
    "min_depth": 1.1,
}


def _rgb() -> np.ndarray:
    """Red ramps with a sharp step (so the edge filter has an edge to remove)."""
    red = np.tile(np.linspace(0, 255, W), (H, 1))
    red[:, W // 2:] = 255 - red[:, W // 2:]
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = red.astype(np.uint8)
    rgb[..., 1] = 90
    return rgb


def _bench_args(model: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--model", model, "--device", "cpu", "--width", str(W), "--height", str(H)]
    argv += ["--distorted"]
    for name, value in PARAMS.items():
        argv += ["-p", f"{name}:={value!r}"]
    return parser.parse_args(argv)


def _camera_info(camera, stamp) -> CameraInfo:
    """Build the CameraInfo a driver would send for bench's camera (P unset: rectify into K)."""
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = FRAME
    msg.width, msg.height = camera.width, camera.height
    msg.distortion_model = camera.distortion_model
    msg.d = [float(v) for v in camera.d]
    msg.k = [camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return msg


def test_bench_pipeline_gives_the_nodes_depth(
    depth_models, start_node, ros, msgs, wait_for
) -> None:
    model = str(depth_models.red_ramp())
    args = _bench_args(model)
    camera = bench_camera(args)
    assert camera.is_distorted
    rgb = _rgb()

    node = start_node(model=model, device="cpu", **PARAMS)
    depth_sub = ros.collect(Image, "depth/image")
    info_sub = ros.collect(CameraInfo, "depth/camera_info")
    img_pub = ros.publisher(Image, "image")
    info_pub = ros.publisher(CameraInfo, "camera_info")

    def _tick() -> bool:
        stamp = ros.now_stamp()
        info_pub.publish(_camera_info(camera, stamp))
        img_pub.publish(msgs.image(rgb, stamp, FRAME))
        return len(depth_sub) > 0 and len(info_sub) > 0

    assert wait_for(_tick, 60.0), node.output()
    published = msgs.depth(depth_sub.messages()[-1])
    published_info = info_sub.messages()[-1]

    settings = node_settings(args)
    assert settings.max_depth == PARAMS["max_depth"]  # bench reads -p like ros2 run
    result = settings.build_pipeline().process(rgb, camera)

    assert published.shape == (H // 2, W // 2) == result.depth.shape
    assert (published_info.width, published_info.height) == (W // 2, H // 2)
    assert published_info.k[0] == pytest.approx(result.camera.fx)
    assert published_info.k[2] == pytest.approx(result.camera.cx)
    # Every stage ran: some pixels are cut by the depth range / edge filter, some are kept.
    valid = np.isfinite(result.depth)
    assert 0 < valid.sum() < valid.size
    np.testing.assert_array_equal(np.isfinite(published), valid)
    np.testing.assert_array_equal(published[valid], result.depth[valid])
