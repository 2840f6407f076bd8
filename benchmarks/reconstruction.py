"""3D reconstruction figures: fusion speed, map memory, odometry, surface accuracy (JSON).

On the shared RGB-D frames (``../shared/data/rgbd``: redwood and icl, whose poses are
accurate), prints one JSON object:

* ``integration_ms``: ms per 640x480 frame fused into the TSDF at 1, 2 and 5 cm voxels
  (median over redwood's frames, after one warm-up pass), and ``mesh_ms`` per extraction;
* ``memory``: MiB per 1000 voxel blocks (computed, and measured as resident memory);
* ``odometry``: ms per pair and error (cm, degrees) against ground truth per consecutive pair;
* ``accuracy``: accuracy, completeness, Chamfer and F-score at 2 and 5 cm of the mesh fused
  at 2 cm, against the ground-truth depth back-projected with the ground-truth poses, for
  ground-truth depth, the default model's depth (raw) and that depth scaled per frame to the
  ground truth's median (what ``scale_mode: sparse`` does with dense references).

Run: ``PYTHONPATH=. python benchmarks/reconstruction.py [--threads 2] [--no-model]``
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
    from recon3d_ros.reconstruction.odometry import estimate_motion
    from recon3d_ros.reconstruction.poses import pose_error

    a = frames[0]
    estimate_motion(a.rgb, a.depth_m, a.rgb, a.depth_m, a.camera)  # warm-up
    pairs, times = [], []
    for i in range(len(frames) - 1):
        a, b = frames[i], frames[i + 1]
        t = time.perf_counter()
        result = estimate_motion(a.rgb, a.depth_m, b.rgb, b.depth_m, a.camera)
        times.append((time.perf_counter() - t) * 1e3)
        gt = np.linalg.inv(poses[i]) @ poses[i + 1]
        cm, deg = pose_error(result.pose, gt)
        motion_cm, motion_deg = pose_error(np.eye(4), gt)
        pairs.append({
            "pair": f"{i}-{i + 1}", "ok": result.ok, "error_cm": round(cm * 100, 2),
            "error_deg": round(deg, 2), "motion_cm": round(motion_cm * 100, 1),
            "motion_deg": round(motion_deg, 1), "fitness": round(result.fitness, 2),
            "inliers": result.inliers, "reason": result.reason,
            "pnp_ms": round(result.timings["pnp_ms"], 1),
            "refine_ms": round(result.timings["refine_ms"], 1),
        })
    return {"ms_per_pair_median": round(statistics.median(times), 1), "pairs": pairs}


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
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not (SHARED / "redwood" / "intrinsics.json").is_file():
        raise SystemExit(f"{SHARED} not present: the benchmark needs ../shared/data/rgbd")
    out: dict[str, Any] = {"cpu_count": os.cpu_count(), "threads": args.threads or "default"}
    redwood = _load("redwood")
    out.update(_fusion_speed(*redwood))
    out["memory"] = _memory()
    out["odometry"] = {}
    out["accuracy"] = {}
    for name in ("redwood", "icl"):
        frames, poses = redwood if name == "redwood" else _load(name)
        out["odometry"][name] = _odometry(name, frames, poses)
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
