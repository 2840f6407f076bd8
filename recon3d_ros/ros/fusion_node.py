"""``fusion_node``: fuse depth frames with their poses into a TSDF map, a mesh and a cloud.

Topics (relative, so launch files remap them; names in :mod:`recon3d_ros.ros.fusion_params`):

* in ``depth/image`` (32FC1 metres or 16UC1 millimetres, NaN/0 invalid) and
  ``depth/camera_info``: the depth node's outputs or any RGB-D driver's; ``image`` (optional,
  ``use_color``), the colour image with the depth's stamp (resized to the depth's size:
  registered to the depth, as the depth node's input is). Sensor-data QoS by default.
* poses (``pose_source``): ``tf`` looks up ``map_frame`` <- the depth image's ``frame_id`` at its
  stamp (tf2_ros, any ROS install); ``odometry`` reads nav_msgs/Odometry on ``odom``, ``pose``
  geometry_msgs/PoseStamped on ``pose`` (the pip install has no tf2). Topic poses are the pose
  in ``map_frame`` (their header's frame_id) of the frame ``camera_extrinsic`` (T_base_camera)
  maps the camera optical frame to; with the identity, of the camera optical frame itself.
* out ``mesh`` (visualization_msgs/Marker TRIANGLE_LIST, frame ``map_frame``) at ``mesh_rate``,
  ``map/points`` (PointCloud2 x y z rgb of the surface) at ``points_rate``, ``/diagnostics``.
* services ``~/save_map`` (std_srvs/Trigger: ``mesh.ply``, ``points.ply`` and ``map/``, which
  :meth:`TsdfMap.load` reads, into ``save_directory``) and ``~/reset`` (std_srvs/Trigger).

Frame convention: the map is in ``map_frame``; each pose is T_map_camera with the camera's
optical frame (REP 103: z forward, x right, y down), as the depth image's ``frame_id`` is.

Poses are matched to the depth stamp within ``pose_tolerance`` (interpolated between the poses
around it); a frame waits up to ``pose_wait`` for its pose (odometry and TF arrive after the
image), and a frame that has none then is counted as rejected (``no pose``) and reported in
/diagnostics, never fused with a guess.

Threads: the callbacks only store messages (the newest depth frame in a one-element slot, so a
frame the worker has not taken yet is replaced and counted as dropped: the map follows the
newest data instead of falling behind). One worker thread integrates; an output thread
publishes the mesh and the cloud at their rates, only when a frame was fused (or the map
reset) since the last one. The mesh is kept block by block
(:class:`~recon3d_ros.reconstruction.meshing.IncrementalMesh`): an update re-meshes only the
blocks fused into or freed since the last, copied out of the map in a few milliseconds, and
Open3D releases the GIL while it extracts, so integration goes on meanwhile. Map statistics for
/diagnostics are copied by the threads, so the diagnostics timer never waits for the map.

Bad input never stops the node: each frame that cannot be used is dropped and its cause logged
once per (topic, cause), then at most every 10 s, and counted in /diagnostics.
"""

from __future__ import annotations

from collections import Counter, deque, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
import threading
import time
import traceback
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
import numpy as np
import numpy.typing as npt
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.errors import FrameRejected, Recon3dError
from recon3d_ros.reconstruction.fusion import Reconstructor
from recon3d_ros.reconstruction.meshing import IncrementalMesh
from recon3d_ros.reconstruction.tsdf import BlockMesh
from recon3d_ros.reconstruction.poses import PoseBuffer
from recon3d_ros.ros import fusion_params as names
from recon3d_ros.ros.conversions import (
    camera_from_info,
    depth_image_to_m,
    image_to_rgb,
    marker_colors_bytes,
    marker_points_bytes,
    points_to_cloud_msg,
    pose_to_matrix,
    stamp_to_ns,
    triangle_list_marker_bytes,
)
from recon3d_ros.ros.diagnostics import FaultReporter
from recon3d_ros.ros.fusion_params import FusionSettings, declare_all
from recon3d_ros.ros.qos import input_qos
from recon3d_ros.ros.sync import invalid_stamp

