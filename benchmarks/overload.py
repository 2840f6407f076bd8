"""Overload: a 30 Hz camera into a ~100 ms model; latency must stay bounded (prints figures).

The node keeps only the newest frame while it is busy, so when the camera outpaces the model
frames are dropped, not queued: latency (image stamp to receipt of ``points``) must stay near
one inference plus one camera period, window after window, instead of growing. The model
really computes (a calibrated chain of matrix products on one thread): the node is unmodified.

Run: ``PYTHONPATH=. python benchmarks/overload.py [--seconds 40 --rate 30 --model-ms 100]``
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

from recon3d_ros.demo.harness import (
    CameraLink,
    configure_ros_environment,
    NodeProcess,
    percentiles,
)
from recon3d_ros.demo.tiny_models import calibrate_slow_model, save_torchscript, slow_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--model-ms", type=float, default=100.0, help="target inference time")
    parser.add_argument("--window", type=float, default=5.0, help="seconds per reported window")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--domain-id", type=int, default=None)
    args = parser.parse_args()

    from recon3d_ros.core.camera import PinholeCamera

    domain = configure_ros_environment(args.domain_id)
    tmp = Path(tempfile.mkdtemp(prefix="recon3d_overload_"))
    matmuls = calibrate_slow_model(args.model_ms, threads=1)
    model = save_torchscript(slow_model(matmuls), tmp / "slow.pt", 64, 48)
    node = NodeProcess(str(model), params={"device": "cpu"}, log_path=tmp / "node.log")
    node.env["OMP_NUM_THREADS"] = "1"
    node.start()
    camera = PinholeCamera.from_fov(args.width, args.height, 60.0, frame_id="camera_optical_frame")
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, size=(args.height, args.width, 3), dtype=np.uint8) for _ in range(8)
    ]
    print(
        f"overload: {args.width}x{args.height} camera at {args.rate:g} Hz for {args.seconds:g} s "
        "into a model "
        f"calibrated to ~{args.model_ms:g} ms ({matmuls} matmuls, 1 thread); node pid {node.pid}, "
        f"ROS_DOMAIN_ID={domain}",
        flush=True,
    )
    link = CameraLink(keep_messages=False)
    rows = []
    try:
        if not link.wait_for_node(60.0, node.alive):
            print(node.log_tail(), file=sys.stderr)
            return 1
        # One frame first, answered, so model warm-up does not count as overload latency.
        link.publish(images[0], camera, -1)
        deadline = time.monotonic() + 30.0
        while link.count("points") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        link.take("points")
        print(
            f"  {'window':>11} {'sent':>5} {'out':>5} {'out Hz':>7} "
            f"{'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}"
        )
        period = 1.0 / args.rate
        t_start = time.monotonic()
        next_window = t_start + args.window
        sent_in_window = 0
        i = 0
        while True:
            now = time.monotonic()
            if now >= next_window:
                items = link.take("points")
                lat = percentiles(link.latencies_ms(items))
                w0 = next_window - args.window - t_start
                rows.append((w0, sent_in_window, len(items), lat))
                print(
                    f"  {w0:4.0f}-{w0 + args.window:4.0f} s {sent_in_window:5d} {len(items):5d} "
                    f"{len(items) / args.window:7.1f} "
                    f"{lat['p50']:8.1f} {lat['p90']:8.1f} {lat['max']:8.1f}",
                    flush=True,
                )
                sent_in_window = 0
                next_window += args.window
                if next_window - t_start > args.seconds + 1e-6:
                    break
            target = t_start + i * period
            if target > now:
                time.sleep(min(target - now, max(next_window - now, 0.0)))
                continue
            link.publish(images[i % len(images)], camera, i)
            sent_in_window += 1
            i += 1
        time.sleep(1.5)
        diag = link.diagnostic_values()
        published = link.published
        received = link.count("points")
    finally:
        link.close()
        rc = node.stop()

    p90s = [r[3]["p90"] for r in rows if r[2] > 0]
    first, last = (p90s[0], p90s[-1]) if p90s else (float("nan"), float("nan"))
    print("")
    print(f"frames: published {published}, clouds received {received}")
    if diag:
        print(
            f"  node: received {diag.get('frames_received')}, "
            f"published {diag.get('frames_published')}, "
            f"dropped {diag.get('frames_dropped')} (superseded while busy), "
            f"inference {diag.get('inference_ms')} ms"
        )
    bounded = (
        bool(p90s)
        and last <= 1.5 * first + 2 * 1000.0 / args.rate
        and max(p90s) <= 3 * min(p90s) + 100.0
    )
    print(
        f"latency p90 first window {first:.1f} ms, last window {last:.1f} ms, "
        f"range {min(p90s, default=float('nan')):.1f}..{max(p90s, default=float('nan')):.1f} ms"
    )
    print(
        f"verdict: latency {'BOUNDED' if bounded else 'GROWING'} under overload; "
        f"node exit code {rc}"
    )
    return 0 if bounded and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
