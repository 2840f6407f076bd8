"""One ``recon3d demo`` session: the depth node end to end on real ROS 2.

1. Starts ``depth_node`` as its own process (``python -m recon3d_ros.depth_node``) with the
   chosen model, on its own ``ROS_DOMAIN_ID`` with LOCALHOST discovery.
2. Renders a short synthetic camera sequence (or reads an image, video or folder) while the
   node loads its model.
3. Publishes the frames as ``sensor_msgs/Image`` + ``CameraInfo`` at ``rate`` Hz (reliable,
   with the node's ``input_qos_reliability: reliable``: best effort loses most 640x480 frames
   on a local Fast DDS) and collects ``depth/image``, ``depth/camera_info`` and ``points``.
4. Writes the files :mod:`.outputs` makes from what came back, ``summary.json`` and
   ``node.log``, and prints frames processed, fps and latency.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import sys
import time
from typing import Any, Iterable, TYPE_CHECKING

import numpy as np

from recon3d_ros.core.rgbd_io import read_intrinsics
from recon3d_ros.demo import sources
from recon3d_ros.demo.outputs import ReceivedFrame
from recon3d_ros.demo.sources import Frame
from recon3d_ros.errors import DatasetError, Recon3dError

if TYPE_CHECKING:
    from recon3d_ros.demo.harness import CameraLink, NodeProcess, Received

__all__ = [
    "DEFAULT_SYNTHETIC_FRAMES",
    "MAX_FILE_FRAMES",
    "DemoOptions",
    "FrameSource",
    "ground_truth_accuracy",
    "run_demo",
]

DEFAULT_SYNTHETIC_FRAMES = 8
MAX_FILE_FRAMES = 300
DEFAULT_IMAGE_FRAMES = 3


@dataclass(frozen=True)
class FrameSource:
    """Where the frames come from: ``image``, ``video``, ``folder`` or (none) synthetic."""

    image: str | None = None
    video: str | None = None
    folder: str | None = None
    count: int | None = None  # None: each source's own default
    width: int = 320  # synthetic frame size
    height: int = 240
    seed: int = 16
    intrinsics: str | None = None  # JSON for image/video/folder input
    max_width: int | None = 640

    def load(self) -> list[Frame]:
        """All frames of this source, in order."""
        intrinsics = read_intrinsics(self.intrinsics) if self.intrinsics else None
        if self.image:
            count = self.count or DEFAULT_IMAGE_FRAMES
            return list(sources.image_frames(self.image, count, intrinsics, self.max_width))
        if self.video:
            limit = self.count or MAX_FILE_FRAMES
            return list(sources.video_frames(self.video, limit, intrinsics, self.max_width))
        if self.folder:
            limit = self.count or MAX_FILE_FRAMES
            return list(sources.folder_frames(self.folder, limit, intrinsics, self.max_width))
        from recon3d_ros.demo.trajectory import render_sequence

        count = self.count or DEFAULT_SYNTHETIC_FRAMES
        return list(render_sequence(count, self.width, self.height, seed=self.seed))


@dataclass(frozen=True)
class DemoOptions:
    """How the node runs and what the session writes."""

    model: str = "default"
    preset: str = ""
    backend: str = "auto"
    device: str = "auto"
    rate_hz: float = 5.0
    cloud_stride: int = 1
    mesh: bool = True
    out: Path = Path("out/demo")
    startup_timeout_s: float = 120.0
    domain_id: int | None = None  # None: a random one

    def node_params(self) -> dict[str, Any]:
        """Give the node's parameters for this session."""
        # Reliable input: best effort drops most frames above ~0.5 MB on a local Fast DDS (see
        # CameraLink), and a demo should show every frame it rendered.
        params: dict[str, Any] = {
            "backend": self.backend,
            "device": self.device,
            "cloud_stride": self.cloud_stride,
            "input_qos_reliability": "reliable",
        }
        if self.preset:
            params["preset"] = self.preset
        return params


@dataclass
class _Exchange:
    """What came back from the node for the published frames."""

    stamps: list[int]
    depth_items: list[Received]
    info_items: dict[int, Received]
    point_items: list[Received]
    diagnostics: dict[str, str]
    publish_s: float
    warm_s: float
    node_rc: int | None


