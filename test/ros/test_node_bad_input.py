"""depth_node against hostile input: decompression bombs, corrupt payloads, bad calibrations.

Issue 10, items 1, 7 and 5. Each test runs one node process on real DDS, checks that the bad
frames are dropped with the node's own (throttled) warning and nothing else, and that a good
frame is served afterwards.
"""

from __future__ import annotations

import array
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

W, H = 32, 24
K = (30.0, 30.0, 15.5, 11.5)
FRAME = "cam"
# What libpng, libjpeg and OpenCV's codecs print to stderr about a corrupt payload.
DECODER_NOISE = ("libpng", "Corrupt JPEG", "Premature end", "grfmt_", "Invalid JPEG")


def _status_kb(pid: int, field: str) -> int:
    """Read ``VmRSS`` / ``VmHWM`` (peak RSS) of a process from /proc, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _good_rgb() -> np.ndarray:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0] = np.arange(W, dtype=np.uint8)[None, :] * 7
    return rgb


class _CompressedCamera:
    """Sends CompressedImage + CameraInfo pairs; ``send`` returns the stamp as (sec, nanosec)."""

    def __init__(self, ros, make_camera, msgs) -> None:
        self.ros, self.msgs = ros, msgs
        self.sender = make_camera(image_topic="image/compressed", image_type=CompressedImage)
        ok, jpg = cv2.imencode(".jpg", _good_rgb()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        self.good_jpeg = jpg.tobytes()

    def send(self, payload: bytes, fmt: str = "jpeg") -> tuple[int, int]:
        stamp = self.ros.now_stamp()
        msg = CompressedImage(format=fmt)
        msg.header.stamp, msg.header.frame_id = stamp, FRAME
        msg.data = array.array("B", payload)
        info = self.msgs.camera_info(W, H, *K, stamp=stamp, frame_id=FRAME)
        return self.sender.send(stamp=stamp, image=msg, info=info)


def _serve_good(send, depth, wait_for, after: tuple[int, int], node, timeout: float = 40.0):
    """Send good frames until a depth image newer than ``after`` comes back."""

    def _newer() -> bool:
        send()
        return any((m.header.stamp.sec, m.header.stamp.nanosec) > after for m in depth.messages())

    assert wait_for(_newer, timeout, 0.1), f"no good frame served:\n{node.output()}"


def _dropping_lines(output: str, *parts: str) -> list[str]:
    return [
        line for line in output.splitlines()
        if "dropping frame" in line and all(p in line for p in parts)
    ]


def test_decompression_bombs_cost_no_memory(
    ros, start_node, depth_models, make_camera, msgs, wait_for, bad_payloads
):
    node = start_node(
        model=str(depth_models.constant(2.0)), transport="compressed", publish_points=False
    )
    depth = ros.collect(Image, "depth/image")
    camera = _CompressedCamera(ros, make_camera, msgs)
    _serve_good(lambda: camera.send(camera.good_jpeg), depth, wait_for, (0, 0), node)
    for _ in range(10):  # settle: a few more good frames through every stage
        camera.send(camera.good_jpeg)
        time.sleep(0.05)
    time.sleep(0.5)
    pid = node.proc.pid
    rss_before, peak_before = _status_kb(pid, "VmRSS"), _status_kb(pid, "VmHWM")

    bombs = {"jpeg": bad_payloads.jpeg_bomb(), "png": bad_payloads.png_bomb()}
    sent: list[tuple[int, int]] = []
    for fmt, payload in bombs.items():
        seen = len(_dropping_lines(node.output(), "16000x16000"))

        # Repeated until the node reports it (its warning is throttled per cause for 10 s).
        def _rejected(fmt=fmt, payload=payload, seen=seen) -> bool:
            sent.append(camera.send(payload, fmt))
            return len(_dropping_lines(node.output(), "16000x16000")) > seen

        assert wait_for(_rejected, 40.0, 0.5), node.output()
    rss_after, peak_after = _status_kb(pid, "VmRSS"), _status_kb(pid, "VmHWM")
    print(
        f"\nnode RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB, peak (VmHWM) "
        f"{peak_before / 1024:.0f} -> {peak_after / 1024:.0f} MB over {len(sent)} bombs"
    )
    assert node.proc.poll() is None, node.output()
    # A decoded bomb is 768 MB of BGR; rejected from its header it costs nothing.
    assert (peak_after - peak_before) / 1024 < 200, (peak_before, peak_after)
    assert (rss_after - rss_before) / 1024 < 200, (rss_before, rss_after)
    for fmt in bombs:  # the reason names the declared size and the limit
        assert _dropping_lines(
            node.output(), f"16000x16000 = 256000000 pixels in its {fmt} header",
            "limit of 33177600 pixels (max_input_pixels)",
        ), node.output()
    _serve_good(lambda: camera.send(camera.good_jpeg), depth, wait_for, max(sent), node)
    got = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in depth.messages()}
    assert not got & set(sent)


def test_corrupt_payloads_leave_only_the_nodes_warning(
    ros, start_node, depth_models, make_camera, msgs, wait_for, bad_payloads
):
    node = start_node(
        model=str(depth_models.constant(2.0)), transport="compressed", publish_points=False
    )
    depth = ros.collect(Image, "depth/image")
    camera = _CompressedCamera(ros, make_camera, msgs)
    _serve_good(lambda: camera.send(camera.good_jpeg), depth, wait_for, (0, 0), node)

    ok, png = cv2.imencode(".png", _good_rgb())
    png = png.tobytes()
    idat = png.index(b"IDAT") + 6
    jpg = camera.good_jpeg
    scan = jpg.index(b"\xff\xda") + 20
    corrupt = [
        ("png", bad_payloads.png(W, H, rows=5)),  # libpng: "Not enough image data"
        ("png", png[:idat] + bytes([png[idat] ^ 0xFF]) + png[idat + 1:]),  # inflate/CRC error
        ("png", png[: len(png) // 2]),  # truncated
        ("jpeg", jpg[: len(jpg) // 2]),  # truncated: "Premature end of JPEG file"
        ("jpeg", jpg[:scan] + bytes(40) + b"\xff\x00" * 8 + jpg[scan + 56:]),  # corrupt scan
    ]
    sent = []
    for i in range(40):  # 40 payloads at 10 Hz, as in the run
        fmt, payload = corrupt[i % len(corrupt)]
        sent.append(camera.send(payload, fmt))
        time.sleep(0.1)
    assert wait_for(
        lambda: bool(_dropping_lines(node.output(), "bad compressed image")), 10.0
    ), node.output()
    _serve_good(lambda: camera.send(camera.good_jpeg), depth, wait_for, max(sent), node)
    assert node.proc.poll() is None
    got = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in depth.messages()}
    assert not got & set(sent), "a corrupt payload was published"

    out = node.output()
    noise = [
        line for line in out.splitlines()
        if any(n in line for n in DECODER_NOISE) and "dropping frame" not in line
    ]
    assert noise == [], out
    # The node's own report is throttled: one line per cause, not one per frame.
    assert 1 <= len(_dropping_lines(out, "bad compressed image")) <= 2, out


def test_calibration_no_camera_can_have_is_rejected(
    ros, start_node, depth_models, camera_pub, msgs, wait_for
):
    node = start_node(model=str(depth_models.constant(2.0)))
    depth = ros.collect(Image, "depth/image")

    def send_good():
        return camera_pub.send(_good_rgb(), K, FRAME)

    _serve_good(send_good, depth, wait_for, (0, 0), node)

    def send_with(**fields):
        stamp = ros.now_stamp()
        info = msgs.camera_info(W, H, *K, stamp=stamp, frame_id=FRAME)
        for name, value in fields.items():
            if name == "roi":
                roi = info.roi
                roi.x_offset, roi.y_offset, roi.width, roi.height = value
            else:
                setattr(info, name, value)
        return camera_pub.send(_good_rgb(), stamp=stamp, frame=FRAME, info=info)

    fx, fy, cx, cy = K
    # The ROI case of the issue (offset 5000,5000 on the sensor, image-sized): cx would be -4984.5.
    bad: list[tuple[int, int]] = []

    def _roi_rejected() -> bool:
        bad.append(send_with(roi=(5000, 5000, W, H)))
        reason = "ROI 32x24 at offset (5000, 5000) reaches (5032, 5024), outside the 32x24"
        return bool(_dropping_lines(node.output(), "'/camera_info': bad camera_info", reason))

    assert wait_for(_roi_rejected, 20.0, 0.2), node.output()
    for k in (
        [1e-9, 0, cx, 0, fy, cy, 0, 0, 1],
        [1e300, 0, cx, 0, 1e300, cy, 0, 0, 1],
        [fx, 0, cx, 0, fy, cy, 0, 0, 0],
        [fx, 0, cx, 0, fy, cy, 0, 0, 5],
        [fx, 1e6, cx, 0, fy, cy, 0, 0, 1],
        [fx, 0, 1e12, 0, fy, cy, 0, 0, 1],
    ):
        for _ in range(3):
            bad.append(send_with(k=k))
            time.sleep(0.15)
    _serve_good(send_good, depth, wait_for, max(bad), node)
    got = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in depth.messages()}
    assert not got & set(bad), "a frame with an impossible calibration was published"
    assert node.proc.poll() is None
    out = node.output()
    assert "RuntimeWarning" not in out and "overflow" not in out, out
