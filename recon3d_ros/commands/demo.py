"""``recon3d demo``: the depth node end to end on real ROS 2, from a fresh clone.

1. Starts ``depth_node`` as its own process (``python -m recon3d_ros.depth_node``) with the
   chosen model, on a random ``ROS_DOMAIN_ID`` with LOCALHOST discovery.
2. Renders a short synthetic camera sequence (or reads ``--image``/``--video``/``--folder``)
   while the node loads its model.
3. Publishes the frames as ``sensor_msgs/Image`` + ``CameraInfo`` at ``--rate`` Hz (reliable,
   with the node's ``input_qos_reliability: reliable``: best effort loses most 640x480 frames
   on a local Fast DDS) and collects ``depth/image``, ``depth/camera_info`` and ``points``.
4. Writes under ``--out``: ``colormap/*.png`` (RGB | depth | metre legend), ``rgb/`` + ``depth/``
   (16-bit mm) + ``intrinsics.json`` (an RGB-D folder), ``cloud.ply`` (binary, coloured, from
   the received PointCloud2), ``mesh.ply``, ``preview.png`` (the PLY rendered from two side
   views), ``summary.json`` and ``node.log``; prints frames processed, fps and latency.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Any, Iterable

import numpy as np

from recon3d_ros.errors import Recon3dError

DEFAULT_SYNTHETIC_FRAMES = 8
MAX_FILE_FRAMES = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", help="one image (published --frames times, a still camera)")
    source.add_argument("--video", help="a video file")
    source.add_argument(
        "--folder", help="a folder of images (or an RGB-D folder with rgb/ or color/)"
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help=f"frames to publish (synthetic default {DEFAULT_SYNTHETIC_FRAMES}; "
        f"video/folder: all, at most {MAX_FILE_FRAMES}; image: 3)",
    )
    parser.add_argument(
        "--width", type=int, default=320, help="synthetic frame width (default: %(default)s)"
    )
    parser.add_argument(
        "--height", type=int, default=240, help="synthetic frame height (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=16, help="synthetic scene seed (default: %(default)s)"
    )
    parser.add_argument(
        "--intrinsics",
        help="JSON with fx, fy, cx, cy [, width, height] for image/video/folder "
        "input (default: a 60 degree horizontal field of view)",
    )
    parser.add_argument(
        "--max-width", type=int, default=640, help="downscale wider input images to this"
    )
    parser.add_argument(
        "--model", default="default", help="preset name or model file (default: %(default)s)"
    )
    parser.add_argument(
        "--preset",
        default="",
        help="preset whose pre/post-processing describes the --model file (recon3d models)",
    )
    parser.add_argument("--backend", default="auto", help="auto, torch, onnxruntime, tensorrt")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument(
        "--rate", type=float, default=5.0, help="publish rate in Hz (default: %(default)s)"
    )
    parser.add_argument(
        "--cloud-stride", type=int, default=1, help="the node's cloud_stride (default: 1)"
    )
    parser.add_argument("--no-mesh", action="store_true", help="skip mesh.ply")
    parser.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the node to load its model (default: %(default)s)",
    )
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random 1..200)"
    )


def _frames(args: argparse.Namespace) -> list:
    from recon3d_ros.demo import sources

    intrinsics = sources.load_intrinsics(args.intrinsics) if args.intrinsics else None
    if args.image:
        return list(sources.image_frames(args.image, args.frames or 3, intrinsics, args.max_width))
    if args.video:
        return list(
            sources.video_frames(
                args.video, args.frames or MAX_FILE_FRAMES, intrinsics, args.max_width
            )
        )
    if args.folder:
        return list(
            sources.folder_frames(
                args.folder, args.frames or MAX_FILE_FRAMES, intrinsics, args.max_width
            )
        )
    return list(
        sources.synthetic_frames(
            args.frames or DEFAULT_SYNTHETIC_FRAMES, args.width, args.height, seed=args.seed
        )
    )


def _by_stamp(items: Iterable[Any]) -> dict[int, Any]:
    return {item.stamp_ns: item for item in items}


def _warm_up(link: Any, frame: Any, node: Any, timeout: float) -> float:
    """Send the first frame until the node answers (its first inference may be slow)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not node.alive():
            break
        link.publish(frame.rgb, frame.camera, -1)
        wait_until = time.monotonic() + 2.0
        while time.monotonic() < wait_until:
            if link.count("points") > 0 and link.count("depth") > 0:
                return time.monotonic() - t0
            time.sleep(0.02)
    raise Recon3dError(
        f"the depth node did not answer a frame within {timeout:.0f} s; its log:\n"
        f"{node.log_tail()}"
    )