def _by_stamp(items: Iterable[Received]) -> dict[int, Received]:
    return {item.stamp_ns: item for item in items}


def _warm_up(link: CameraLink, frame: Frame, node: NodeProcess, timeout: float) -> float:
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


def ground_truth_accuracy(frames: list[Frame], received: list[ReceivedFrame]) -> dict[str, float]:
    """Mean depth metrics of the received depth where the source knows the truth (synthetic)."""
    from recon3d_ros.core.metrics import depth_metrics

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


def _exchange(source: FrameSource, options: DemoOptions) -> tuple[list[Frame], int, _Exchange]:
    """Start the node, publish the frames at the rate and collect its answers; stop the node."""
    from recon3d_ros.demo.harness import CameraLink, configure_ros_environment, NodeProcess

    out = options.out
    domain_id = configure_ros_environment(options.domain_id)
    node = NodeProcess(
        options.model, params=options.node_params(), log_path=out / "node.log"
    ).start()
    print(
        f"recon3d demo: depth node pid {node.pid} (model {options.model}), "
        f"ROS_DOMAIN_ID={domain_id}, "
        "LOCALHOST discovery",
        flush=True,
    )
    link = None
    try:
        t_render = time.monotonic()
        frames = source.load()  # rendered while the node loads its model
        print(
            f"  {len(frames)} frames of {frames[0].rgb.shape[1]}x{frames[0].rgb.shape[0]} ready "
            f"({time.monotonic() - t_render:.1f} s)",
            flush=True,
        )
        link = CameraLink(reliable=True)
        if not link.wait_for_node(options.startup_timeout_s, node.alive):
            raise Recon3dError(f"the depth node did not come up; its log:\n{node.log_tail()}")
        warm_s = _warm_up(link, frames[0], node, options.startup_timeout_s)
        time.sleep(0.3)
        for name in ("depth", "depth_info", "points"):
            link.take(name)
        link.sent.clear()
        answered_before = link.count("points")  # warm-up answers are not the sequence's

        period = 1.0 / options.rate_hz
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
        diagnostics = link.diagnostic_values()
    finally:
        if link is not None:
            link.close()
        node_rc = node.stop()
    exchange = _Exchange(
        stamps, depth_items, info_items, point_items, diagnostics, publish_s, warm_s, node_rc
    )
    return frames, domain_id, exchange


def _received_frames(frames: list[Frame], got: _Exchange) -> list[ReceivedFrame]:
    """Pair each depth image that came back with its frame, camera_info and cloud."""
    from recon3d_ros.ros.conversions import camera_from_info, image_msg_to_array

    clouds = _by_stamp(got.point_items)
    index_of = {stamp: i for i, stamp in enumerate(got.stamps)}
    received: list[ReceivedFrame] = []
    for item in sorted(got.depth_items, key=lambda r: r.stamp_ns):
        i = index_of.get(item.stamp_ns)
        if i is None:
            continue
        arr, _ = image_msg_to_array(item.message)
        info = got.info_items.get(item.stamp_ns)
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
    return received


