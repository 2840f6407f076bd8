"""Depth -> PointCloud2 buffer: naive meshgrid vs the cached-ray fast path (prints figures).

Run: ``PYTHONPATH=. python benchmarks/bench_pointcloud.py [--width 640 --height 480 --repeat 200]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.pointcloud import (
    _fill_xyz, _scratch, _valid_z, depth_to_cloud, pack_rgb, ray_grid_for,
)


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


def padded_xyz16(depth: np.ndarray, camera: PinholeCamera) -> bytes:
    """Run the fast path with PCL PointXYZ's 16-byte padded layout, to compare with 12 bytes."""
    z, _ = _valid_z(depth, 0.0, float("inf"))
    rx, ry = ray_grid_for(camera).decimated(1)
    buf = _scratch(depth.shape + (4,))
    _fill_xyz(buf, z, rx, ry)
    buf[..., 3] = 0.0
    return buf.tobytes()


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm up (builds the ray cache for the fast path)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--dense", action="store_true", help="no invalid depth (network output)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    camera = PinholeCamera.from_fov(args.width, args.height, 70.0)
    depth = rng.uniform(0.3, 8.0, (args.height, args.width)).astype(np.float32)
    if not args.dense:
        depth[rng.random(depth.shape) < 0.05] = np.nan
    rgb = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    kind = "all valid" if args.dense else "5% NaN"
    print(f"depth {args.width}x{args.height} ({kind}), {args.repeat} runs, median / best ms")
    cases = [
        ("naive xyz", lambda: naive_cloud(depth, camera, None)),
        ("fast  xyz", lambda: depth_to_cloud(depth, camera)),
        ("fast  xyz padded16", lambda: padded_xyz16(depth, camera)),
        ("naive xyzrgb", lambda: naive_cloud(depth, camera, rgb)),
        ("fast  xyzrgb", lambda: depth_to_cloud(depth, camera, rgb)),
        ("fast  xyz stride 2", lambda: depth_to_cloud(depth, camera, stride=2)),
    ]
    for name, fn in cases:
        med, best = _time(fn, args.repeat)
        print(f"{name:20s} {med:8.3f} {best:8.3f}")


if __name__ == "__main__":
    main()