__all__ = ["FusionNode", "NODE_NAME"]

NODE_NAME = names.NODE_NAME
#: CameraInfo and colour images kept for pairing by stamp (a few frames' worth).
_KEEP_BY_STAMP = 30
#: Poses kept (a few seconds of 100 Hz odometry).
_KEEP_POSES = 2000
#: Frames the per-stage p50 / p95 on /diagnostics cover (20 s at 15 Hz).
_RECENT_TIMES = 300
MIB = 2**20


@dataclass
class _Pending:
    msg: Image
    stamp_ns: int
    received: float  # time.monotonic() when it arrived


@dataclass
class _StageTimes:
    """Last, mean and recent median / 95th percentile milliseconds of each stage."""

    total: dict[str, float] = field(default_factory=dict)
    count: Counter[str] = field(default_factory=Counter)
    last: dict[str, float] = field(default_factory=dict)
    # Bounded: the node runs for days; the percentiles cover the last frames only.
    recent: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, stage: str, ms: float) -> None:
        self.total[stage] = self.total.get(stage, 0.0) + ms
        self.count[stage] += 1
        self.last[stage] = ms
        self.recent.setdefault(stage, deque(maxlen=_RECENT_TIMES)).append(ms)

    def values(self) -> dict[str, str]:
        out = {
            f"{stage}_ms_mean": f"{self.total[stage] / self.count[stage]:.1f}"
            for stage in sorted(self.count)
        } | {f"{stage}_ms_last": f"{ms:.1f}" for stage, ms in sorted(self.last.items())}
        for stage, window in sorted(self.recent.items()):
            p50, p95 = np.percentile(np.asarray(window), (50, 95))
            out[f"{stage}_ms_p50"], out[f"{stage}_ms_p95"] = f"{p50:.1f}", f"{p95:.1f}"
        return out


def _qos_latched() -> QoSProfile:
    # Reliable + transient_local, keep last 1: rviz2 (reliable, volatile by default) gets
    # every new mesh, and a subscriber that joins later still gets the last one.
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


