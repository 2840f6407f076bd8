"""``depth_node``: monocular metric depth, its CameraInfo and an organized point cloud.

Topics (relative, so launch files remap them):

* in  ``image`` (sensor_msgs/Image) or ``image/compressed`` (sensor_msgs/CompressedImage,
  ``transport: compressed``) and ``camera_info``; sensor-data QoS by default.
* in (``scale_mode: sparse``) ``scale/points`` (PointCloud2, xyz in the frame that
  ``scale_extrinsic`` maps to the camera) and ``scale/depth`` (Image 32FC1 m / 16UC1 mm,
  registered to the camera image): metric references for the scale of a relative model.
* out ``depth/image`` (32FC1, metres along z, NaN invalid, the image's header),
  ``depth/camera_info`` (intrinsics of the depth image, same header), ``points``
  (organized PointCloud2, xyz or xyzrgb, frame = the image's), ``/diagnostics``.

Latency design: *newest frame wins*. The subscription callbacks only store messages: the image
callback puts the newest image in a one-element slot, replacing (and counting as dropped) any
image the worker has not taken yet; the camera_info callback adds to a small buffer keyed by
stamp. A single worker thread takes the slot once a CameraInfo with the image's stamp (or the
nearest within ``camera_info_tolerance``) is there, and runs decode -> rectify -> inference ->
filter -> publish. When the camera is faster than the model, frames are dropped, never queued,
so the age of what is published is bounded by about one inference time. Callbacks stay
microseconds long, so one executor thread serves them, the parameter services and the
diagnostics timer while inference runs (torch/onnxruntime release the GIL).

Pairing: an image waits in the slot for its CameraInfo (drivers publish the two in either
order) up to ``max(CAMERA_INFO_WAIT_S, camera_info_tolerance)``; the wait carries over when a
newer image replaces it, so a stream without CameraInfo is reported rather than starved.

Geometry: intrinsics always come from CameraInfo (K, with its ROI and binning). Distorted images
are undistorted into P's intrinsics (image_proc's convention; K when P is unset) unless
``input_is_rectified``; the depth, its CameraInfo and the cloud then follow that camera, resized
exactly (cv2 pixel-centre convention) when ``output_width/height`` or ``output_scale`` change the
size. Caches (rectification maps, cloud rays) are keyed by the calibration, so a new resolution
or K mid-stream just builds new ones.

Metric scale (``scale_mode`` != none): the engine's output goes through
:class:`~recon3d_ros.inference.scale.MetricScaler` before filtering. Reference callbacks only
convert and store the newest reference; the worker hands it to the scaler, which only the worker
touches.

Bad input never stops the node: each frame that cannot be used is dropped, and its cause is
logged once per (topic, cause), then at most every 10 s with a count, and shown in /diagnostics.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from recon3d_ros.core.camera import PinholeCamera
from recon3d_ros.core.filters import remove_flying_pixels
from recon3d_ros.core.pointcloud import depth_to_cloud
from recon3d_ros.core.rectify import rectifier_for
from recon3d_ros.errors import CameraModelError, ConfigError, EncodingError, Recon3dError
from recon3d_ros.inference.loader import load_engine
from recon3d_ros.inference.scale import MetricScaler
from recon3d_ros.ros.conversions import (
    camera_from_info,
    camera_to_info_msg,
    cloud_msg_to_xyz,
    cloud_to_msg,
    compressed_to_rgb,
    depth_image_to_m,
    depth_to_image_msg,
    image_to_rgb,
    rectified_camera_from_info,
    stamp_to_ns,
)
from recon3d_ros.ros.diagnostics import FaultReporter, FrameStats, build_status, scale_values
from recon3d_ros.ros.params import NodeSettings, declare_all, settings_from_values
from recon3d_ros.ros.qos import input_qos, output_qos
from recon3d_ros.ros.sync import CameraInfoBuffer

__all__ = ["DepthNode", "NODE_NAME"]

NODE_NAME = "depth_node"
#: How long an image may wait for its CameraInfo before it is dropped (at least the tolerance).
CAMERA_INFO_WAIT_S = 0.5

ImageMsg = Union[Image, CompressedImage]


class FrameRejected(Recon3dError):
    """One input frame cannot be used; the node logs ``cause`` for ``topic`` and drops it."""

    def __init__(self, topic: str, cause: str, detail: str) -> None:
        super().__init__(f"{topic}: {cause}: {detail}")
        self.topic, self.cause, self.detail = topic, cause, detail


@dataclass
class _Pending:
    msg: ImageMsg
    stamp_ns: int


class DepthNode(Node):
    """The depth node; construction loads the model (raises :class:`Recon3dError` on failure)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._settings: NodeSettings = declare_all(self)
        s = self._settings
        self.engine = load_engine(
            s.model,
            backend=s.backend,
            device=s.device,
            precision=s.precision,
            config_overrides=s.config_overrides() or None,
            cpu_threads=s.cpu_threads,
        )  # loads the network too
        self.get_logger().info(
            f"model '{s.model}' ({self.engine.config.name}, input "
            f"{self.engine.config.input_width}x{self.engine.config.input_height} "
            f"{self.engine.config.resize_mode}), backend {self.engine.backend}, device "
            f"{self.engine.device}, precision {self.engine.precision}, cpu_threads "
            f"{s.cpu_threads or 'default'}"
        )
        self.scaler = _make_scaler(s)

        self._stats = FrameStats()
        self._faults = FaultReporter(self.get_logger().warning)
        self._cond = threading.Condition()
        self._slot: _Pending | None = None
        self._infos: CameraInfoBuffer[CameraInfo] = CameraInfoBuffer()
        self._last_image_stamp: int | None = None
        self._unmatched_since: float | None = None
        self._stop = threading.Event()
        # Newest metric references (sparse scale mode), handed to the scaler by the worker.
        self._ref_points: npt.NDArray[np.float64] | None = None
        self._ref_depth: npt.NDArray[np.float32] | None = None

        out_qos = output_qos(s.output_qos_reliability, s.output_qos_durability, s.output_qos_depth)
        self._depth_pub = self.create_publisher(Image, "depth/image", out_qos)
        self._info_pub = self.create_publisher(CameraInfo, "depth/camera_info", out_qos)
        self._points_pub = self.create_publisher(PointCloud2, "points", out_qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        in_qos = input_qos(s.input_qos_reliability, s.input_qos_depth)
        if s.transport == "compressed":
            self._image_sub = self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, in_qos
            )
        else:
            self._image_sub = self.create_subscription(Image, "image", self._on_image, in_qos)
        self._info_sub = self.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info, in_qos
        )
        self.image_topic = self._image_sub.topic_name
        self.info_topic = self._info_sub.topic_name
        if s.scale_mode == "sparse":
            self._scale_points_sub = self.create_subscription(
                PointCloud2, "scale/points", self._on_scale_points, in_qos
            )
            self._scale_depth_sub = self.create_subscription(
                Image, "scale/depth", self._on_scale_depth, in_qos
            )
            self.get_logger().info(
                f"metric scale from '{self._scale_points_sub.topic_name}' and "
                f"'{self._scale_depth_sub.topic_name}'"
            )
        elif s.scale_mode != "none":
            self.get_logger().info(f"metric scale mode '{s.scale_mode}'")
        self.get_logger().info(
            f"subscribed to '{self.image_topic}' and '{self.info_topic}'; publishing "
            f"'{self._depth_pub.topic_name}', '{self._info_pub.topic_name}', "
            f"'{self._points_pub.topic_name}'"
        )

        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._diag_timer = self.create_timer(s.diagnostics_period, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="depth_worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ parameters
    @property
    def settings(self) -> NodeSettings:
        return self._settings

    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        values = self._settings.as_dict()
        for p in params:
            if p.name in values:
                values[p.name] = p.value
        try:
            settings_from_values(values)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list[Parameter]) -> None:
        values = self._settings.as_dict()
        for p in params:
            if p.name in values:
                values[p.name] = p.value
        # One reference swap: the worker sees the old or the new settings, never a mix.
        self._settings = settings_from_values(values)
        self.get_logger().info(
            "parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in params)
        )

    # ------------------------------------------------------------- callbacks (executor thread)
    def _on_image(self, msg: ImageMsg) -> None:
        self._stats.image_received()
        stamp = stamp_to_ns(msg.header.stamp)
        with self._cond:
            previous = self._last_image_stamp
            self._last_image_stamp = stamp
            if previous is None or stamp >= previous:
                if self._slot is not None:
                    self._stats.frame_dropped()
                self._slot = _Pending(msg, stamp)
                self._cond.notify()
                return
        # Only this frame is dropped: the next one is compared with it, so a source that
        # restarted (bag loop, simulator reset) is served again from its second frame.
        self._reject(
            FrameRejected(
                self.image_topic,
                "stamp went backwards",
                f"stamp {stamp / 1e9:.6f} s is older than the previous image's "
                f"{previous / 1e9:.6f} s",
            )
        )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._stats.camera_info_received()
        with self._cond:
            went_back = self._infos.add(stamp_to_ns(msg.header.stamp), msg)
            self._cond.notify()
        if went_back:
            self.get_logger().info(
                f"'{self.info_topic}' stamps went backwards: dropped the older CameraInfo "
                "messages (source restarted?)",
                throttle_duration_sec=10.0,
            )

    def _on_scale_points(self, msg: PointCloud2) -> None:
        topic = self._scale_points_sub.topic_name
        try:
            points = cloud_msg_to_xyz(msg)
        except Recon3dError as exc:
            self._faults.report(topic, "bad reference cloud", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad message must never kill the node
            self._faults.report(topic, "unreadable reference cloud", repr(exc))
            return
        with self._cond:
            self._ref_points = points

    def _on_scale_depth(self, msg: Image) -> None:
        topic = self._scale_depth_sub.topic_name
        try:
            if msg.width * msg.height > self._settings.max_input_pixels:
                raise EncodingError(
                    f"{msg.width}x{msg.height} exceeds max_input_pixels="
                    f"{self._settings.max_input_pixels}"
                )
            depth = depth_image_to_m(msg)
        except Recon3dError as exc:
            self._faults.report(topic, "bad reference depth", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bad message must never kill the node
            self._faults.report(topic, "unreadable reference depth", repr(exc))
            return
        with self._cond:
            self._ref_depth = depth

    # ------------------------------------------------------------------ worker thread
    def _take_job(self) -> tuple[_Pending, CameraInfo] | None:
        """Return the newest image and its CameraInfo, or None after waiting briefly."""
        with self._cond:
            job, rejected = self._match_locked()
            if job is None and rejected is None:
                self._cond.wait(timeout=0.05)  # woken by a new image or CameraInfo
        if rejected is not None:
            self._reject(rejected)
        return job

    def _match_locked(
        self,
    ) -> tuple[tuple[_Pending, CameraInfo] | None, FrameRejected | None]:
        """Pair the slot's image with a CameraInfo, or give up on it (caller holds the lock)."""
        pending = self._slot
        if pending is None:
            return None, None
        tolerance_s = self._settings.camera_info_tolerance
        tolerance_ns = int(tolerance_s * 1e9)
        info = self._infos.match(pending.stamp_ns, tolerance_ns)
        if info is not None:
            self._slot = None
            self._unmatched_since = None
            return (pending, info), None
        # Not paired yet: its CameraInfo may still be on the way. The wait spans images that
        # replace each other, so a stream without CameraInfo is reported, not silently dropped.
        now = time.monotonic()
        if self._unmatched_since is None:
            self._unmatched_since = now
        waited = now - self._unmatched_since
        newest = self._infos.newest_stamp
        too_late = newest is not None and newest > pending.stamp_ns + tolerance_ns
        if not too_late and waited <= max(CAMERA_INFO_WAIT_S, tolerance_s):
            return None, None
        self._slot = None
        self._unmatched_since = None
        if newest is None:
            return None, FrameRejected(
                self.info_topic,
                "no camera_info",
                f"no CameraInfo received for {waited:.1f} s; the node needs the camera's "
                f"intrinsics: publish '{self.info_topic}' (remap it to your camera's)",
            )
        return None, FrameRejected(
            self.info_topic,
            "no camera_info with a matching stamp",
            f"no CameraInfo within {tolerance_s} s of the image stamp "
            f"{pending.stamp_ns / 1e9:.6f} (newest CameraInfo {newest / 1e9:.6f}); "
            "raise camera_info_tolerance if the driver stamps them differently",
        )

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._take_job()
            if job is None:
                continue
            try:
                self._process(*job)
            except FrameRejected as exc:
                self._reject(exc)
            except Recon3dError as exc:
                self._reject(FrameRejected(self.image_topic, type(exc).__name__, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a bad frame must never kill the worker
                if self._stop.is_set() or not self.context.ok():
                    return  # shutting down: publishers are gone, nothing to report
                self.get_logger().error(
                    f"unexpected error processing a frame: {exc}\n{traceback.format_exc()}",
                    throttle_duration_sec=10.0,
                )
                self._stats.frame_rejected()

    def _reject(self, exc: FrameRejected) -> None:
        self._stats.frame_rejected()
        self._faults.report(exc.topic, exc.cause, exc.detail)

    def _decode(self, msg: ImageMsg, s: NodeSettings) -> npt.NDArray[np.uint8]:
        topic = self.image_topic
        if isinstance(msg, Image):
            if msg.width == 0 or msg.height == 0:
                raise FrameRejected(topic, "empty image", f"size {msg.width}x{msg.height}")
            if msg.width * msg.height > s.max_input_pixels:
                raise FrameRejected(
                    topic,
                    "image too large",
                    f"{msg.width}x{msg.height} exceeds max_input_pixels={s.max_input_pixels}",
                )
            try:
                return image_to_rgb(msg)
            except EncodingError as exc:
                raise FrameRejected(topic, "bad image", str(exc)) from exc
        try:
            rgb = compressed_to_rgb(msg)
        except EncodingError as exc:
            raise FrameRejected(topic, "bad compressed image", str(exc)) from exc
        if rgb.shape[0] * rgb.shape[1] > s.max_input_pixels:
            raise FrameRejected(
                topic,
                "image too large",
                f"{rgb.shape[1]}x{rgb.shape[0]} exceeds max_input_pixels={s.max_input_pixels}",
            )
        return rgb

    def _camera_for(
        self, info: CameraInfo, msg: ImageMsg, width: int, height: int
    ) -> PinholeCamera:
        try:
            camera = camera_from_info(info)
        except CameraModelError as exc:
            raise FrameRejected(self.info_topic, "bad camera_info", str(exc)) from exc
        if (camera.width, camera.height) != (width, height):
            raise FrameRejected(
                self.info_topic,
                "camera_info size disagrees with the image",
                f"CameraInfo (after ROI/binning) is {camera.width}x{camera.height} but the image "
                f"is {width}x{height}; remap camera_info to this image's camera_info",
            )
        if info.header.frame_id != msg.header.frame_id:
            raise FrameRejected(
                self.info_topic,
                "camera_info frame_id disagrees with the image",
                f"CameraInfo frame_id '{info.header.frame_id}' != image frame_id "
                f"'{msg.header.frame_id}'",
            )
        return camera

    def _rectify(
        self, rgb: npt.NDArray[np.uint8], camera: PinholeCamera, info: CameraInfo
    ) -> tuple[npt.NDArray[np.uint8], PinholeCamera]:
        """Undistort into P's intrinsics (K when P is unset), as image_proc does.

        The maps are cached per calibration, so a new size, K, D or P rebuilds them.
        """
        try:
            rectifier = rectifier_for(camera, rectified_camera_from_info(info))
        except CameraModelError as exc:
            raise FrameRejected(self.info_topic, "cannot rectify", str(exc)) from exc
        if rectifier is None:
            return rgb, camera
        return rectifier.rectify(rgb), rectifier.camera

    def _process(self, pending: _Pending, info: CameraInfo) -> None:
        s = self._settings
        msg = pending.msg
        rgb = self._decode(msg, s)
        height, width = rgb.shape[:2]
        camera = self._camera_for(info, msg, width, height)
        if camera.is_distorted and not s.input_is_rectified:
            rgb, camera = self._rectify(rgb, camera, info)
        out_w, out_h = s.output_size(camera.width, camera.height)
        same_size = (out_w, out_h) == (camera.width, camera.height)
        depth = self.engine.infer(rgb, camera, output_size=None if same_size else (out_w, out_h))
        out_camera = camera if same_size else camera.resized(out_w, out_h)
        if self.scaler is not None:
            depth = self._metric_scale(self.scaler, depth, out_camera)
        if s.edge_filter_threshold > 0.0:
            depth = remove_flying_pixels(depth, s.edge_filter_threshold)
        depth = _apply_depth_range(depth, s.min_depth, s.max_depth)
        self._publish(msg, depth, out_camera, rgb, s)
        latency = (self.get_clock().now().nanoseconds - pending.stamp_ns) / 1e9
        timings = getattr(self.engine, "timings", None)
        self._stats.frame_published(latency, getattr(timings, "inference_ms", 0.0))

    def _metric_scale(
        self, scaler: MetricScaler, depth: npt.NDArray[np.float32], camera: PinholeCamera
    ) -> npt.NDArray[np.float32]:
        """Hand the newest references to the scaler (each is used once), then scale ``depth``."""
        with self._cond:
            points, self._ref_points = self._ref_points, None
            reference, self._ref_depth = self._ref_depth, None
        if points is not None:
            scaler.set_reference_points(points)
        if reference is not None:
            scaler.set_reference_depth(reference)
        return scaler.apply(depth, camera)

    def _publish(
        self,
        msg: ImageMsg,
        depth: npt.NDArray[np.float32],
        camera: PinholeCamera,
        rgb: npt.NDArray[np.uint8],
        s: NodeSettings,
    ) -> None:
        header = msg.header
        if s.publish_depth:
            self._depth_pub.publish(depth_to_image_msg(depth, header))
        if s.publish_camera_info:
            self._info_pub.publish(camera_to_info_msg(camera, header))
        if s.publish_points:
            colour = None
            if s.cloud_color:
                colour = _resize_rgb(rgb, camera.width, camera.height)
            # ``depth`` is already NaN outside [min_depth, max_depth] (_process): no second pass.
            cloud = depth_to_cloud(depth, camera, rgb=colour, stride=s.cloud_stride)
            self._points_pub.publish(cloud_to_msg(cloud, header))

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        e, s = self.engine, self._settings
        status = build_status(
            name=f"{self.get_name()}: depth estimation",
            hardware_id=str(e.device),
            stats=self._stats.snapshot(),
            info={
                "model": s.model,
                "backend": str(e.backend),
                "device": str(e.device),
                "precision": str(e.precision),
                "image_topic": self.image_topic,
            },
            camera_info_topic=self.info_topic,
            faults=self._faults.counts(),
            last_fault=self._faults.last_fault,
        )
        if self.scaler is not None:
            state = self.scaler.state
            status.values.extend(
                KeyValue(key=k, value=v) for k, v in scale_values(state).items()
            )
            if state.scale is None and status.level == DiagnosticStatus.OK:
                status.level = DiagnosticStatus.WARN
                status.message = (
                    f"no metric scale yet (scale_mode {state.mode}): depth is NaN until "
                    + (
                        "'scale/points' or 'scale/depth' give enough measurements"
                        if state.mode == "sparse"
                        else "the floor is found"
                    )
                )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    # ------------------------------------------------------------------ shutdown
    def destroy_node(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=5.0)
        super().destroy_node()


def _make_scaler(s: NodeSettings) -> MetricScaler | None:
    """Build the metric scaler the parameters ask for (None for ``scale_mode: none``)."""
    if s.scale_mode == "none":
        return None
    return MetricScaler(
        s.scale_mode,  # type: ignore[arg-type]
        scale=s.scale_factor,
        shift=s.scale_shift,
        camera_height=s.scale_camera_height,
        extrinsic=s.scale_extrinsic,
        smoothing=s.scale_smoothing,
        max_log_jump=s.scale_max_jump,
        patience=s.scale_patience,
        min_points=s.scale_min_points,
        scale_only=s.scale_only,
    )


def _apply_depth_range(
    depth: npt.NDArray[np.float32], min_depth: float, max_depth: float
) -> npt.NDArray[np.float32]:
    """Set NaN outside ``[min_depth, max_depth]`` (the inclusive range of the point cloud)."""
    out = np.asarray(depth, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        outside = (
            (out > np.float32(max_depth))
            if math.isfinite(max_depth)
            else np.zeros(out.shape, bool)
        )
        if min_depth > 0.0:
            outside |= out < np.float32(min_depth)
    if outside.any():
        out = out.copy() if not out.flags.writeable else out
        out[outside] = np.nan
    return out


def _resize_rgb(rgb: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    import cv2

    shrink = width < rgb.shape[1]
    return cv2.resize(
        rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
