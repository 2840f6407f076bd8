"""Soak: many small frames through the real depth node; memory must stay flat (prints figures).

Starts ``depth_node`` as its own process with a tiny, fast TorchScript model, publishes
``--frames`` 64x48 frames at ``--rate`` Hz over real DDS (own ROS_DOMAIN_ID, LOCALHOST
discovery), collects ``depth/image``/``points``, and prints the node's resident memory
(``VmRSS`` from ``/proc/<pid>/status``) along the way, the drift after warm-up, and the frame
counts: published here, received and dropped by the node (its ``/diagnostics``), and received
back here.

Run: ``PYTHONPATH=. python benchmarks/soak.py [--frames 10000 --rate 100]``
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
from recon3d_ros.demo.tiny_models import fast_model, save_torchscript


def _frames(count: int, width: int, height: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="publish rate, Hz")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument(
        "--warmup-frames",
        type=int,
        default=500,
        help="frames before the baseline memory reading (allocator and caches settle)",
    )
    parser.add_argument("--report-every", type=int, default=1000)
    parser.add_argument(
        "--max-drift-mib",
        type=float,
        default=8.0,
        help="verdict threshold on memory growth after warm-up",
    )
    parser.add_argument("--domain-id", type=int, default=None)
    args = parser.parse_args()

    from recon3d_ros.core.camera import PinholeCamera

    domain = configure_ros_environment(args.domain_id)
    tmp = Path(tempfile.mkdtemp(prefix="recon3d_soak_"))
    model = save_torchscript(fast_model(), tmp / "fast.pt", args.width, args.height)
    node = NodeProcess(str(model), params={"device": "cpu"}, log_path=tmp / "node.log")
    node.env["OMP_NUM_THREADS"] = "1"
    node.start()
    camera = PinholeCamera.from_fov(args.width, args.height, 60.0, frame_id="camera_optical_frame")
    images = _frames(16, args.width, args.height)
    print(
        f"soak: {args.frames} frames of {args.width}x{args.height} at {args.rate:g} Hz, node pid "
        f"{node.pid}, ROS_DOMAIN_ID={domain}",
        flush=True,
    )
    link = CameraLink(keep_messages=False)
    rss_log: list[tuple[int, int]] = []
    latencies: list[float] = []
    try:
        if not link.wait_for_node(60.0, node.alive):
            print(node.log_tail(), file=sys.stderr)
            return 1
        rss_start = node.rss_kib()
        rss_log.append((0, rss_start))
        print(
            f"  node RSS at start (model loaded, no frame yet): {rss_start / 1024:.1f} MiB",
            flush=True,
        )
        period = 1.0 / args.rate
        t_start = time.monotonic()
        for i in range(args.frames):
            delay = t_start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            link.publish(images[i % len(images)], camera, i)
            done = i + 1
            if done == args.warmup_frames or done % args.report_every == 0 or done == args.frames:
                latencies.extend(link.latencies_ms(link.take("points")))
                link.take("depth")
                link.take("depth_info")
                rss = node.rss_kib()
                rss_log.append((done, rss))
                print(
                    f"  {done:6d} frames sent, {link.count('points'):6d} clouds back, "
                    f"RSS {rss / 1024:7.1f} MiB",
                    flush=True,
                )
        elapsed = time.monotonic() - t_start
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and link.count("points") < link.published:
            time.sleep(0.05)
        time.sleep(max(1.5, 1.0))  # one more /diagnostics period
        latencies.extend(link.latencies_ms(link.take("points")))
        rss_end = node.rss_kib()
        diag = link.diagnostic_values()
        received_depth, received_points = link.count("depth"), link.count("points")
        published = link.published
    finally:
        link.close()
        rc = node.stop()

    baseline = next((rss for n, rss in rss_log if n == args.warmup_frames), rss_log[0][1])
    after = [(n, rss) for n, rss in rss_log if n >= args.warmup_frames]
    slope = float("nan")
    if len(after) >= 3:
        n, rss = np.array(after, dtype=np.float64).T
        slope = float(np.polyfit(n / 1000.0, rss, 1)[0])  # KiB per 1000 frames
    drift_mib = (rss_end - baseline) / 1024
    lat = percentiles(latencies, (50, 90, 99))
    print("")
    print(f"memory (VmRSS of pid {node.pid}):")
    print(
        f"  start {rss_log[0][1] / 1024:.1f} MiB, after {args.warmup_frames} frames "
        f"{baseline / 1024:.1f} MiB, "
        f"end {rss_end / 1024:.1f} MiB"
    )
    print(
        f"  drift after warm-up {drift_mib:+.2f} MiB over "
        f"{published - args.warmup_frames} frames; "
        f"trend {slope:+.1f} KiB per 1000 frames"
    )
    print("frames:")
    print(f"  published {published} in {elapsed:.1f} s ({published / elapsed:.1f} Hz)")
    if diag:
        print(
            f"  node: received {diag.get('frames_received')}, "
            f"published {diag.get('frames_published')}, "
            f"dropped {diag.get('frames_dropped')} (superseded by a newer frame), rejected "
            f"{diag.get('frames_rejected')}"
        )
    else:
        print("  node: no /diagnostics received")
    print(
        f"  received here: depth {received_depth}, points {received_points}; lost end to end "
        f"{published - received_points} "
        f"({100.0 * (published - received_points) / max(published, 1):.2f} %)"
    )
    print(
        f"  stamp-to-receipt latency of points: p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, "
        f"p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms"
    )
    print(f"  node exit code after SIGINT: {rc}")
    flat = abs(drift_mib) <= args.max_drift_mib
    print(
        f"verdict: memory {'FLAT' if flat else 'GROWING'} (|drift| {'<=' if flat else '>'} "
        f"{args.max_drift_mib:g} MiB)"
    )
    return 0 if flat and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
