"""Depth -> PointCloud2 message: the node's path against a naive one, as ratios to a memcpy.

Prints, for a ``--width`` x ``--height`` depth map (5 % invalid unless ``--dense``), the median
and best milliseconds of:

* ``naive``: meshgrid per frame, float64, a structured array and ``tobytes`` (what a first
  implementation does), for comparison;
* ``node``: ``core.pointcloud.depth_to_cloud`` + ``ros.conversions.cloud_to_msg``, the buffer
  the message is published with (filled once, handed to the message without a copy);
* ``padded16``: the points in PCL PointXYZ's 16-byte layout (the xyzrgb fill with a zero
  colour): more bytes to write and send than the packed 12, which is why ``x y z`` has no pad;

and each beside a memcpy of the same byte count timed in the same run
(``core.memcpy.memcpy_ms``). Targets: xyz <= 3x, xyzrgb <= 5x that memcpy (issue 12).

Run: ``PYTHONPATH=. python benchmarks/bench_pointcloud.py [--width 640 --height 480
--repeat 200] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, Callable

import numpy as np

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.memcpy import memcpy_ms
from recon3d_ros.core.pointcloud import depth_to_cloud, pack_rgb

TARGETS = {"xyz": 3.0, "xyzrgb": 5.0}  # ratio to memcpy, node path (issue 12)


def naive_cloud(depth: np.ndarray, camera: PinholeCamera, rgb: np.ndarray | None) -> bytes:
    """Back-project the straightforward way: meshgrid per frame, float64, structured fill."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    z = depth.astype(np.float64)
    valid = np.isfinite(z) & (z > 0)
    z = np.where(valid, z, np.nan)
    x = (u - camera.cx) * z / camera.fx
    y = (v - camera.cy) * z / camera.fy
    names = ["x", "y", "z"] + (["rgb"] if rgb is not None else [])
    cloud = np.zeros(h * w, dtype=[(n, np.float32) for n in names])
    cloud["x"] = x.reshape(-1)
    cloud["y"] = y.reshape(-1)
    cloud["z"] = z.reshape(-1)
    if rgb is not None:
        cloud["rgb"] = pack_rgb(rgb.reshape(-1, 3))
    return cloud.tobytes()


def padded_xyz16(depth: np.ndarray, camera: PinholeCamera, zeros: np.ndarray) -> Any:
    """Fill PCL PointXYZ's 16-byte layout: the node's xyzrgb path with an all-zero colour."""
    return depth_to_cloud(depth, camera, zeros)


def node_cloud_msg(
    depth: np.ndarray, camera: PinholeCamera, rgb: np.ndarray | None, header: Any
) -> Any:
    """Build the cloud and its PointCloud2 message as the node does."""
    from recon3d_ros.ros.conversions import cloud_to_msg

    return cloud_to_msg(depth_to_cloud(depth, camera, rgb), header)


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm up (the ray grid, the block planes, first-use imports)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), min(samples)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every case; returns one row per case (ms and the ratio to the memcpy)."""
    from std_msgs.msg import Header

    rng = np.random.default_rng(0)
    camera = PinholeCamera.from_fov(args.width, args.height, 70.0)
    depth = rng.uniform(0.3, 8.0, (args.height, args.width)).astype(np.float32)
    if not args.dense:
        depth[rng.random(depth.shape) < 0.05] = np.nan
    rgb = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    zeros = np.zeros_like(rgb)
    header = Header(frame_id="camera")
    pixels = args.width * args.height
    # The node's path first: the naive one's tens of megabytes of temporaries per call leave
    # the caches and the allocator in a state the node's process is not in.
    cases: list[tuple[str, str, int, Callable[[], object]]] = [
        ("node", "xyz", 12, lambda: node_cloud_msg(depth, camera, None, header)),
        ("node", "xyzrgb", 16, lambda: node_cloud_msg(depth, camera, rgb, header)),
        ("padded16", "xyz", 16, lambda: padded_xyz16(depth, camera, zeros)),
        ("naive", "xyz", 12, lambda: naive_cloud(depth, camera, None)),
        ("naive", "xyzrgb", 16, lambda: naive_cloud(depth, camera, rgb)),
    ]
    rows = []
    for path, layout, step, fn in cases:
        med, best = _time(fn, args.repeat)
        copy = memcpy_ms(pixels * step, repeat=max(args.repeat // 4, 5))
        row = {"path": path, "layout": layout, "bytes": pixels * step, "median_ms": med,
               "best_ms": best, "memcpy_ms": copy, "ratio": med / copy}
        if path == "node":
            row["target_ratio"] = TARGETS[layout]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--dense", action="store_true", help="no invalid depth (network output)")
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    args = parser.parse_args()
    rows = run(args)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    kind = "all valid" if args.dense else "5% NaN"
    print(f"depth {args.width}x{args.height} ({kind}), {args.repeat} runs")
    print(f"{'case':18s} {'median ms':>9s} {'best ms':>8s} {'memcpy ms':>9s} {'ratio':>6s}")
    for row in rows:
        target = f"  (target <= {row['target_ratio']:.0f}x)" if "target_ratio" in row else ""
        print(f"{row['path'] + ' ' + row['layout']:18s} {row['median_ms']:9.3f} "
              f"{row['best_ms']:8.3f} {row['memcpy_ms']:9.3f} {row['ratio']:5.1f}x{target}")


if __name__ == "__main__":
    main()