def _write_files(
    out: Path, received: list[ReceivedFrame], mesh: bool
) -> tuple[dict[str, Any], tuple[float, float]]:
    """Write the frame files, intrinsics.json, cloud, preview and mesh.

    Returns what they hold (point, vertex and face counts, the cloud's frame) and the
    colormaps' depth range.
    """
    from recon3d_ros.demo.outputs import (
        write_cloud,
        write_frame_files,
        write_intrinsics,
        write_mesh,
        write_preview,
    )
    from recon3d_ros.demo.visualize import depth_range

    all_depth = np.concatenate([f.depth.reshape(-1) for f in received if f.depth is not None])
    near, far = depth_range(all_depth)
    for frame in received:
        write_frame_files(out, frame, near, far)
    cameras = [f.camera for f in received if f.camera is not None]
    if cameras:
        write_intrinsics(out, cameras[-1], [f.name for f in received])
    with_camera = [f for f in received if f.camera is not None]
    with_cloud = [f for f in received if f.cloud is not None]
    written: dict[str, Any] = {}
    if with_cloud:
        chosen = with_cloud[len(with_cloud) // 2]  # the middle of the walk: a typical view
        written["cloud_points"] = write_cloud(out / "cloud.ply", chosen.cloud)
        written["cloud_frame"] = chosen.name
        write_preview(out / "cloud.ply", out / "preview.png")
    if mesh and with_camera:
        vertices, faces = write_mesh(out / "mesh.ply", with_camera[len(with_camera) // 2])
        written.update(mesh_vertices=vertices, mesh_faces=faces)
    return written, (near, far)


def _timing(got: _Exchange) -> dict[str, Any]:
    """Output fps and stamp-to-receipt latencies of the sequence's answers."""
    from recon3d_ros.demo.harness import percentiles

    sent = set(got.stamps)
    depth = [r for r in got.depth_items if r.stamp_ns in sent]
    points = [r for r in got.point_items if r.stamp_ns in sent]
    receipts = sorted(r.receipt_ns for r in points)
    fps = (
        (len(receipts) - 1) / ((receipts[-1] - receipts[0]) / 1e9)
        if len(receipts) > 1 and receipts[-1] > receipts[0]
        else float("nan")
    )
    return {
        "output_fps": fps,
        "depth_latency_ms": percentiles([(r.receipt_ns - r.stamp_ns) / 1e6 for r in depth]),
        "points_latency_ms": percentiles([(r.receipt_ns - r.stamp_ns) / 1e6 for r in points]),
    }


def _print_report(summary: dict[str, Any], out: Path) -> None:
    lat = summary["points_latency_ms"]
    near, far = summary["depth_range_m"]
    warm_s = summary["warmup_seconds"]
    print(
        f"  processed {summary['frames_processed']}/{summary['frames_published']} frames "
        f"({summary['frames_dropped']} dropped) published at {summary['publish_rate_hz']:g} Hz; "
        f"output {summary['output_fps']:.1f} fps; stamp-to-receipt latency of 'points' p50 "
        f"{lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms (first frame warm-up {warm_s:.1f} s)"
    )
    accuracy = summary.get("ground_truth")
    if accuracy:
        print(
            f"  against the synthetic ground truth: abs_rel {accuracy['abs_rel']:.3f}, "
            f"delta1 {accuracy['delta1']:.3f} over {accuracy['frames']:.0f} frames"
        )
    diagnostics = summary["node_diagnostics"]
    if diagnostics:
        print(
            f"  node: {diagnostics.get('backend')} on {diagnostics.get('device')}, inference "
            f"{diagnostics.get('inference_ms')} ms per frame"
        )
    with_cloud = "cloud_points" in summary
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


def run_demo(source: FrameSource, options: DemoOptions) -> dict[str, Any]:
    """Run one session; write its files under ``options.out``; return and print its summary."""
    if options.rate_hz <= 0:
        raise Recon3dError(f"--rate must be > 0 Hz, got {options.rate_hz}")
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    frames, domain_id, got = _exchange(source, options)
    received = _received_frames(frames, got)
    if not received:
        raise Recon3dError(
            f"no depth came back from the node for {len(frames)} frames; its log:\n"
            f"{(out / 'node.log').read_text(errors='replace')[-3000:]}"
        )
    written, (near, far) = _write_files(out, received, options.mesh)
    summary: dict[str, Any] = {
        "output": str(out),
        "ros_domain_id": domain_id,
        "model": options.model,
        **written,
    }
    accuracy = ground_truth_accuracy(frames, received)
    if accuracy:
        summary["ground_truth"] = accuracy
    timing = _timing(got)
    summary.update(
        frames_published=len(frames),
        frames_processed=len(received),
        clouds_received=sum(1 for f in received if f.cloud is not None),
        frames_dropped=len(frames) - len(received),
        publish_rate_hz=options.rate_hz,
        publish_seconds=got.publish_s,
        output_fps=timing["output_fps"],
        warmup_seconds=got.warm_s,
        depth_latency_ms=timing["depth_latency_ms"],
        points_latency_ms=timing["points_latency_ms"],
        depth_range_m=[near, far],
        node_exit_code=got.node_rc,
        node_diagnostics=got.diagnostics,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    _print_report(summary, out)
    return summary
