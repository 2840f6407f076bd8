"""Does the fusion node keep up? Redwood depth + poses replayed at 15 Hz over real DDS (JSON).

Starts ``fusion_node`` as its own process (``python -m recon3d_ros.fusion_node`` with
``config/fusion.yaml``, own ROS_DOMAIN_ID, LOCALHOST discovery) at ``--voxel`` (5 cm) with
``mesh_rate`` ``--mesh-rate`` (2 Hz), and replays ``../shared/data/rgbd/redwood`` (colour,
depth 32FC1, camera_info and its ``trajectory.log`` poses as geometry_msgs/PoseStamped, all
reliable) at ``--rate`` Hz for ``--seconds`` (or ``--minutes``). Redwood has 5 frames, so the
replay loops over them; each pass is moved ``--walk`` metres along the world x axis (a camera
walking down a corridor), so the map keeps reaching new space and ``--budget-mb`` is
reached and must hold: the memory figures show whether it does.

Prints one JSON object: depth frames sent, fused, rejected and dropped (superseded by a newer
frame before the worker took it), integration ms p50/p95 (the node's /diagnostics, over its
last 300 frames), mesh messages received and their rate, the node's RSS at start and end (and
the highest seen), map blocks and memory against the budget (the highest seen).

Run: ``PYTHONPATH=. python benchmarks/fusion_node.py [--seconds 30 | --minutes 10]``
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

from recon3d_ros.demo.harness import configure_ros_environment, NodeProcess, PACKAGE_ROOT

REDWOOD = PACKAGE_ROOT.parent / "shared" / "data" / "rgbd" / "redwood"
FUSION_YAML = PACKAGE_ROOT / "config" / "fusion.yaml"
FRAME_ID = "camera_optical_frame"
MAP_FRAME = "map"


class FusionProcess(NodeProcess):
    """``python -m recon3d_ros.fusion_node`` with config/fusion.yaml and ``params``."""

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "recon3d_ros.fusion_node", "--ros-args",
               "--params-file", str(FUSION_YAML)]
        for name, value in self.params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            cmd += ["-p", f"{name}:={text}"]
        return cmd


def _quaternion(R: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix (w >= 0)."""
    w = np.sqrt(max(0.0, 1.0 + np.trace(R))) / 2.0
    x = np.copysign(np.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    return float(x), float(y), float(z), float(w)


class Replay:
    """The camera driver + odometry side, and the mesh / diagnostics consumer."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import Marker

        rclpy.init()
        self.node = rclpy.create_node("recon3d_fusion_replay")
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.color = self.node.create_publisher(Image, "image", reliable)
        self.info = self.node.create_publisher(CameraInfo, "depth/camera_info", reliable)
        self.depth = self.node.create_publisher(Image, "depth/image", reliable)
        self.pose = self.node.create_publisher(
            PoseStamped, "pose", QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        )
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._lock = threading.Lock()
        self.mesh_times: list[float] = []
        self.mesh_bytes = 0
        self.diagnostics: dict[str, str] = {}
        self._subs = [
            # raw: rviz2 reads the Marker in C++; rclpy would build a Python Point per corner
            # (seconds per 300k-triangle mesh), on the node's cores, and the figure would be
            # this replay's speed instead of the node's.
            self.node.create_subscription(Marker, "mesh", self._on_mesh, latched, raw=True),
            self.node.create_subscription(
                DiagnosticArray, "/diagnostics", self._on_diagnostics, 10
            ),
        ]
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutdown race
                if self._running:
                    raise
                return

    def _on_mesh(self, msg: bytes) -> None:
        with self._lock:
            self.mesh_times.append(time.monotonic())
            self.mesh_bytes = len(msg)

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if "fusion_node" in status.name:
                with self._lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    def diag(self) -> dict[str, str]:
        with self._lock:
            return dict(self.diagnostics)

    def connected(self) -> bool:
        pubs = (self.color, self.info, self.depth, self.pose)
        return all(p.get_subscription_count() > 0 for p in pubs) and bool(self.diag())

    def close(self) -> None:
        import rclpy

        self._running = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def _frame_messages(frames: list[Any]) -> list[tuple[Any, Any, Any]]:
    """Colour, camera_info and depth messages of each frame, built once (stamps set later)."""
    from std_msgs.msg import Header

    from recon3d_ros.ros.conversions import (
        array_to_image_msg,
        camera_to_info_msg,
        depth_to_image_msg,
    )

    header = Header(frame_id=FRAME_ID)
    out = []
    for f in frames:
        out.append((
            array_to_image_msg(np.ascontiguousarray(f.rgb), "rgb8", header),
            camera_to_info_msg(f.camera, header),
            depth_to_image_msg(f.depth_m, header),
        ))
    return out


def _pose_message(T: np.ndarray, stamp: Any) -> Any:
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = MAP_FRAME
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in T[:3, 3])
    o.x, o.y, o.z, o.w = _quaternion(T[:3, :3])
    return msg


def _number(values: dict[str, str], key: str) -> float | None:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="replay length")
    parser.add_argument("--minutes", type=float, default=None,
                        help="replay length in minutes (overrides --seconds; the issue: 10)")
    parser.add_argument("--rate", type=float, default=15.0, help="depth frames per second")
    parser.add_argument("--voxel", type=float, default=0.05, help="voxel_size, m")
    parser.add_argument("--mesh-rate", type=float, default=2.0, help="mesh_rate, Hz")
    parser.add_argument("--budget-mb", type=float, default=64.0, help="memory_budget_mb")
    parser.add_argument("--max-triangles", type=int, default=0,
                        help="mesh_max_triangles (0: the whole mesh in every message)")
    parser.add_argument("--clear-radius", type=float, default=0.0, help="clear_radius, m")
    parser.add_argument("--walk", type=float, default=1.0,
                        help="metres each pass over the 5 frames is moved along x")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS of the node (0: Open3D's default)")
    parser.add_argument("--domain-id", type=int, default=None)
    args = parser.parse_args()
    seconds = args.minutes * 60.0 if args.minutes is not None else args.seconds
    if not (REDWOOD / "trajectory.log").is_file():
        print(f"{REDWOOD} is absent: the benchmark needs ../shared/data/rgbd", file=sys.stderr)
        return 1

    from builtin_interfaces.msg import Time

    from recon3d_ros.core.rgbd_io import read_rgbd_frames
    from recon3d_ros.reconstruction.poses import read_trajectory_log

    domain = configure_ros_environment(args.domain_id)
    frames = read_rgbd_frames(REDWOOD)
    poses = read_trajectory_log(REDWOOD / "trajectory.log")
    tmp = Path(tempfile.mkdtemp(prefix="recon3d_fusion_bench_"))
    node = FusionProcess(
        "unused",
        params={
            "pose_source": "pose", "voxel_size": float(args.voxel),
            "mesh_rate": float(args.mesh_rate), "points_rate": 0.0,
            "mesh_max_triangles": int(args.max_triangles),
            "memory_budget_mb": float(args.budget_mb),
            "clear_radius": float(args.clear_radius),
            "input_qos_reliability": "reliable", "diagnostics_period": 0.5,
            "save_directory": str(tmp / "map"),
        },
        log_path=tmp / "fusion_node.log",
    )
    if args.threads:
        node.env["OMP_NUM_THREADS"] = str(args.threads)
    node.start()
    replay = Replay()
    messages = _frame_messages(frames)
    out: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "load_avg_1min_start": os.getloadavg()[0]},
        "config": {"seconds": seconds, "rate_hz": args.rate, "voxel_m": args.voxel,
                   "mesh_rate_hz": args.mesh_rate, "budget_mb": args.budget_mb,
                   "mesh_max_triangles": args.max_triangles,
                   "clear_radius_m": args.clear_radius, "walk_m_per_pass": args.walk,
                   "frame": f"{frames[0].camera.width}x{frames[0].camera.height}",
                   "domain_id": domain},
    }
    sent = 0
    peak = {"rss_mib": 0.0, "map_memory_mb": 0.0, "map_allocated_mb": 0.0, "map_blocks": 0.0}
    try:
        deadline = time.monotonic() + 90.0
        while not replay.connected():
            if not node.alive() or time.monotonic() > deadline:
                print(f"the fusion node did not come up:\n{node.log_tail()}", file=sys.stderr)
                return 1
            time.sleep(0.1)
        rss_start = node.rss_kib() / 1024
        period = 1.0 / args.rate
        t_start = next_sample = time.monotonic()
        while time.monotonic() - t_start < seconds:
            delay = t_start + sent * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            k, walk = sent % len(frames), (sent // len(frames)) * args.walk
            T = poses[k].copy()
            T[0, 3] += walk
            ns = time.time_ns()
            stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
            color, info, depth = messages[k]
            for msg in (color, info, depth):
                msg.header.stamp = stamp
            replay.pose.publish(_pose_message(T, stamp))
            replay.color.publish(color)
            replay.info.publish(info)
            replay.depth.publish(depth)
            sent += 1
            if time.monotonic() >= next_sample:  # once a second
                next_sample += 1.0
                peak["rss_mib"] = max(peak["rss_mib"], node.rss_kib() / 1024)
                d = replay.diag()
                for key in ("map_memory_mb", "map_allocated_mb", "map_blocks"):
                    peak[key] = max(peak[key], _number(d, key) or 0.0)
        elapsed = time.monotonic() - t_start
        time.sleep(2.0)  # the last frames, one more mesh and /diagnostics
        rss_end = node.rss_kib() / 1024
        d = replay.diag()
        for key in ("map_memory_mb", "map_allocated_mb", "map_blocks"):
            peak[key] = max(peak[key], _number(d, key) or 0.0)
        peak["rss_mib"] = max(peak["rss_mib"], rss_end)
        with replay._lock:
            mesh_times = [t for t in replay.mesh_times if t >= t_start]
            mesh_bytes = replay.mesh_bytes
    finally:
        replay.close()
        rc = node.stop()

    span = mesh_times[-1] - mesh_times[0] if len(mesh_times) > 1 else 0.0
    budget = args.budget_mb
    out["frames"] = {
        "sent": sent, "sent_rate_hz": round(sent / elapsed, 2),
        "received": int(_number(d, "frames_received") or 0),
        "fused": int(_number(d, "frames_fused") or 0),
        "rejected": int(_number(d, "frames_rejected") or 0),
        "dropped": int(_number(d, "frames_dropped") or 0),
        "fused_rate_hz": round((_number(d, "frames_fused") or 0) / elapsed, 2),
    }
    out["integration_ms"] = {
        "p50": _number(d, "integrate_ms_p50"), "p95": _number(d, "integrate_ms_p95"),
        "mean": _number(d, "integrate_ms_mean"),
    }
    out["mesh"] = {
        "messages": len(mesh_times),
        "rate_hz": round((len(mesh_times) - 1) / span, 2) if span > 0 else None,
        "extraction_ms_p50": _number(d, "mesh_extract_ms_p50"),
        "extraction_ms_p95": _number(d, "mesh_extract_ms_p95"),
        "extract_marker_publish_ms_p50": _number(d, "mesh_ms_p50"),
        "extract_marker_publish_ms_p95": _number(d, "mesh_ms_p95"),
        "blocks_updated_last": _number(d, "mesh_blocks_updated"),
        "triangles_last": _number(d, "mesh_triangles"),
        "message_mb_last": round(mesh_bytes / 2**20, 1),
    }
    out["node_rss_mib"] = {"start": round(rss_start, 1), "end": round(rss_end, 1),
                           "peak": round(peak["rss_mib"], 1)}
    out["map"] = {
        "blocks_end": int(_number(d, "map_blocks") or 0),
        "blocks_peak": int(peak["map_blocks"]),
        "max_blocks": int(_number(d, "map_max_blocks") or 0),
        "memory_mb_end": _number(d, "map_memory_mb"),
        "memory_mb_peak": peak["map_memory_mb"],
        "allocated_mb_peak": peak["map_allocated_mb"],
        "budget_mb": budget,
        "within_budget": peak["map_allocated_mb"] <= budget,
    }
    out["machine"]["load_avg_1min_end"] = os.getloadavg()[0]
    out["node_exit_code"] = rc
    print(json.dumps(out, indent=1))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
