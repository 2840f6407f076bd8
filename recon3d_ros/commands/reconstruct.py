"""``recon3d reconstruct SOURCE``: fuse a recording into a TSDF map, a mesh and a preview.

SOURCE is a rosbag2 (mcap or sqlite3), a video, an image folder or an RGB-D folder
(:mod:`recon3d_ros.reconstruction.sources`). Depth comes from the network (the default model or
any ``--model``/``--preset``, run through the node's :class:`FramePipeline` with the node's
parameters: ``--params-file`` and ``-p`` as for ``recon3d bag``, e.g. ``-p scale_mode:=fixed``)
or, with ``--depth recorded``, from the source's own depth. Poses come from the source (TF or
an odometry topic of a bag, an RGB-D folder's trajectory), from ``--poses FILE.tum``, or are
estimated from the images (``--poses estimate``: ORB + PnP, refined by RGB-D odometry).
Frames without a pose are counted and reported, never fused with a guess.

``--out`` receives ``mesh.ply`` (binary, coloured), ``surface.ply`` (the surface points),
``map/`` (:meth:`TsdfMap.save` and the last fused frame, ``odometry_anchor.npz``;
``--resume map/`` continues it, estimated poses from that frame), ``trajectory.tum`` (the
poses used), ``preview.png`` (the mesh from two viewpoints) and ``summary.json`` (frames fused
and rejected with reasons, ms per stage, map memory). A frame counter runs on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recon3d_ros.commands.options import add_model_options, add_node_param_options, node_values
from recon3d_ros.errors import CameraModelError, ConfigError, Recon3dError

DEPTH_CHOICES = ("network", "recorded")
SCALE_MODES = ("none", "map")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", type=Path, help="rosbag2 (folder or .mcap/.db3), video, image or RGB-D folder"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/reconstruct"),
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--depth", default="network", choices=DEPTH_CHOICES,
        help="depth from the network or the source's recorded depth (default: %(default)s)",
    )
    add_model_options(parser)
    add_node_param_options(parser, "for the network path")
    parser.add_argument(
        "--poses", default="auto", metavar="auto|source|estimate|FILE.tum",
        help="camera poses: the source's (bag TF/odometry, RGB-D folder trajectory), "
        "estimated from the images, or a TUM file; auto = the source's if it has them, else "
        "estimate (default: %(default)s)",
    )
    parser.add_argument(
        "--voxel", type=float, default=0.02, help="voxel size in metres (default: %(default)s)"
    )
    parser.add_argument(
        "--depth-max", type=float, default=5.0,
        help="depth beyond this (m) is not fused (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-budget-mb", type=float, default=512.0,
        help="voxel block memory budget in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--map-device", default="cpu", help="device of the TSDF map: cpu or cuda[:N]"
    )
    parser.add_argument(
        "--scale-mode", default="none", choices=SCALE_MODES,
        help="'map' rescales each depth to agree with the map's rendered depth before fusing "
        "(monocular depth drifts in scale); 'none' fuses depth as it is (default: %(default)s)",
    )
    parser.add_argument(
        "--sparse-reference", type=int, default=0, metavar="N",
        help="feed N pixels of the source's recorded depth per frame to the network's metric "
        "scale (the node's scale_mode sparse, set unless -p gives scale_mode): a relative "
        "model aligned to sparse ground truth, e.g. a LiDAR's; 0 = off (default)",
    )
    parser.add_argument("--resume", type=Path, default=None, help="map folder to continue")
    bag = parser.add_argument_group("rosbag2 sources")
    bag.add_argument("--image-topic", default="", help="image or compressed image topic")
    bag.add_argument("--camera-info-topic", default="", help="its CameraInfo topic")
    bag.add_argument("--depth-topic", default="", help="recorded depth topic (--depth recorded)")
    bag.add_argument(
        "--pose-topic", default="",
        help="nav_msgs/Odometry or geometry_msgs/PoseStamped topic instead of /tf",
    )
    bag.add_argument("--map-frame", default="map", help="TF frame of the map (default: map)")
    bag.add_argument(
        "--pose-tolerance", type=float, default=0.05,
        help="largest gap in seconds between a frame and its pose (default: %(default)s)",
    )
    files = parser.add_argument_group("videos and image folders")
    files.add_argument("--intrinsics", type=Path, default=None, help="intrinsics.json (fx ...)")
    files.add_argument(
        "--hfov", type=float, default=60.0,
        help="horizontal field of view in degrees when there is no calibration",
    )
    files.add_argument(
        "--fps", type=float, default=10.0, help="frame rate of an image folder's stamps"
    )
    files.add_argument(
        "--y-up-poses", action="store_true",
        help="an RGB-D folder's poses are of a y-up camera (ICL-NUIM): use T @ diag(1,-1,1,1)",
    )
    parser.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after n frames (0 = all)")
    parser.add_argument("--quiet", action="store_true", help="no progress counter on stderr")


class Progress:
    """A one-line frame counter on stderr, rewritten in place (no dependency)."""

    def __init__(self, total: int | None, quiet: bool) -> None:
        self.total, self.quiet, self.started = total, quiet, time.perf_counter()

    def update(self, done: int, fused: int, rejected: int) -> None:
        if self.quiet:
            return
        total = f"/{self.total}" if self.total else ""
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        print(
            f"\rframe {done}{total}  fused {fused}  rejected {rejected}  {rate:.1f} frames/s",
            end="", file=sys.stderr, flush=True,
        )

    def close(self) -> None:
        if not self.quiet:
            print(file=sys.stderr, flush=True)


def _open(args: argparse.Namespace) -> Any:
    from recon3d_ros.reconstruction.sources import BagOptions, open_source

    if args.stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {args.stride}")
    mode = args.poses
    tum = None if mode in ("auto", "source", "estimate") else Path(mode)
    bag = BagOptions(
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        depth_topic=args.depth_topic,
        read_depth=args.depth == "recorded" or args.sparse_reference > 0,
        pose_topic=args.pose_topic,
        map_frame=args.map_frame,
        use_tf=mode in ("auto", "source"),
        pose_tolerance_s=args.pose_tolerance,
    )
    source = open_source(
        args.source, bag=bag, intrinsics=args.intrinsics, hfov_deg=args.hfov, fps=args.fps,
        tum_poses=tum, pose_tolerance_s=args.pose_tolerance, y_up_poses=args.y_up_poses,
    )
    if args.depth == "recorded" and not source.has_depth:
        raise ConfigError(
            f"{args.source} ({source.kind}) has no recorded depth; use --depth network"
        )
    if mode == "source" and not source.has_poses:
        raise ConfigError(
            f"{args.source} ({source.kind}) has no poses (no /tf, pose topic or trajectory); "
            "use --poses estimate or --poses FILE.tum"
        )
    estimate = mode == "estimate" or (mode == "auto" and not source.has_poses)
    return source, estimate


def _pipeline(args: argparse.Namespace) -> Any:
    """Build the node's frame path for the network depth (None with --depth recorded)."""
    if args.depth == "recorded":
        return None
    from recon3d_ros.ros.params import settings_from_values

    values = node_values(args)
    if args.sparse_reference > 0:
        values.setdefault("scale_mode", "sparse")
    return settings_from_values(values).build_pipeline()


