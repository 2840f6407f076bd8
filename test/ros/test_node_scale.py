"""depth_node metric scale: fixed scale, sparse references and malformed references.

A real node process on real DDS; tiny models with a known constant output, so the metric
depth the node must publish follows from the scale parameters or the reference sent.
"""

from __future__ import annotations

import array

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2, PointField  # noqa: E402

W, H = 64, 48
K = (40.0, 40.0, 31.5, 23.5)  # the camera_pub default intrinsics
RGB = np.full((H, W, 3), 120, np.uint8)


def _depth_image(depth_m: np.ndarray, frame: str = "cam") -> Image:
    msg = Image()
    msg.header.frame_id = frame
    msg.height, msg.width = depth_m.shape
    msg.encoding = "32FC1"
    msg.step = depth_m.shape[1] * 4
    msg.data = array.array("B", depth_m.astype("<f4").tobytes())
    return msg


def _xyz_cloud(points: np.ndarray, frame: str = "lidar") -> PointCloud2:
    msg = PointCloud2()
    msg.header.frame_id = frame
    msg.height, msg.width = 1, len(points)
    msg.fields = [
        PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, n in enumerate("xyz")
    ]
    msg.point_step, msg.row_step = 12, 12 * len(points)
    msg.is_dense = True
    msg.data = array.array("B", points.astype("<f4").tobytes())
    return msg


def _stream(camera_pub, wait_for, done, timeout=40.0, each=None):
    """Send camera frames (and ``each()`` before every frame) until ``done()`` holds."""

    def _tick() -> bool:
        if each is not None:
            each()
        camera_pub.send(RGB, K)
        return done()

    return wait_for(_tick, timeout, 0.1)


def _finite_depths(depth, msgs):
    return [d for d in (msgs.depth(m) for m in depth.messages()) if np.isfinite(d).all()]


def _scale_values(diags):
    """Key/values of depth_node's newest diagnostic status that reports a scale."""
    for arr in reversed(diags.messages()):
        for status in arr.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith("depth_node") and "scale_mode" in values:
                return values
    return None


def _rejected_clouds(diags) -> int:
    values = _scale_values(diags) or {}
    return int(values.get("rejected[/scale/points: bad reference cloud]", 0))


def test_fixed_scale_turns_relative_inverse_depth_into_metric_depth(
    ros, start_node, depth_models, camera_pub, msgs, wait_for
):
    # The network says 0.5 (relative disparity); metric disparity = 0.25 * 0.5 + 0.1 = 0.225/m.
    model = depth_models.constant(0.5, output_kind="relative_inverse_depth")
    node = start_node(
        model=str(model),
        scale_mode="fixed",
        scale_factor=0.25,
        scale_shift=0.1,
        cpu_threads=1,
        publish_points=False,
    )
    depth = ros.collect(Image, "depth/image")
    assert _stream(camera_pub, wait_for, lambda: len(depth) > 0), node.output()
    assert node.proc.poll() is None, node.output()
    assert "cpu_threads 1" in node.output()
    d = msgs.depth(depth.messages()[-1])
    assert d.shape == (H, W)
    np.testing.assert_allclose(d, 1.0 / 0.225, rtol=1e-5)  # not 1 / 0.5 = 2 m unscaled