class FusionNode(Node):
    """The fusion node; construction makes the map (raises :class:`Recon3dError` on failure)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._settings: FusionSettings = declare_all(self)
        s = self._settings
        # The frame path recon3d reconstruct runs too (scale alignment, integration, counts).
        self.reconstructor = Reconstructor(
            s.map_options(), scale_mode="map" if s.scale_mode == "map" else "none"
        )
        self.map = self.reconstructor.map
        self._mesher = IncrementalMesh(self.map)
        # Each block's Marker payload (points, colours), serialized once per block mesh.
        self._marker_parts: dict[tuple[int, int, int], tuple[BlockMesh, bytes, bytes]] = {}
        self._fuse_lock = threading.Lock()  # add_frame (worker) vs reset (service)
        self._extrinsic = s.extrinsic()
        opt = self.map.options
        self.get_logger().info(
            f"map: voxel {opt.voxel_size * 100:.1f} cm, budget {opt.memory_budget_mb:.0f} MB "
            f"({opt.max_blocks} blocks of {opt.bytes_per_block / 1024:.0f} KiB), clear_radius "
            f"{opt.clear_radius} m, device {opt.device}, scale_mode {s.scale_mode}; poses from "
            f"{s.pose_source}"
        )

        self._faults = FaultReporter(self.get_logger().warning)
        self._cond = threading.Condition()
        self._slot: _Pending | None = None
        self._infos: OrderedDict[int, CameraInfo] = OrderedDict()
        self._colors: OrderedDict[int, Image] = OrderedDict()
        self._poses = PoseBuffer(s.pose_tolerance, max_poses=_KEEP_POSES)
        self._newest_pose_ns: int | None = None  # tells when a lookup's answer is final
        self._counts: Counter[str] = Counter()  # received, fused, dropped, resets
        self._scale: float | None = None  # of the last fused frame (scale_mode map)
        self._rejected: Counter[str] = Counter()  # by cause
        self._times = _StageTimes()
        self._map_stats: dict[str, float] = dict.fromkeys(
            ("blocks", "bytes", "allocated", "triangles", "mesh_blocks", "points"), 0
        )
        self._dirty = False  # fused (or reset) since the last mesh / cloud
        self._mesh_due = 0.0
        self._points_due = 0.0
        self._points_dirty = False
        self._camera_position: npt.NDArray[np.float64] | None = None  # of the last fused frame
        self._stop = threading.Event()

        in_qos = input_qos(s.input_qos_reliability, s.input_qos_depth)
        self._depth_sub = self.create_subscription(
            Image, names.DEPTH_IMAGE, self._on_depth, in_qos
        )
        self._info_sub = self.create_subscription(
            CameraInfo, names.DEPTH_CAMERA_INFO, self._on_camera_info, in_qos
        )
        self.depth_topic = self._depth_sub.topic_name
        self.info_topic = self._info_sub.topic_name
        self._color_sub = (
            self.create_subscription(Image, names.COLOR_IMAGE, self._on_color, in_qos)
            if s.use_color
            else None
        )
        self.color_topic = self._color_sub.topic_name if self._color_sub else ""
        self._tf_buffer: Any = None
        self._pose_sub: Any = None
        if s.pose_source == "tf":
            import tf2_ros  # type: ignore[import-not-found]  # a ROS install's, no stubs

            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self)
            self.pose_topic = f"TF {s.map_frame} <- <depth frame_id>"
        elif s.pose_source == "odometry":
            self._pose_sub = self.create_subscription(
                Odometry, names.ODOMETRY, self._on_odometry, in_qos
            )
            self.pose_topic = self._pose_sub.topic_name
        else:
            self._pose_sub = self.create_subscription(
                PoseStamped, names.POSE, self._on_pose, in_qos
            )
            self.pose_topic = self._pose_sub.topic_name

        self._mesh_pub = self.create_publisher(Marker, names.MESH, _qos_latched())
        self._points_pub = self.create_publisher(PointCloud2, names.MAP_POINTS, _qos_latched())
        self._diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self._save_srv = self.create_service(Trigger, names.SAVE_MAP, self._on_save_map)
        self._reset_srv = self.create_service(Trigger, names.RESET, self._on_reset)
        self.get_logger().info(
            f"subscribed to '{self.depth_topic}', '{self.info_topic}'"
            + (f", '{self._color_sub.topic_name}'" if self._color_sub else "")
            + f" and poses from '{self.pose_topic}'; publishing '{self._mesh_pub.topic_name}' "
            f"and '{self._points_pub.topic_name}' in '{s.map_frame}'; services "
            f"'{self.resolve_service_name(names.SAVE_MAP)}', "
            f"'{self.resolve_service_name(names.RESET)}'"
        )
        self._diag_timer = self.create_timer(s.diagnostics_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="fusion_worker", daemon=True)
        self._output = threading.Thread(
            target=self._output_loop, name="fusion_output", daemon=True
        )
        self._worker.start()
        self._output.start()

    @property
    def settings(self) -> FusionSettings:
        return self._settings

    # ------------------------------------------------------------- callbacks (executor thread)
    def _valid_stamp(self, msg: Any, topic: str) -> int | None:
        stamp = msg.header.stamp
        problem = invalid_stamp(stamp.sec, stamp.nanosec)
        if problem is not None:
            self._faults.report(topic, "invalid stamp", problem)
            return None
        return stamp_to_ns(stamp)

    def _on_depth(self, msg: Image) -> None:
        with self._cond:
            self._counts["received"] += 1
        stamp_ns = self._valid_stamp(msg, self.depth_topic)
        if stamp_ns is None:
            self._count_rejected("invalid stamp")
            return
        with self._cond:
            if self._slot is not None:
                self._counts["dropped"] += 1
            self._slot = _Pending(msg, stamp_ns, time.monotonic())
            self._cond.notify()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        stamp_ns = self._valid_stamp(msg, self.info_topic)
        if stamp_ns is not None:
            with self._cond:
                _keep(self._infos, stamp_ns, msg)
                self._cond.notify()

    def _on_color(self, msg: Image) -> None:
        stamp_ns = self._valid_stamp(msg, self.color_topic)
        if stamp_ns is not None:
            with self._cond:
                _keep(self._colors, stamp_ns, msg)

    def _on_odometry(self, msg: Odometry) -> None:
        self._add_pose(msg.header, msg.pose.pose)

    def _on_pose(self, msg: PoseStamped) -> None:
        self._add_pose(msg.header, msg.pose)

    def _add_pose(self, header: Header, pose: Any) -> None:
        topic, s = self.pose_topic, self._settings
        stamp_ns = self._valid_stamp(_HeaderOnly(header), topic)
        if stamp_ns is None:
            return
        if s.map_frame and header.frame_id and header.frame_id != s.map_frame:
            self._faults.report(
                topic,
                "pose frame mismatch",
                f"pose is in '{header.frame_id}' but map_frame is '{s.map_frame}'; set "
                f"map_frame:={header.frame_id} to map in that frame",
            )
            return
        try:
            T_world_base = pose_to_matrix(pose.position, pose.orientation)
        except Recon3dError as exc:
            self._faults.report(topic, "bad pose", str(exc))
            return
        with self._cond:
            if self._newest_pose_ns is not None and stamp_ns < self._newest_pose_ns:
                # Time went back (bag loop, simulator reset): the old poses no longer apply.
                self._poses = PoseBuffer(s.pose_tolerance, max_poses=_KEEP_POSES)
            self._poses.add(stamp_ns, T_world_base @ self._extrinsic)
            self._newest_pose_ns = stamp_ns
            self._cond.notify()

    # ------------------------------------------------------------------ services
    def _on_save_map(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        from recon3d_ros.reconstruction.mesh_io import write_mesh_ply, write_points_ply

        root = Path(self._settings.save_path())
        try:
            root.mkdir(parents=True, exist_ok=True)
            mesh = self.map.extract_mesh()
            points, colors = self.map.extract_points()
            write_mesh_ply(root / "mesh.ply", mesh)
            write_points_ply(root / "points.ply", points, colors)
            self.map.save(root / "map")
            # The last fused frame, for `recon3d reconstruct --resume` with estimated poses.
            self.reconstructor.save_anchor(root / "map")
        except (Recon3dError, OSError) as exc:
            response.success = False
            response.message = f"cannot save the map to {root}: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success = True
        response.message = (
            f"saved {len(mesh.triangles)} triangles to {root / 'mesh.ply'}, {len(points)} points "
            f"to {root / 'points.ply'} and the map ({self.map.block_count} blocks) to "
            f"{root / 'map'}"
        )
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        blocks = self.map.block_count
        with self._fuse_lock:
            self.reconstructor.reset()
        with self._cond:
            self._counts["resets"] += 1
            self._dirty = self._points_dirty = True
            self._mesh_due = self._points_due = 0.0  # publish the empty map right away
            self._cond.notify()
        self._update_map_stats()
        response.success = True
        response.message = f"map cleared ({blocks} blocks freed)"
        self.get_logger().info(response.message)
        return response

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                pending, self._slot = self._slot, None
                if pending is None:
                    self._cond.wait(timeout=0.05)
                    continue
            try:
                self._process(pending)
            except FrameRejected as exc:
                self._reject(exc)
            except Exception as exc:  # noqa: BLE001 - a bad frame must never kill the worker
                if self._stop.is_set() or not self.context.ok():
                    return  # shutting down: publishers are gone, nothing to report
                self.get_logger().error(
                    f"unexpected error fusing a frame: {exc}\n{traceback.format_exc()}",
                    throttle_duration_sec=10.0,
                )
                self._count_rejected("unexpected error")

    def _output_loop(self) -> None:
        """Publish the mesh and the cloud at their rates (own thread: never waits for a frame)."""
        while not self._stop.wait(0.01):
            try:
                self._publish_outputs()
            except Exception as exc:  # noqa: BLE001 - a failed mesh must not stop the next
                if self._stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(
                    f"unexpected error publishing the mesh / cloud: {exc}\n"
                    f"{traceback.format_exc()}",
                    throttle_duration_sec=10.0,
                )

    def _count_rejected(self, cause: str) -> None:
        with self._cond:
            self._rejected[cause] += 1

    def _reject(self, exc: FrameRejected) -> None:
        self._count_rejected(exc.cause)
        self._faults.report(exc.topic, exc.cause, exc.detail)

    def _process(self, pending: _Pending) -> None:
        s = self._settings
        t0 = time.perf_counter()
        msg = pending.msg
        try:
            depth = depth_image_to_m(msg)
        except Recon3dError as exc:
            raise FrameRejected(self.depth_topic, "bad depth", str(exc)) from exc
        camera = self._camera_for(pending, depth.shape)
        rgb = self._color_for(pending.stamp_ns, camera) if s.use_color else None
        t1 = time.perf_counter()
        pose = self._wait_for_pose(pending, msg.header.frame_id)
        t2 = time.perf_counter()
        try:
            with self._fuse_lock:
                outcome = self.reconstructor.add_frame(rgb, depth, camera, pose, pending.stamp_ns)
        except Recon3dError as exc:
            raise FrameRejected(self.depth_topic, "integration failed", str(exc)) from exc
        with self._cond:
            self._times.add("decode", (t1 - t0) * 1e3)
            self._times.add("pose_wait", (t2 - t1) * 1e3)
            for name, ms in outcome.timings.items():
                if name != "total_ms":
                    self._times.add(name.removesuffix("_ms"), ms)
            if outcome.fused:
                self._counts["fused"] += 1
                self._dirty = self._points_dirty = True
                self._scale = outcome.scale
                if outcome.pose is not None:
                    self._camera_position = outcome.pose[:3, 3].copy()
        if not outcome.fused:
            key, _, detail = outcome.reason.partition(": ")
            raise FrameRejected(self.depth_topic, key.replace("_", " "), detail)
        self._update_map_stats()

    def _camera_for(self, pending: _Pending, shape: tuple[int, ...]) -> PinholeCamera:
        """Return the CameraInfo of the depth's stamp, else the newest of the depth's size."""
        with self._cond:
            info = self._infos.get(pending.stamp_ns)
            if info is None:
                info = next(
                    (i for i in reversed(self._infos.values())
                     if (i.height, i.width) == shape[:2]),
                    None,
                )
        if info is None:
            raise FrameRejected(
                self.info_topic,
                "no camera_info",
                f"no CameraInfo of the depth's size {shape[1]}x{shape[0]} has arrived; publish "
                f"'{self.info_topic}' with the depth (remap it to your camera's)",
            )
        try:
            camera = camera_from_info(info)
        except Recon3dError as exc:
            raise FrameRejected(self.info_topic, "bad camera_info", str(exc)) from exc
        if (camera.height, camera.width) != shape[:2]:
            raise FrameRejected(
                self.info_topic,
                "camera_info size disagrees with the depth",
                f"CameraInfo is {camera.width}x{camera.height} but the depth is "
                f"{shape[1]}x{shape[0]}",
            )
        return camera

    def _color_for(
        self, stamp_ns: int, camera: PinholeCamera
    ) -> npt.NDArray[np.uint8] | None:
        """Return the colour image of the depth's stamp (at the depth's size), or None."""
        with self._cond:
            msg = self._colors.get(stamp_ns)
        if msg is None:
            return None
        try:
            rgb = image_to_rgb(msg)
        except Recon3dError as exc:
            self._faults.report(self.color_topic, "bad colour image", str(exc))
            return None
        if rgb.shape[:2] != (camera.height, camera.width):
            import cv2

            rgb = np.asarray(
                cv2.resize(rgb, (camera.width, camera.height), interpolation=cv2.INTER_AREA),
                dtype=np.uint8,
            )
        return np.ascontiguousarray(rgb)

    def _wait_for_pose(self, pending: _Pending, frame_id: str) -> npt.NDArray[np.float64]:
        s = self._settings
        deadline = pending.received + s.pose_wait
        while True:
            pose, final, why = self._lookup_pose(pending.stamp_ns, frame_id)
            if pose is not None:
                return pose
            if final or time.monotonic() >= deadline or self._stop.is_set():
                raise FrameRejected(self.pose_topic, "no pose", why)
            with self._cond:
                self._cond.wait(timeout=0.01)

    def _lookup_pose(
        self, stamp_ns: int, frame_id: str
    ) -> tuple[npt.NDArray[np.float64] | None, bool, str]:
        """Return (pose, whether no later message can change the answer, why there is none)."""
        s = self._settings
        stamp = f"{stamp_ns / 1e9:.6f}"
        if self._tf_buffer is not None:
            return self._lookup_tf(stamp_ns, frame_id, stamp)
        with self._cond:
            pose = self._poses.lookup(stamp_ns)
            newest = self._newest_pose_ns
        if pose is not None:
            return np.asarray(pose, dtype=np.float64), True, ""
        if newest is None:
            return None, False, (
                f"no pose has arrived on '{self.pose_topic}' (pose_source {s.pose_source}); "
                "publish the camera's pose there or remap it"
            )
        return None, newest >= stamp_ns, (
            f"no pose within pose_tolerance {s.pose_tolerance} s of the depth stamp {stamp} "
            f"(newest pose {newest / 1e9:.6f}); raise pose_tolerance or pose_wait, or check "
            "the clocks of the two sources"
        )

    def _lookup_tf(
        self, stamp_ns: int, frame_id: str, stamp: str
    ) -> tuple[npt.NDArray[np.float64] | None, bool, str]:
        import rclpy.time
        import tf2_ros

        s = self._settings
        try:
            tf = self._tf_buffer.lookup_transform(
                s.map_frame, frame_id, rclpy.time.Time(nanoseconds=stamp_ns)
            )
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException,
                tf2_ros.ExtrapolationException, tf2_ros.InvalidArgumentException) as exc:
            hint = ""
            if s.odom_frame and self._tf_buffer.can_transform(
                s.odom_frame, frame_id, rclpy.time.Time()
            ) and not self._tf_buffer.can_transform(s.map_frame, frame_id, rclpy.time.Time()):
                hint = (
                    f"; '{s.odom_frame}' -> '{frame_id}' exists but nothing publishes "
                    f"'{s.map_frame}' -> '{s.odom_frame}': start localisation or set "
                    f"map_frame:={s.odom_frame}"
                )
            return None, False, f"no TF '{s.map_frame}' -> '{frame_id}' at {stamp}: {exc}{hint}"
        t = tf.transform
        return pose_to_matrix(t.translation, t.rotation), True, ""

    def _update_map_stats(self) -> None:
        stats = {
            "blocks": self.map.block_count,
            "bytes": self.map.memory_bytes,
            "allocated": self.map.allocated_bytes,
        }
        with self._cond:
            self._map_stats.update(stats)

    def _header(self) -> Header:
        return Header(stamp=self.get_clock().now().to_msg(), frame_id=self._settings.map_frame)

    def _publish_outputs(self) -> None:
        """Extract and publish the mesh / cloud when their rate allows and the map changed."""
        s, now = self._settings, time.monotonic()
        with self._cond:
            # Taken before extracting: a frame fused meanwhile marks the map dirty again.
            mesh_due = s.mesh_rate > 0 and self._dirty and now >= self._mesh_due
            points_due = s.points_rate > 0 and self._points_dirty and now >= self._points_due
            if mesh_due:
                self._dirty = False
                self._mesh_due = now + 1.0 / s.mesh_rate
            if points_due:
                self._points_dirty = False
                self._points_due = now + 1.0 / s.points_rate
            near = self._camera_position
        if mesh_due:
            t0 = time.perf_counter()
            self._mesher.update()
            blocks = self._mesher.blocks(s.mesh_max_triangles, near)
            t1 = time.perf_counter()
            points, colors = self._marker_payload(blocks)
            self._mesh_pub.publish(
                triangle_list_marker_bytes(points, colors, self._header())
            )
            with self._cond:
                self._map_stats["triangles"] = sum(b.triangle_count for b in blocks)
                self._map_stats["mesh_blocks"] = self._mesher.blocks_meshed
                self._times.add("mesh_extract", (t1 - t0) * 1e3)
                self._times.add("mesh", (time.perf_counter() - t0) * 1e3)
        if points_due:
            t0 = time.perf_counter()
            points, colors = self.map.extract_points()
            self._points_pub.publish(points_to_cloud_msg(points, colors, self._header()))
            with self._cond:
                self._map_stats["points"] = len(points)
                self._times.add("points", (time.perf_counter() - t0) * 1e3)

    def _marker_payload(self, blocks: list[BlockMesh]) -> tuple[list[bytes], list[bytes]]:
        """Marker points / colours pieces of ``blocks``, serializing only re-meshed blocks.

        Serializing a 300k-triangle mesh took ~200 ms here, every time; per block, only the
        few dozen blocks an update re-meshed are, and the message is one join of the rest.
        """
        parts = {}
        for block in blocks:
            cached = self._marker_parts.get(block.key)
            if cached is None or cached[0] is not block:
                cached = (block, marker_points_bytes(block.corners),
                          marker_colors_bytes(block.colors))
            parts[block.key] = cached
        self._marker_parts = parts  # forgets freed blocks (and ones left out by the limit)
        return [p[1] for p in parts.values()], [p[2] for p in parts.values()]

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        s = self._settings
        opt = self.map.options
        with self._cond:
            counts, rejected = Counter(self._counts), Counter(self._rejected)
            stats, times, scale = dict(self._map_stats), self._times.values(), self._scale
        status = DiagnosticStatus(
            name=f"{self.get_name()}: reconstruction", hardware_id=opt.device
        )
        values = {
            "frames_received": counts["received"],
            "frames_fused": counts["fused"],
            "frames_rejected": sum(rejected.values()),
            "frames_dropped": counts["dropped"],
            **{f"rejected_{cause.replace(' ', '_')}": n for cause, n in sorted(rejected.items())},
            "resets": counts["resets"],
            "pose_source": s.pose_source,
            "pose_topic": self.pose_topic,
            "map_frame": s.map_frame,
            "voxel_size_m": opt.voxel_size,
            "scale_mode": s.scale_mode,
            "depth_scale": "" if scale is None else f"{scale:.4f}",
            "map_blocks": stats["blocks"],
            "map_max_blocks": opt.max_blocks,
            "map_memory_mb": f"{stats['bytes'] / MIB:.1f}",
            "map_allocated_mb": f"{stats['allocated'] / MIB:.1f}",
            "memory_budget_mb": f"{opt.memory_budget_mb:.1f}",
            "mesh_triangles": stats["triangles"],
            "mesh_blocks_updated": stats["mesh_blocks"],
            "map_points": stats["points"],
            **times,
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        status.level, status.message = DiagnosticStatus.OK, "ok"
        last_fault = self._faults.last_fault
        if counts["received"] == 0:
            status.level = DiagnosticStatus.WARN
            status.message = f"no depth received on '{self.depth_topic}'"
        elif rejected and counts["fused"] == 0:
            status.level = DiagnosticStatus.ERROR
            status.message = f"no frame fused; last problem: {last_fault}"
        elif rejected:
            status.level = DiagnosticStatus.WARN
            status.message = f"{sum(rejected.values())} frames rejected; last: {last_fault}"
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self) -> None:
        # rclpy's context clean-up also calls this on a node whose __init__ stopped half-way.
        if hasattr(self, "_output"):
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            for thread in (self._worker, self._output):
                if thread.is_alive() and threading.current_thread() is not thread:
                    thread.join(timeout=5.0)
        super().destroy_node()


@dataclass
class _HeaderOnly:
    """Lets :meth:`FusionNode._valid_stamp` read a bare Header like a message."""

    header: Header


def _keep(store: OrderedDict[int, Any], stamp_ns: int, msg: Any) -> None:
    """Store ``msg`` by stamp, forgetting the oldest beyond :data:`_KEEP_BY_STAMP`."""
    store[stamp_ns] = msg
    store.move_to_end(stamp_ns)
    while len(store) > _KEEP_BY_STAMP:
        store.popitem(last=False)