def _ground_truth_accuracy(frames: list, received: list) -> dict[str, float]:
    """Mean depth metrics of the received depth where the source knows the truth (synthetic)."""
    from recon3d_ros.core.metrics import depth_metrics
    from recon3d_ros.errors import DatasetError

    rows = []
    for got in received:
        truth = frames[got.index].depth
        if truth is None or got.depth is None or truth.shape != got.depth.shape:
            continue
        try:
            rows.append(depth_metrics(got.depth, truth))
        except DatasetError:
            continue
    if not rows:
        return {}
    return {
        "abs_rel": float(np.mean([r["abs_rel"] for r in rows])),
        "delta1": float(np.mean([r["delta1"] for r in rows])),
        "rmse": float(np.mean([r["rmse"] for r in rows])),
        "frames": float(len(rows)),
    }


def run(args: argparse.Namespace) -> int:
    from recon3d_ros.demo.harness import (
        CameraLink,
        NodeProcess,
        configure_ros_environment,
        percentiles,
    )

    if args.rate <= 0:
        raise Recon3dError(f"--rate must be > 0 Hz, got {args.rate}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    domain_id = configure_ros_environment(args.domain_id)
    # Reliable input: best effort drops most frames above ~0.5 MB on a local Fast DDS (see
    # CameraLink), and a demo should show every frame it rendered.
    params = {
        "backend": args.backend,
        "device": args.device,
        "cloud_stride": args.cloud_stride,
        "input_qos_reliability": "reliable",
    }
    if args.preset:
        params["preset"] = args.preset
    node = NodeProcess(args.model, params=params, log_path=out / "node.log").start()
    print(
        f"recon3d demo: depth node pid {node.pid} (model {args.model}), "
        f"ROS_DOMAIN_ID={domain_id}, "
        "LOCALHOST discovery",
        flush=True,
    )
    link = None
    try:
        t_render = time.monotonic()
        frames = _frames(args)  # rendered while the node loads its model
        print(
            f"  {len(frames)} frames of {frames[0].rgb.shape[1]}x{frames[0].rgb.shape[0]} ready "
            f"({time.monotonic() - t_render:.1f} s)",
            flush=True,
        )
        from recon3d_ros.ros.conversions import camera_from_info, image_msg_to_array

        link = CameraLink(reliable=True)
        if not link.wait_for_node(args.startup_timeout, node.alive):
            raise Recon3dError(f"the depth node did not come up; its log:\n{node.log_tail()}")
        warm_s = _warm_up(link, frames[0], node, args.startup_timeout)
        time.sleep(0.3)
        for name in ("depth", "depth_info", "points"):
            link.take(name)
        link.sent.clear()
        answered_before = link.count("points")  # warm-up answers are not the sequence's

        period = 1.0 / args.rate
        stamps: list[int] = []
        start = time.monotonic()
        for i, frame in enumerate(frames):
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamps.append(link.publish(frame.rgb, frame.camera, i))
        publish_s = time.monotonic() - start
        # Give the node time for the frames in flight.
        deadline = time.monotonic() + max(5.0, 3 * period)
        while time.monotonic() < deadline and link.count("points") - answered_before < len(frames):
            time.sleep(0.05)
        time.sleep(0.2)
        depth_items = link.take("depth")
        info_items = _by_stamp(link.take("depth_info"))
        point_items = link.take("points")
        clouds = _by_stamp(point_items)
        diagnostics = link.diagnostic_values()
    finally:
        if link is not None:
            link.close()
        node_rc = node.stop()

    from recon3d_ros.demo.outputs import (
        ReceivedFrame,
        write_cloud,
        write_frame_files,
        write_intrinsics,
        write_mesh,
        write_preview,
    )
    from recon3d_ros.demo.visualize import depth_range

    received: list[ReceivedFrame] = []
    index_of = {stamp: i for i, stamp in enumerate(stamps)}
    for item in sorted(depth_items, key=lambda r: r.stamp_ns):
        i = index_of.get(item.stamp_ns)
        if i is None:
            continue
        arr, _ = image_msg_to_array(item.message)
        info = info_items.get(item.stamp_ns)
        cloud = clouds.get(item.stamp_ns)
        received.append(
            ReceivedFrame(
                i,
                frames[i].name,
                frames[i].rgb,
                np.array(arr, dtype=np.float32),
                camera_from_info(info.message) if info is not None else None,
                cloud.message if cloud is not None else None,
            )
        )
    if not received:
        raise Recon3dError(
            f"no depth came back from the node for {len(frames)} frames; its log:\n"
            f"{(out / 'node.log').read_text(errors='replace')[-3000:]}"
        )

    all_depth = np.concatenate([f.depth.reshape(-1) for f in received if f.depth is not None])
    near, far = depth_range(all_depth)
    for frame in received:
        write_frame_files(out, frame, near, far)
    with_camera = [f for f in received if f.camera is not None]
    if with_camera:
        write_intrinsics(out, with_camera[-1].camera, [f.name for f in received])
    with_cloud = [f for f in received if f.cloud is not None]
    summary: dict[str, Any] = {"output": str(out), "ros_domain_id": domain_id, "model": args.model}
    if with_cloud:
        chosen = with_cloud[len(with_cloud) // 2]  # the middle of the walk: a typical view
        summary["cloud_points"] = write_cloud(out / "cloud.ply", chosen.cloud)
        summary["cloud_frame"] = chosen.name
        write_preview(out / "cloud.ply", out / "preview.png")
    if not args.no_mesh and with_camera:
        chosen_mesh = with_camera[len(with_camera) // 2]
        vertices, faces = write_mesh(out / "mesh.ply", chosen_mesh)
        summary.update(mesh_vertices=vertices, mesh_faces=faces)

    accuracy = _ground_truth_accuracy(frames, received)
    if accuracy:
        summary["ground_truth"] = accuracy
    depth_latency = [
        (r.receipt_ns - r.stamp_ns) / 1e6 for r in depth_items if r.stamp_ns in index_of
    ]
    cloud_latency = [
        (r.receipt_ns - r.stamp_ns) / 1e6 for r in point_items if r.stamp_ns in index_of
    ]
    receipts = sorted(r.receipt_ns for r in point_items if r.stamp_ns in index_of)
    fps = (
        (len(receipts) - 1) / ((receipts[-1] - receipts[0]) / 1e9)
        if len(receipts) > 1 and receipts[-1] > receipts[0]
        else float("nan")
    )
    summary.update(
        frames_published=len(frames),
        frames_processed=len(received),
        clouds_received=len(with_cloud),
        frames_dropped=len(frames) - len(received),
        publish_rate_hz=args.rate,
        publish_seconds=publish_s,
        output_fps=fps,
        warmup_seconds=warm_s,
        depth_latency_ms=percentiles(depth_latency),
        points_latency_ms=percentiles(cloud_latency),
        depth_range_m=[near, far],
        node_exit_code=node_rc,
        node_diagnostics=diagnostics,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    lat = summary["points_latency_ms"]
    print(
        f"  processed {len(received)}/{len(frames)} frames ({summary['frames_dropped']} "
        f"dropped) published at {args.rate:g} Hz; output {fps:.1f} fps; stamp-to-receipt "
        f"latency of 'points' p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms (first frame "
        f"warm-up {warm_s:.1f} s)"
    )
    if accuracy:
        print(
            f"  against the synthetic ground truth: abs_rel {accuracy['abs_rel']:.3f}, "
            f"delta1 {accuracy['delta1']:.3f} over {accuracy['frames']:.0f} frames"
        )
    if diagnostics:
        print(
            f"  node: {diagnostics.get('backend')} on {diagnostics.get('device')}, inference "
            f"{diagnostics.get('inference_ms')} ms per frame"
        )
    print(
        f"  depth range {near:.2f}..{far:.2f} m; wrote {out}/colormap/*.png, rgb/, depth/, "
        "intrinsics.json"
        + (
            f", cloud.ply ({summary['cloud_points']} points, frame {summary['cloud_frame']}), "
            "preview.png"
            if with_cloud
            else ""
        )
        + (f", mesh.ply ({summary['mesh_faces']} triangles)" if "mesh_faces" in summary else "")
        + ", summary.json, node.log"
    )
    if with_cloud:
        print(f'  open {out / "cloud.ply"} in MeshLab, CloudCompare or Open3D (preview: '
              f'{out / "preview.png"})')
    sys.stdout.flush()
    return 0