def sparse_reference(
    depth: npt.NDArray[np.float32], count: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """Keep ``count`` random valid pixels of ``depth`` (NaN elsewhere): a sparse reference."""
    out = np.full(depth.shape, np.nan, np.float32)
    valid = np.flatnonzero(np.isfinite(depth) & (depth > 0))
    if valid.size:
        keep = rng.choice(valid, size=min(count, valid.size), replace=False)
        out.reshape(-1)[keep] = depth.reshape(-1)[keep]
    return out


def _down_direction(poses: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64] | None:
    """World direction of the cameras' image-down axis, averaged: what the preview draws down.

    Hand-held and robot cameras are held about upright, so this is close to gravity whatever
    the world frame's convention (z-up ROS map, y-up Redwood, a first camera's optical frame).
    """
    if not poses:
        return None
    down = np.mean([np.asarray(p)[:3, 1] for p in poses], axis=0)
    norm = float(np.linalg.norm(down))
    return down / norm if norm > 1e-6 else None


def reconstruct(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole reconstruction; return the summary (also written to summary.json)."""
    from recon3d_ros.reconstruction.fusion import ANCHOR_FILE, Reconstructor
    from recon3d_ros.reconstruction.mesh_io import (
        render_preview,
        write_mesh_ply,
        write_points_ply,
    )
    from recon3d_ros.reconstruction.poses import write_tum
    from recon3d_ros.reconstruction.sources import undistort_frame
    from recon3d_ros.reconstruction.tsdf import MapOptions, TsdfMap

    source, estimate = _open(args)
    if args.sparse_reference > 0 and (args.depth != "network" or not source.has_depth):
        raise ConfigError(
            "--sparse-reference needs --depth network and a source with recorded depth (an "
            "RGB-D folder, or a bag with --depth-topic)"
        )
    pipeline = _pipeline(args)
    rng = np.random.default_rng(0)  # the same reference pixels on every run
    if args.resume is not None:
        loaded = TsdfMap.load(args.resume, device=args.map_device)
        options = loaded.options
    else:
        loaded = None
        options = MapOptions(
            voxel_size=args.voxel, depth_max=args.depth_max,
            memory_budget_mb=args.memory_budget_mb, device=args.map_device,
        )
    reconstructor = Reconstructor(
        options, scale_mode=args.scale_mode, odometry=estimate, tsdf_map=loaded
    )
    if args.resume is not None:
        anchored = reconstructor.load_anchor(args.resume)
        if estimate and not anchored and reconstructor.map.block_count > 0:
            # Without it no new frame could be placed in the map's frame: each would be refused.
            raise ConfigError(
                f"--resume {args.resume} with estimated poses needs the map's last frame "
                f"({ANCHOR_FILE}, saved with the map by recon3d reconstruct and the fusion "
                "node's ~/save_map since this version), and that map has none; give poses "
                "(--poses source or a TUM file) or start a new map"
            )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    total = len(source)
    limit = args.max_frames if args.max_frames > 0 else None
    expected = -(-total // args.stride) if total else None
    progress = Progress(min(expected, limit) if expected and limit else expected or limit,
                        args.quiet)
    skipped: Counter[str] = Counter()  # frames refused here, before fusion
    network_ms = 0.0
    fused_poses: list[npt.NDArray[np.float64]] = []
    fused_stamps: list[float] = []
    used = fused = 0
    for index, frame in enumerate(source):
        if index % args.stride:
            continue
        if limit is not None and used >= limit:
            break
        used += 1
        try:
            # Undistorted once here for both depth paths: recorded depth must fit the pinhole
            # camera fusion projects with, and the network then sees what the node would.
            frame = undistort_frame(frame)
        except CameraModelError as exc:
            skipped[f"cannot rectify: {type(exc).__name__}"] += 1
            progress.update(used, fused, used - fused)
            continue
        if pipeline is None:
            if frame.depth_m is None:
                skipped[f"no recorded depth ({frame.note or 'none matched'})"] += 1
                progress.update(used, fused, used - fused)
                continue
            depth, camera, rgb = frame.depth_m, frame.camera, frame.rgb
        else:
            reference = None
            if args.sparse_reference > 0 and frame.depth_m is not None:
                from recon3d_ros.inference.pipeline import ScaleReference

                reference = ScaleReference(
                    depth=sparse_reference(frame.depth_m, args.sparse_reference, rng)
                )
            start = time.perf_counter()
            result = pipeline.process(frame.rgb, frame.camera, reference)
            network_ms += (time.perf_counter() - start) * 1e3
            depth, camera = result.depth, result.camera
            rgb = result.rgb
        pose = None if estimate else frame.pose
        outcome = reconstructor.add_frame(rgb, depth, camera, pose, frame.stamp_ns)
        if outcome.fused:
            fused += 1
            if outcome.pose is not None:
                fused_poses.append(np.asarray(outcome.pose))
                fused_stamps.append(frame.stamp_ns / 1e9)
        progress.update(used, fused, used - fused)
    progress.close()

    timings: dict[str, float] = {}
    start = time.perf_counter()
    mesh = reconstructor.map.extract_mesh()
    timings["mesh_extraction_ms"] = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    points, colours = reconstructor.map.extract_points()
    timings["point_extraction_ms"] = (time.perf_counter() - start) * 1e3
    summary: dict[str, Any] = {
        "source": source.describe(),
        "depth": args.depth,
        "model": None if pipeline is None else str(args.model),
        "poses": "estimated" if estimate else ("tum file" if args.poses not in (
            "auto", "source") else "source"),
        "frames_read": used,
        "frames_skipped_before_fusion": dict(skipped),
        "source_dropped": dict(source.dropped),
        "pose_lookup_failures": dict(source.pose_failures),
        "resumed_from": str(args.resume) if args.resume is not None else None,
    }
    summary.update(reconstructor.summary())
    summary["rejected_total"] = int(summary["rejected"]) + int(sum(skipped.values()))
    summary["ms_per_frame_network"] = (
        round(network_ms / max(used, 1), 2) if pipeline is not None else None
    )
    summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
    summary["mesh"] = {"vertices": int(mesh.vertices.shape[0]),
                       "triangles": int(mesh.triangles.shape[0])}
    summary["surface_points"] = int(points.shape[0])
    outputs: dict[str, str] = {}
    start = time.perf_counter()
    reconstructor.map.save(out / "map")
    reconstructor.save_anchor(out / "map")  # for --resume with estimated poses
    outputs["map"] = str(out / "map")
    if not mesh.is_empty:
        write_mesh_ply(out / "mesh.ply", mesh)
        outputs["mesh"] = str(out / "mesh.ply")
        render_preview(mesh, out / "preview.png", down=_down_direction(fused_poses))
        outputs["preview"] = str(out / "preview.png")
    if points.shape[0]:
        write_points_ply(out / "surface.ply", points, colours)
        outputs["surface"] = str(out / "surface.ply")
    if fused_poses:  # the camera path in the map's frame, as used (estimated or given)
        write_tum(out / "trajectory.tum", zip(fused_stamps, fused_poses))
        outputs["trajectory"] = str(out / "trajectory.tum")
    summary["timings"]["write_ms"] = round((time.perf_counter() - start) * 1e3, 2)
    summary["outputs"] = outputs
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    return summary


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def run(args: argparse.Namespace) -> int:
    summary = reconstruct(args)
    mesh = summary["mesh"]
    print(
        f"fused {summary['fused']} of {summary['frames_read']} frames; mesh "
        f"{mesh['vertices']} vertices, {mesh['triangles']} triangles; wrote {args.out}"
    )
    if mesh["triangles"] == 0:
        raise Recon3dError(
            "the map has no surface: no frame was fused (see summary.json for the reasons: "
            "frames without a pose, rejected odometry, no depth)"
        )
    return 0
