"""/diagnostics from a running depth_node: ERROR without camera_info, WARN when far behind."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

W, H = 32, 24
K = (30.0, 30.0, 15.5, 11.5)


def _ours(collector, since: float):
    """(receive time, status) of depth_node's statuses received after ``since``."""
    out = []
    for t, arr in collector.timed():
        for status in arr.status:
            if t > since and status.name.startswith("depth_node"):
                out.append((t, status))
    return out


def test_diagnostics_report_missing_camera_info_overload_and_lost_camera_info(
    ros, start_node, depth_models, camera_pub, wait_for
):
    model = depth_models.slow_constant(0.2)
    node = start_node(model=str(model), publish_points=False)
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    rgb = np.full((H, W, 3), 90, np.uint8)

    # Phase 1: images but no camera_info at all.
    assert wait_for(
        lambda: (camera_pub.send(rgb, send_info=False), len(_ours(diags, 0)) > 0)[1], 40.0, 0.1
    ), node.output()
    t1 = time.time()
    assert wait_for(
        lambda: (camera_pub.send(rgb, send_info=False), len(_ours(diags, t1)) >= 2)[1], 20.0, 0.1
    )
    status = _ours(diags, t1)[-1][1]
    assert status.level == DiagnosticStatus.ERROR
    assert "camera_info" in status.message
    assert node.wait_for_output("'/camera_info': no camera_info", timeout=10), node.output()

    # Phase 2: a 30 Hz camera with camera_info, a ~0.2 s model.
    depth = ros.collect(Image, "depth/image")
    t_start = time.monotonic()
    next_time = t_start
    while time.monotonic() - t_start < 7.0:
        camera_pub.send(rgb, K, "cam")
        next_time += 1.0 / 30.0
        time.sleep(max(0.0, next_time - time.monotonic()))
    assert len(depth) > 0, node.output()
    recent = [s for t, s in _ours(diags, time.time() - 2.5)]
    assert recent, "no diagnostics in the last seconds"
    status = recent[-1]
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN, (status.message, values)
    assert "frames are dropped" in status.message
    assert float(values["input_rate_hz"]) > 15.0
    assert 0.0 < float(values["output_rate_hz"]) < float(values["input_rate_hz"]) / 2
    assert int(values["frames_dropped"]) > 20
    assert int(values["frames_published"]) >= 1
    p50, p90, p99 = (float(values[f"latency_p{p}_ms"]) for p in (50, 90, 99))
    assert 0.0 < p50 <= p90 <= p99 < 10_000.0
    # Where the latency goes: the model computes for about 0.2 s, so the network stage does.
    stage_names = ("arrival", "wait", "network", "publish")
    stages = {k: float(values[f"latency_{k}_p50_ms"]) for k in stage_names}
    assert stages["network"] >= 150.0, stages
    assert all(0.0 <= v < stages["network"] for k, v in stages.items() if k != "network"), stages
    assert (
        values["backend"] == "torch"
        and values["device"] == "cpu"
        and values["precision"] == "fp32"
    )
    assert values["model"] == str(model)
    assert status.hardware_id == "cpu"
    # About once per second.
    times = [t for t, _ in _ours(diags, 0)]
    gaps = np.diff(times)
    assert 0.5 < float(np.median(gaps)) < 2.0, gaps

    # Phase 3: camera_info stops while images go on (a driver that lost its calibration).
    t3 = time.time()
    ok = wait_for(
        lambda: (
            camera_pub.send(rgb, send_info=False),
            any(
                s.level == DiagnosticStatus.ERROR and "stopped" in s.message
                for _, s in _ours(diags, t3)
            ),
        )[1],
        20.0,
        0.05,
    )
    assert ok, [s.message for _, s in _ours(diags, t3)]
    assert node.wait_for_output("no camera_info with a matching stamp", timeout=10)
    assert node.proc.poll() is None
