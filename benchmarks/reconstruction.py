"""3D reconstruction figures: fusion speed, map memory, odometry, surface accuracy (JSON).

On the shared RGB-D frames (``../shared/data/rgbd``: redwood and icl, whose poses are
accurate), prints one JSON object:

* ``integration_ms``: ms per 640x480 frame fused into the TSDF at 1, 2 and 5 cm voxels
  (median over redwood's frames, after one warm-up pass), and ``mesh_ms`` per extraction;
* ``memory``: MiB per 1000 voxel blocks (computed, and measured as resident memory);
* ``odometry``: ms per pair and error (cm, degrees) against ground truth per consecutive pair,
  as a sequence runs it (each frame's features computed once, used as the current frame of
  one pair and the previous of the next), and ``ms_per_pair_uncached_median``: both frames of
  each pair from scratch (``estimate_motion``);
* ``accuracy``: accuracy, completeness, Chamfer and F-score at 2 and 5 cm of the mesh fused
  at 2 cm, against the ground-truth depth back-projected with the ground-truth poses, for
  ground-truth depth, the default model's depth (raw) and that depth scaled per frame to the
  ground truth's median (what ``scale_mode: sparse`` does with dense references).

Run: ``PYTHONPATH=. python benchmarks/reconstruction.py [--threads 2] [--no-model]
[--odometry-only]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "rgbd"
#: Passes over each sequence's pairs for the odometry timings (their median).
ODOMETRY_REPEATS = 5
# ICL's pose.txt @ diag(1, -1, 1, 1) is the optical frame (the data's README) but a reflection;
# mirroring the world too (F @ T @ F) makes it a rotation with the same relative poses.
ICL_FLIP = np.diag([1.0, -1.0, 1.0, 1.0])


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _load(name: str) -> tuple[list[Any], list[np.ndarray]]:
    from recon3d_ros.core.rgbd_io import read_rgbd_frames
    from recon3d_ros.reconstruction.poses import read_pose_txt, read_trajectory_log

    folder = SHARED / name
    frames = read_rgbd_frames(folder)
    if name == "redwood":
        poses = read_trajectory_log(folder / "trajectory.log")
    else:
        poses = [ICL_FLIP @ T @ ICL_FLIP for T in read_pose_txt(folder / "pose.txt")]
    return frames, poses


def _gt_points(frames: list[Any], poses: list[np.ndarray]) -> np.ndarray:
    from recon3d_ros.core.pointcloud import depth_to_points

    out = []
    for f, T in zip(frames, poses):
        p = depth_to_points(f.depth_m, f.camera, stride=2).reshape(-1, 3).astype(np.float64)
        p = p[np.isfinite(p).all(axis=1)]
        out.append(p @ T[:3, :3].T + T[:3, 3])
    return np.concatenate(out)


def _fusion_speed(frames: list[Any], poses: list[np.ndarray]) -> dict[str, Any]:
    from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap

    integration, mesh, blocks = {}, {}, {}
    for voxel in (0.01, 0.02, 0.05):
        times, mesh_times = [], []
        for repeat in range(3):
            tsdf_map = TsdfMap(MapOptions(voxel_size=voxel, memory_budget_mb=1024))
            for f, T in zip(frames, poses):
                t = time.perf_counter()
                tsdf_map.integrate(f.depth_m, f.camera, T, f.rgb)
                if repeat:  # the first pass warms Open3D up
                    times.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            tsdf_map.extract_mesh()
            mesh_times.append((time.perf_counter() - t) * 1e3)
        key = f"{voxel * 100:g}cm"
        integration[key] = round(statistics.median(times), 1)
        mesh[key] = round(statistics.median(mesh_times[1:]), 1)
        blocks[key] = tsdf_map.block_count
    return {"integration_ms": integration, "mesh_ms": mesh, "blocks_5_frames": blocks}


def _memory() -> dict[str, float]:
    from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap

    options = MapOptions(voxel_size=0.02, memory_budget_mb=1024, initial_blocks=1000)
    before = _rss_mib()
    tsdf_map = TsdfMap(options)
    measured = _rss_mib() - before
    return {
        "allocated_blocks": tsdf_map.capacity_blocks,
        "mib_per_1000_blocks": round(1000 * options.bytes_per_block / 2**20, 1),
        "measured_rss_mib_per_1000_blocks": round(measured, 1),
    }


def _odometry(name: str, frames: list[Any], poses: list[np.ndarray]) -> dict[str, Any]:
    from recon3d_ros.reconstruction.odometry import (
        estimate_motion,
        estimate_motion_between,
        prepare_frame,
    )

    a = frames[0]
    estimate_motion(a.rgb, a.depth_m, a.rgb, a.depth_m, a.camera)  # warm-up
    uncached: list[float] = []
    times: list[float] = []
    for _ in range(ODOMETRY_REPEATS):  # medians over repeats: a shared machine's noise
        for a, b in zip(frames, frames[1:]):
            t = time.perf_counter()
            estimate_motion(a.rgb, a.depth_m, b.rgb, b.depth_m, a.camera)
            uncached.append((time.perf_counter() - t) * 1e3)
        pairs = []
        previous = prepare_frame(frames[0].rgb, frames[0].depth_m, frames[0].camera)
        for i in range(len(frames) - 1):
            b = frames[i + 1]
            t = time.perf_counter()
            current = prepare_frame(b.rgb, b.depth_m, b.camera)
            prepare_ms = (time.perf_counter() - t) * 1e3
            result = estimate_motion_between(previous, current)
            times.append((time.perf_counter() - t) * 1e3)
            previous = current
            pairs.append(_pair(i, result, poses, prepare_ms))
    return {"ms_per_pair_median": round(statistics.median(times), 1),
            "ms_per_pair_uncached_median": round(statistics.median(uncached), 1),
            "repeats": ODOMETRY_REPEATS, "pairs": pairs}


def _pair(i: int, result: Any, poses: list[np.ndarray], prepare_ms: float) -> dict[str, Any]:
    from recon3d_ros.reconstruction.poses import pose_error

    gt = np.linalg.inv(poses[i]) @ poses[i + 1]
    cm, deg = pose_error(result.pose, gt)
    motion_cm, motion_deg = pose_error(np.eye(4), gt)
    return {
        "pair": f"{i}-{i + 1}", "ok": result.ok, "error_cm": round(cm * 100, 2),
        "error_deg": round(deg, 2), "motion_cm": round(motion_cm * 100, 1),
        "motion_deg": round(motion_deg, 1), "fitness": round(result.fitness, 2),
        "inliers": result.inliers, "reason": result.reason,
        "prepare_ms": round(prepare_ms, 1),
        "pnp_ms": round(result.timings["pnp_ms"], 1),
        "refine_ms": round(result.timings["refine_ms"], 1),
    }


def _accuracy(
    frames: list[Any], poses: list[np.ndarray], depths: list[np.ndarray], gt: np.ndarray
) -> dict[str, float]:
    from recon3d_ros.reconstruction.metrics import surface_metrics
    from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap

    tsdf_map = TsdfMap(MapOptions(voxel_size=0.02, memory_budget_mb=256, depth_max=8.0))
    for f, T, d in zip(frames, poses, depths):
        tsdf_map.integrate(d, f.camera, T, f.rgb)
    mesh = tsdf_map.extract_mesh()
    if mesh.is_empty:
        return {"error": "empty mesh"}  # type: ignore[dict-item]
    m = surface_metrics(mesh.vertices, gt)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}


def _model_depths(frames: list[Any]) -> list[np.ndarray]:
    from recon3d_ros.inference.loader import load_engine
    from recon3d_ros.inference.pipeline import FrameOptions, FramePipeline

    pipeline = FramePipeline(load_engine("default", device="cpu"), FrameOptions())
    return [pipeline.process(f.rgb, f.camera).depth for f in frames]


def _median_aligned(depth: np.ndarray, gt: np.ndarray) -> np.ndarray:
    both = np.isfinite(depth) & np.isfinite(gt) & (depth > 0) & (gt > 0)
    return depth * np.float32(np.median(gt[both] / depth[both]))


def main() -> None:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="OMP threads (0: Open3D's)")
    parser.add_argument("--no-model", action="store_true", help="skip the default model")
    parser.add_argument("--odometry-only", action="store_true",
                        help="only the odometry figures")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not (SHARED / "redwood" / "intrinsics.json").is_file():
        raise SystemExit(f"{SHARED} not present: the benchmark needs ../shared/data/rgbd")
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "threads": args.threads or "default"}
    redwood = _load("redwood")
    if not args.odometry_only:
        out.update(_fusion_speed(*redwood))
        out["memory"] = _memory()
    out["odometry"] = {}
    out["accuracy"] = {}
    for name in ("redwood", "icl"):
        frames, poses = redwood if name == "redwood" else _load(name)
        out["odometry"][name] = _odometry(name, frames, poses)
        if args.odometry_only:
            continue
        gt = _gt_points(frames, poses)
        acc = {"gt_depth": _accuracy(frames, poses, [f.depth_m for f in frames], gt)}
        if not args.no_model:
            depths = _model_depths(frames)
            acc["model_raw"] = _accuracy(frames, poses, depths, gt)
            aligned = [_median_aligned(d, f.depth_m) for d, f in zip(depths, frames)]
            acc["model_median_aligned"] = _accuracy(frames, poses, aligned, gt)
        out["accuracy"][name] = acc
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