def test_sparse_scale_converges_to_a_reference_depth_image(
    ros, start_node, depth_models, camera_pub, msgs, wait_for
):
    node = start_node(
        model=str(depth_models.constant(2.0)),
        scale_mode="sparse",
        scale_only=True,  # a constant network output fits a scale, not a scale and a shift
        publish_points=False,
        diagnostics_period=0.2,
    )
    depth = ros.collect(Image, "depth/image")
    diags = ros.collect(DiagnosticArray, "/diagnostics")

    # No reference yet: the scale is unknown, so the node publishes NaN, not 2 m.
    assert _stream(camera_pub, wait_for, lambda: len(depth) > 0), node.output()
    assert np.isnan(msgs.depth(depth.messages()[0])).all()

    # A 3 m reference at half the camera resolution (the node resamples it to the depth grid).
    ref_pub = ros.publisher(Image, "scale/depth")
    reference = _depth_image(np.full((H // 2, W // 2), 3.0, np.float32))
    assert _stream(
        camera_pub,
        wait_for,
        lambda: len(_finite_depths(depth, msgs)) >= 3,
        each=lambda: ref_pub.publish(reference),
    ), node.output()
    for d in _finite_depths(depth, msgs):
        np.testing.assert_allclose(d, 3.0, rtol=1e-4)

    assert wait_for(lambda: (_scale_values(diags) or {}).get("scale") not in (None, "nan"), 10.0)
    values = _scale_values(diags)
    assert values["scale_mode"] == "sparse"
    assert float(values["scale"]) == pytest.approx(2.0 / 3.0, rel=1e-4)  # (1/3) / (1/2)
    assert int(values["scale_updates"]) >= 1
    assert node.proc.poll() is None


def test_malformed_reference_clouds_are_dropped_and_a_good_one_still_scales(
    ros, start_node, depth_models, camera_pub, msgs, wait_for
):
    # The "lidar" sits 1 m behind the camera: camera z = lidar z - 1.
    extrinsic = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0, -1.0, 0, 0, 0, 1.0]
    node = start_node(
        model=str(depth_models.constant(2.0)),
        scale_mode="sparse",
        scale_only=True,
        scale_extrinsic=[float(v) for v in extrinsic],
        publish_points=False,
        diagnostics_period=0.2,
    )
    depth = ros.collect(Image, "depth/image")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    cloud_pub = ros.publisher(PointCloud2, "scale/points")
    assert _stream(camera_pub, wait_for, lambda: len(depth) > 0), node.output()

    # Points 3 m in front of the camera, spread over the image.
    u, v = np.meshgrid(np.linspace(4, W - 5, 8), np.linspace(4, H - 5, 6))
    z = np.full(u.size, 3.0)
    cam = np.stack(
        [(u.ravel() - K[2]) / K[0] * z, (v.ravel() - K[3]) / K[1] * z, z], axis=1
    )
    good = _xyz_cloud(cam + [0.0, 0.0, 1.0])
    no_z = _xyz_cloud(cam)
    no_z.fields = no_z.fields[:2]
    truncated = _xyz_cloud(cam)
    truncated.data = array.array("B", bytes(truncated.data)[:100])
    bad_type = _xyz_cloud(cam)
    bad_type.fields[0].datatype = 99

    count = len(depth)
    bad = [no_z, truncated, bad_type]
    sent = []

    def _send_bad() -> None:
        sent.append(bad[len(sent) % len(bad)])
        cloud_pub.publish(sent[-1])

    assert _stream(
        camera_pub, wait_for, lambda: len(depth) >= count + 6, each=_send_bad
    ), node.output()
    assert node.proc.poll() is None, node.output()
    out = node.output()
    assert "bad reference cloud" in out and "no field(s) ['z']" in out, out
    # Logged once per cause (then throttled); every drop is counted in /diagnostics.
    assert wait_for(lambda: _rejected_clouds(diags) >= 3, 10.0), str(_scale_values(diags))
    assert _rejected_clouds(diags) <= len(sent)
    assert np.isnan(msgs.depth(depth.messages()[-1])).all()  # nothing usable came

    assert _stream(
        camera_pub,
        wait_for,
        lambda: len(_finite_depths(depth, msgs)) >= 2,
        each=lambda: cloud_pub.publish(good),
    ), node.output()
    for d in _finite_depths(depth, msgs):
        np.testing.assert_allclose(d, 3.0, rtol=1e-4)
    assert node.proc.poll() is None


def test_ground_mode_without_a_camera_height_exits_with_the_reason(start_node):
    node = start_node(model="unused.ts", scale_mode="ground")
    assert node.wait(timeout=60) != 0
    out = node.output()
    assert "cannot start" in out and "scale_camera_height" in out, out
