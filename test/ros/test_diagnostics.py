"""Frame statistics, throttled fault logging and the diagnostic status levels."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from recon3d_ros.core.camera import PinholeCamera  # noqa: E402
from recon3d_ros.inference.scale import MetricScaler  # noqa: E402
from recon3d_ros.ros.diagnostics import (  # noqa: E402
    FaultReporter,
    FrameStats,
    RateMeter,
    StatsSnapshot,
    build_status,
    loss_values,
    pairing_values,
    scale_values,
)  # noqa: E402
from recon3d_ros.ros.sync import PairingCounts  # noqa: E402


def test_rate_meter_counts_events_in_window():
    meter = RateMeter(window_s=5.0)
    for i in range(11):
        meter.tick(100.0 + i * 0.1)
    assert meter.rate(101.0) == pytest.approx(10.0)
    assert meter.rate(200.0) == 0.0  # everything expired


def test_fault_reporter_logs_once_per_cause_then_throttles():
    lines: list[str] = []
    faults = FaultReporter(lines.append, throttle_s=60.0)
    for _ in range(5):
        faults.report("/image", "bad image", "truncated")
    faults.report("/camera_info", "bad camera_info", "K zero")
    assert len(lines) == 2
    assert "'/image'" in lines[0] and "bad image" in lines[0] and "truncated" in lines[0]
    assert faults.counts() == {("/image", "bad image"): 5, ("/camera_info", "bad camera_info"): 1}


def test_frame_stats_percentiles():
    stats = FrameStats()
    for i in range(1, 101):
        stats.image_received()
        stats.frame_published(i / 1000.0, 5.0)
    snap = stats.snapshot()
    assert snap.frames_received == 100 and snap.frames_published == 100
    assert snap.latency_ms["p50"] == pytest.approx(50.5)
    assert snap.latency_ms["p99"] == pytest.approx(99.01)


def test_frame_stats_split_the_latency_into_stages():
    stats = FrameStats()
    for i in range(1, 6):  # medians: arrival 3, wait 30, network 300; publish never recorded
        stats.frame_published(0.5, 5.0, {"arrival": i, "wait": 10.0 * i, "network": 100.0 * i})
    snap = stats.snapshot()
    assert snap.stage_ms == {"arrival": 3.0, "wait": 30.0, "network": 300.0}
    values = {kv.key: kv.value for kv in build_status("n", "cpu", snap, {}, "ci", {}).values}
    assert values["latency_network_p50_ms"] == "300.0"
    assert "latency_publish_p50_ms" not in values


def _snap(**kw) -> StatsSnapshot:
    base = {
        "input_rate_hz": 10.0,
        "output_rate_hz": 10.0,
        "frames_received": 50,
        "frames_published": 50,
        "frames_dropped": 0,
        "frames_rejected": 0,
        "camera_infos_received": 50,
        "camera_info_rate_hz": 10.0,
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0},
        "inference_ms": 4.0,
    }
    base.update(kw)
    return StatsSnapshot(**base)


@pytest.mark.parametrize(
    "kw, level",
    [
        ({}, DiagnosticStatus.OK),
        ({"camera_infos_received": 0, "camera_info_rate_hz": 0.0}, DiagnosticStatus.ERROR),
        ({"camera_info_rate_hz": 0.0}, DiagnosticStatus.ERROR),  # camera_info stopped
        ({"input_rate_hz": 30.0, "output_rate_hz": 5.0}, DiagnosticStatus.WARN),
    ],
)
def test_status_levels(kw, level):
    status = build_status(
        "depth_node: depth", "cpu", _snap(**kw), {"backend": "torch"}, "/camera_info", {}
    )
    assert status.level == level
    values = {v.key: v.value for v in status.values}
    assert values["backend"] == "torch" and values["latency_p90_ms"] == "2.0"


def test_scale_values_report_the_scalers_state_before_and_after_an_estimate():
    scaler = MetricScaler("sparse", scale_only=True, min_points=4)
    before = scale_values(scaler.state)
    assert before["scale_mode"] == "sparse"
    assert before["scale"] == "nan" and before["scale_updates"] == "0"
    camera = PinholeCamera(8, 6, 5.0, 5.0, 3.5, 2.5)
    scaler.set_reference_depth(np.full((6, 8), 3.0))
    scaler.apply(np.full((6, 8), 0.5, np.float32), camera)  # relative disparity 2 everywhere
    after = scale_values(scaler.state)
    assert float(after["scale"]) == pytest.approx(1.0 / 6.0, rel=1e-5)  # 1/3 m^-1 = s * 2
    assert float(after["scale_shift"]) == 0.0
    assert after["scale_updates"] == "1" and after["scale_rejected"] == "0"
    assert after["scale_inliers"] == "48"


def test_pairing_values_say_how_images_found_their_camera_info():
    counts = PairingCounts(
        exact=57, nearest=2, latched=0, waited=40, unpaired=1, max_wait_s=0.0123
    )
    values = pairing_values("stamped", counts)
    assert values == {
        "camera_info_policy": "stamped",
        "paired_exact": "57",
        "paired_nearest": "2",
        "paired_latched": "0",
        "camera_info_waited": "40",
        "camera_info_wait_max_ms": "12.3",
        "camera_info_unpaired": "1",
    }


def test_loss_values_before_and_after_the_period_is_known():
    assert loss_values(0, None, None) == {
        "frames_lost_before_node": "0",
        "camera_period_ms": "nan",
        "image_messages_lost_middleware": "unsupported",
    }
    values = loss_values(12, 33_333_333, 3)
    assert values["frames_lost_before_node"] == "12"
    assert values["camera_period_ms"] == "33.33"
    assert values["image_messages_lost_middleware"] == "3"
