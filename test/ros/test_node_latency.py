"""A camera faster than the model: the node drops frames instead of queueing them.

The model really takes about 0.2 s per frame (calibrated matrix products, no test-only code in
the node) while the camera publishes at 30 Hz. With a queue the age of the published depth would
grow by ~0.17 s every frame; with newest-frame-wins it stays around one inference time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

FRAME = "cam"
W, H = 64, 48


def test_slow_model_under_fast_camera_keeps_latency_bounded(
    ros, start_node, depth_models, msgs, wait_for
):
    model = depth_models.slow_constant(0.2)
    node = start_node(model=str(model), publish_points=False)
    depth = ros.collect(Image, "depth/image")
    img_pub = ros.publisher(Image, "image")
    info_pub = ros.publisher(CameraInfo, "camera_info")
    rgb = np.full((H, W, 3), 128, np.uint8)

    def publish_one() -> None:
        stamp = ros.now_stamp()
        info_pub.publish(msgs.camera_info(W, H, 40.0, 40.0, 31.5, 23.5, stamp, FRAME))
        img_pub.publish(msgs.image(rgb, stamp, FRAME))

    # Warm up until the node answers (start-up, discovery, first inference).
    assert wait_for(lambda: (publish_one(), len(depth) > 0)[1], 40.0, 0.1), node.output()
    time.sleep(0.5)
    depth.clear()

    period, duration = 1.0 / 30.0, 6.0
    sent = 0
    t_start = time.monotonic()
    next_time = t_start
    while time.monotonic() - t_start < duration:
        publish_one()
        sent += 1
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    time.sleep(1.0)  # let the last inference finish

    received = depth.timed()
    assert node.proc.poll() is None, node.output()
    assert len(received) >= 5, f"only {len(received)} depth images for {sent} frames"
    latencies = np.array(
        [t - (m.header.stamp.sec + m.header.stamp.nanosec * 1e-9) for t, m in received]
    )
    # Most frames are dropped (the model manages ~5 Hz of the camera's 30 Hz) ...
    assert len(received) < 0.6 * sent, (len(received), sent)
    # ... and the published depth does not age: the last images are as fresh as the first ones.
    third = max(2, len(latencies) // 3)
    first, last = np.median(latencies[:third]), np.median(latencies[-third:])
    print(
        f"sent {sent}, received {len(received)}, latency first {first:.3f} s last {last:.3f} s, "
        f"max {latencies.max():.3f} s"
    )
    assert last < first + 0.5, latencies
    # Newest frame wins: each published frame was captured after (or within a camera period and
    # some delivery slack of) the moment the previous depth came out. A queue, even one only as
    # deep as the QoS history, would publish frames captured long before that.
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in received])
    receive = np.array([t for t, _ in received])
    lag = receive[:-1] - stamps[1:]
    print("lag", np.round(lag, 3))
    # A queue shows in every frame; a stall of this busy machine (the test's own 30 Hz loop, or
    # the DDS threads) in one or two. So: the typical lag is short and long ones are rare.
    assert np.median(lag) < 0.1 and np.mean(lag > 0.35) <= 0.15, lag
    assert np.all(np.diff(stamps) > 0)
