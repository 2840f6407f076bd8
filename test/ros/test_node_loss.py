"""Frames lost before the node saw them are counted in /diagnostics.

A steady 30 Hz camera whose stamps skip a known number of frames (as DDS loss leaves them):
``frames_lost_before_node`` must count exactly the skipped stamps. Inputs are reliable, so the
only gaps are the ones made here; the middleware's own message-lost count is shown next to it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

W, H = 32, 24
K = (30.0, 30.0, 15.5, 11.5)
PERIOD_NS = 33_333_333
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def _values(diags) -> dict[str, str]:
    for arr in reversed(diags.messages()):
        for status in arr.status:
            if status.name.startswith("depth_node"):
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_gaps_in_a_steady_cameras_stamps_are_counted(
    ros, start_node, depth_models, msgs, wait_for
):
    node = start_node(
        model=str(depth_models.constant(2.0)),
        publish_points=False,
        input_qos_reliability="reliable",
        input_qos_depth=50,
    )
    image_pub = ros.publisher(Image, "image", RELIABLE)
    info_pub = ros.publisher(CameraInfo, "camera_info", RELIABLE)
    depth = ros.collect(Image, "depth/image")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    rgb = np.full((H, W, 3), 70, np.uint8)
    start_ns = time.time_ns()

    def send(index: int) -> None:
        ns = start_ns + index * PERIOD_NS
        stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        info_pub.publish(msgs.camera_info(W, H, *K, stamp=stamp, frame_id="cam"))
        image_pub.publish(msgs.image(rgb, stamp, "cam"))

    # Warm up at 30 Hz until the node serves; these frames have no gaps.
    index = 0
    while not depth.messages():
        assert index < 1800, node.output()
        send(index)
        index += 1
        time.sleep(PERIOD_NS / 1e9)
    base = _values_after(diags, wait_for)
    lost_before = int(base["frames_lost_before_node"])

    # 300 frames (10 s of camera time) streamed at 30 Hz with 1-, 2- and 5-frame holes.
    holes = {20: 1, 45: 2, 90: 5, 150: 1, 152: 1, 230: 2}  # first skipped: how many
    skip = {index + i + j for i, n in holes.items() for j in range(n)}
    next_time = time.monotonic()
    for i in range(300):
        if index + i not in skip:
            send(index + i)
        next_time += PERIOD_NS / 1e9
        time.sleep(max(0.0, next_time - time.monotonic()))
    expected = len(skip)  # 12 stamps never sent
    assert wait_for(
        lambda: int(_values(diags).get("frames_lost_before_node", -1)) - lost_before >= expected,
        10.0,
    ), (_values(diags), node.output())
    time.sleep(1.5)
    values = _values(diags)
    assert int(values["frames_lost_before_node"]) - lost_before == expected, values
    assert float(values["camera_period_ms"]) == pytest.approx(PERIOD_NS / 1e6, abs=0.01)
    assert values["image_messages_lost_middleware"] == "0", values  # reliable: nothing lost
    print(
        f"loss: {expected} stamps skipped in 300, frames_lost_before_node "
        f"{int(values['frames_lost_before_node']) - lost_before}, camera_period_ms "
        f"{values['camera_period_ms']}, frames_received {values['frames_received']}"
    )


def _values_after(diags, wait_for) -> dict[str, str]:
    assert wait_for(lambda: "frames_lost_before_node" in _values(diags), 10.0), _values(diags)
    return _values(diags)
